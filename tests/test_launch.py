"""The ``exoc`` script's start-up (:mod:`exo.compiler.launch`, issue #16): the cyclic
garbage collector paused while ``exoc`` starts, back once the front end is loaded (or
at once for a command that does not load it first), and nothing of it when the CLI
is called as a library.

Structural, not timed: a fresh interpreter runs the command and reports, when it ends,
the collector's state.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from exo.compiler.cli import COMMANDS, FRONT_END_FIRST
from exo.compiler.launch import resume

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.exo"

#: Runs ``exoc ARGS`` through ``ENTRY`` and prints, from an ``atexit`` callback (which the
#: quick exit runs too), the collector's state.
_PROBE = """
import atexit, gc, json, sys
def report():
    state = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
    print("\\nSTATE " + json.dumps(state))
atexit.register(report)
entry = sys.argv[2]
sys.argv = ["exoc", *json.loads(sys.argv[1])]
if entry == "launch":
    from exo.compiler.launch import main
else:
    from exo.compiler.cli import main
main()
"""


def run(entry: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """``exoc ARGS`` in a fresh interpreter through ``entry`` (``launch``: the script's
    :func:`exo.compiler.launch.main`; ``cli``: :func:`exo.compiler.cli.main` alone)."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args)), entry],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("STATE "))
    return out, json.loads(line.removeprefix("STATE "))


def test_a_front_end_command_resumes_the_collector_once_the_front_end_is_loaded() -> None:
    out, state = run("launch", "ir", str(QUICKSTART))
    assert out.returncode == 0
    assert state["enabled"] is True
    assert isinstance(state["frozen"], int) and state["frozen"] > 10_000  # the start-up's


def test_check_keeps_the_collector_paused_to_the_end() -> None:
    """``check`` is ``UNCOLLECTED``: the launch's pause lasts the whole process, and
    loading the front end neither resumes nor freezes."""
    out, state = run("launch", "check", str(QUICKSTART))
    assert out.returncode == 0
    assert (state["enabled"], state["frozen"]) == (False, 0)


@pytest.mark.parametrize("args", [("--version",), ("backends",)], ids=["version", "backends"])
def test_a_command_without_the_front_end_resumes_at_once(args: tuple[str, ...]) -> None:
    out, state = run("launch", *args)
    assert out.returncode == 0
    assert state["enabled"] is True and state["frozen"] > 0


def test_the_cli_called_as_a_library_pauses_nothing() -> None:
    out, state = run("cli", "ir", str(QUICKSTART))
    assert out.returncode == 0
    assert (state["enabled"], state["frozen"]) == (True, 0)


@pytest.mark.parametrize(
    "args",
    [
        ("check", str(QUICKSTART)),
        (
            "check",
            "--diagnostics-format",
            "json",
            *map(str, sorted((ROOT / "tests" / "data" / "bad").glob("*.exo"))),
        ),
        ("ir", str(QUICKSTART)),
        ("check", "--nope"),
    ],
    ids=["ok", "diagnostics", "ir", "usage"],
)
def test_the_script_writes_what_the_cli_writes(args: tuple[str, ...]) -> None:
    """The same output and exit code, with the pause and without."""
    launched, _ = run("launch", *args)
    plain, _ = run("cli", *args)
    assert launched.returncode == plain.returncode
    assert launched.stdout.split("\nSTATE ")[0] == plain.stdout.split("\nSTATE ")[0]
    assert launched.stderr == plain.stderr


def test_front_end_first_names_commands_and_resume_without_a_pause_does_nothing() -> None:
    assert set(COMMANDS) >= FRONT_END_FIRST
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    resume()
    assert (gc.isenabled(), gc.get_freeze_count()) == (enabled, frozen)
