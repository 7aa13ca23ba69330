"""``exoc plan`` report formats and flags, and ``exoc diff``, as a user runs them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exo.compiler.cli import app
from exo.compiler.plan import Plan

from .conftest import REPO

QUICKSTART = str(REPO / "examples" / "quickstart.exo")
DATA = REPO / "tests" / "data" / "report"
_BESIDE = Path(sys.executable).with_name("exoc")
EXOC = [str(_BESIDE)] if _BESIDE.exists() else [sys.executable, "-m", "exo.compiler"]

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_markdown_to_stdout() -> None:
    code, out, _ = run("plan", QUICKSTART, "--format", "markdown")
    assert code == 0
    assert out.startswith("### exo plan `quickstart`: $")
    code2, out2, _ = run("plan", QUICKSTART, "--format", "md")
    assert code2 == 0
    assert out2.split("\n")[0] == out.split("\n")[0]


@pytest.mark.parametrize(
    ("fmt", "start"),
    [
        ("text", "exo plan quickstart"),
        ("markdown", "### exo plan"),
        ("html", "<!DOCTYPE html>"),
        ("json", "{"),
    ],
)
def test_o_writes_every_format(tmp_path: Path, fmt: str, start: str) -> None:
    out = tmp_path / f"report.{fmt}"
    code, stdout, stderr = run("plan", QUICKSTART, "--format", fmt, "-o", str(out))
    assert code == 0
    assert stdout == ""
    assert str(out) in stderr
    content = out.read_text("utf-8")
    assert content.startswith(start)
    assert "\x1b[" not in content
    if fmt == "json":
        assert set(json.loads(content)) == set(Plan.model_fields)  # DESIGN §4, no extras


def test_json_is_the_plan_unless_what_if_or_compare_ask_for_more(tmp_path: Path) -> None:
    code, out, _ = run("plan", QUICKSTART, "--format", "json")
    assert code == 0
    plain = json.loads(out)
    assert set(plain) == set(Plan.model_fields)
    saved = tmp_path / "old.json"
    saved.write_text(out, encoding="utf-8")
    code, out, _ = run(
        "plan",
        QUICKSTART,
        "--format",
        "json",
        "--what-if",
        "deadline=10m,30m",
        "--compare",
        str(saved),
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) == set(Plan.model_fields) | {"what_if", "compare"}
    assert [s["value"] for s in data["what_if"][0]["scenarios"]] == pytest.approx(
        [1 / 6, 0.25, 0.5]
    )
    assert data["compare"]["summary"]["same"] == len(plain["steps"])
    assert {k: data[k] for k in plain if k != "solve_time_s"} == {
        k: plain[k] for k in plain if k != "solve_time_s"
    }


def test_what_if_and_compare_in_text(tmp_path: Path) -> None:
    code, out, _ = run("plan", QUICKSTART, "--what-if", "budget=$0.001,$5")
    assert code == 0
    assert "what if the budget were different" in out
    assert "infeasible" in out
    code, out, _ = run("plan", QUICKSTART, "--compare", str(DATA / "old.json"))
    assert code == 0
    assert "exo diff" in out
    assert "+ make_docs" in out
    assert "- summarize" in out


def test_html_with_what_if_and_compare(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    code, _, _ = run(
        "plan",
        QUICKSTART,
        "--format",
        "html",
        "-o",
        str(out),
        "--what-if",
        "deadline=10m,1h",
        "--compare",
        str(DATA / "old.json"),
    )
    assert code == 0
    page = out.read_text("utf-8")
    assert page.count('class="chart whatif whatif-cost"') == 1
    assert page.count('class="chart whatif whatif-makespan"') == 1
    assert 'id="diff"' in page


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--format", "pdf"], "choose one of"),
        (["--what-if", "speed=2"], "got 'speed=2'"),
        (["--what-if", "deadline=soon"], "deadline"),
    ],
)
def test_usage_errors_exit_2(args: list[str], words: str) -> None:
    code, _, err = run("plan", QUICKSTART, *args)
    assert code == 2
    assert words in " ".join(err.split())


def test_compare_with_a_bad_file_exits_1() -> None:
    code, _, err = run("plan", QUICKSTART, "--compare", str(DATA / "not_json.json"))
    assert code == 1
    assert "error[E602]" in err
    code, _, err = run("plan", QUICKSTART, "--compare", str(DATA / "nothing-here.json"))
    assert code == 1
    assert "error[E001]" in err


def test_infeasible_exits_3_with_the_reason(tmp_path: Path) -> None:
    wf = tmp_path / "tight.exo"
    wf.write_text(
        'workflow tight {\n  deadline = 1m\n  catalog = "aws/us-east-1"\n}\n'
        'step work {\n  items = 50000\n  command = ["true"]\n  cpu = 2\n'
        "  throughput { cpu = 100 }\n}\n",
        encoding="utf-8",
    )
    for fmt, words in (("text", "why no plan"), ("markdown", "**Why no plan**")):
        code, out, _ = run("plan", str(wf), "--format", fmt)
        assert code == 3
        assert words in out
        assert "deadline" in out


def test_diff_command(tmp_path: Path) -> None:
    old, new = str(DATA / "old.json"), str(DATA / "new.json")
    code, out, _ = run("diff", old, new)
    assert code == 0
    assert "plan: 1 to add, 2 to change, 1 to remove, 0 unchanged" in out
    code, out, _ = run("diff", old, new, "--format", "json")
    assert json.loads(out)["summary"] == {"add": 1, "change": 2, "remove": 1, "same": 0}
    target = tmp_path / "d.md"
    code, out, _ = run("diff", old, new, "--format", "markdown", "-o", str(target))
    assert code == 0 and out == ""
    assert "```diff" in target.read_text("utf-8")
    code, out, _ = run("diff", old, old, "--unchanged")
    assert "  index" in out and "no changes" in out
    assert run("diff", old, new, "--format", "html")[0] == 2
    assert run("diff", old, str(DATA / "bad_step.json"))[0] == 1


# --------------------------------------------------------------------------- real processes


def test_piped_output_has_no_colour() -> None:
    r = subprocess.run(
        [*EXOC, "plan", QUICKSTART],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")},
    )
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    assert " step " in r.stdout  # the wide table: a pipe gets the file width


@pytest.mark.skipif(shutil.which("true") is None, reason="needs a POSIX system")
def test_narrow_terminal_gets_colour_and_blocks() -> None:
    """In a real (pseudo) terminal 60 columns wide: colour, and no line wider than it."""
    pid, fd = pty.fork()
    if pid == 0:  # child: become exoc on the terminal
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        os.execve(EXOC[0], [*EXOC, "plan", QUICKSTART], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 60, 0, 0))
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in out  # colour on a terminal
    plain = _strip_ansi(out)
    lines = plain.replace("\r", "").splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "  batch 500 · x" in plain  # one block per step, not the table
    assert " step " not in plain


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
