"""End-to-end: the installed ``exoc`` command, as a user runs it (exit codes, streams)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exo.compiler.cli.frontend import check_summary
from exo.compiler.cli.support import print_line

from .conftest import SPEC

# The console script installed next to this interpreter, else the one on PATH.
_BESIDE = Path(sys.executable).with_name("exoc")
EXOC = str(_BESIDE) if _BESIDE.exists() else (shutil.which("exoc") or "")


def exoc(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    cmd = [EXOC, *args] if EXOC else [sys.executable, "-m", "exo.compiler", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


def test_check_ok() -> None:
    r = exoc("check", str(SPEC / "examples" / "overnight_llm.exo"))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stderr


def test_check_errors_exit_1_with_caret_and_no_traceback() -> None:
    r = exoc("check", str(SPEC / "errors" / "two_errors.exo"))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "two_errors.exo:8:14: error[E101]: unknown name 'dataz'" in r.stderr
    assert "two_errors.exo:13:6: error[E102]" in r.stderr
    assert "^^^^^" in r.stderr
    assert "\x1b[" not in r.stderr  # no colour when not a terminal
    assert "2 errors found" in r.stderr


def test_check_many_files_reports_all() -> None:
    r = exoc(
        "check",
        str(SPEC / "errors" / "bad_objective.exo"),
        str(SPEC / "errors" / "missing_unit.exo"),
        str(SPEC / "examples" / "overnight_llm.exo"),
    )
    assert r.returncode == 1
    assert "bad_objective.exo:4:15" in r.stderr and "missing_unit.exo:3:14" in r.stderr


def test_check_summary_is_the_same_text_plain_or_styled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal the summary is written without rich, on one through it: the same
    characters, and a file name in brackets is a name, not markup."""
    line = check_summary(2, [(Path("bad[red].exo"), 2)])
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    print_line(line)
    plain = capsys.readouterr().err
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    print_line(line)
    styled = capsys.readouterr().err
    assert plain == "2 errors in 1 of 2 files checked: bad[red].exo\n"
    assert styled != plain and re.sub(r"\x1b\[[0-9;]*m", "", styled) == plain


def test_check_json_diagnostics() -> None:
    r = exoc("check", "--diagnostics-format", "json", str(SPEC / "errors" / "duplicate_step.exo"))
    assert r.returncode == 1
    data = json.loads(r.stdout)
    (d,) = data["diagnostics"]
    assert d["code"] == "E102" and d["span"]["line"] == 12 and d["span"]["column"] == 6


def test_usage_errors_exit_2() -> None:
    assert exoc().returncode in (0, 2)  # help
    assert exoc("check").returncode == 2
    assert (
        exoc("graph", "--format", "png", str(SPEC / "examples" / "overnight_llm.exo")).returncode
        == 2
    )
    assert exoc("nosuchcommand").returncode == 2
    assert (
        exoc("check", "-p", "novalue", str(SPEC / "examples" / "overnight_llm.exo")).returncode == 2
    )


def test_version_and_help() -> None:
    r = exoc("--version")
    assert r.returncode == 0 and r.stdout.startswith("exoc ")
    for verb in ("check", "graph", "ir"):
        h = exoc(verb, "--help")
        assert h.returncode == 0 and "Usage" in h.stdout


def test_param_override_on_cli() -> None:
    f = str(SPEC / "examples" / "finetune_synthetic.exo")
    r = exoc("ir", f, "-p", "samples=1000", "-p", "teacher=big model")
    assert r.returncode == 0, r.stderr
    ir = json.loads(r.stdout)
    gen = next(s for s in ir["steps"] if s["name"] == "generate")
    assert gen["items"] == 1000
    assert "big model" in gen["command"]
    bad = exoc("check", f, "-p", "samples=many")
    assert bad.returncode == 1 and "E113" in bad.stderr


@pytest.mark.parametrize("fmt", ["dot", "mermaid"])
def test_graph(fmt: str) -> None:
    r = exoc("graph", "--format", fmt, str(SPEC / "examples" / "onprem" / "embed.exo"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert ("digraph" in out) if fmt == "dot" else out.startswith("flowchart LR")
    assert "corpora.wiki" in out and "build_index" in out


def test_ir_is_canonical_json() -> None:
    f = str(SPEC / "examples" / "overnight_llm.exo")
    a, b = exoc("ir", f), exoc("ir", f)
    assert a.returncode == 0 and a.stdout == b.stdout
    data = json.loads(a.stdout)
    assert data["workflow"]["name"] == "overnight-summaries"
    assert json.dumps(data, indent=2, sort_keys=True) + "\n" == a.stdout
