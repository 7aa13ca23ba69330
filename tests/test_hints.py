"""Warnings a new user needs: hardware that is never measured (E308), quotas that limit nothing (E405).

Both are printed by ``exoc check`` and ``exoc plan`` (on stderr), and neither
stops the plan.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from exo.compiler.cli import app
from exo.compiler.frontend import compile_file

FLOW = """\
workflow w {
  deadline = 8h
  catalog  = "aws/us-east-1"
  quota { A100 = 8 }
}
dataset d { items = 1000 }
step s {
  input        = d
  accelerators = [A10G, L4, "A100-80GB"]
  throughput { A10G = { 8: 1.0 } }
  checkpoint   = batch
}
"""


def _write(tmp_path: Path, text: str = FLOW) -> Path:
    path = tmp_path / "flow.exo"
    path.write_text(text, encoding="utf-8")
    return path


def test_compile_collects_warnings_with_spans(tmp_path: Path) -> None:
    compiled = compile_file(_write(tmp_path))
    got = {
        (d.code, d.span.line if d.span else 0, d.span.column if d.span else 0)
        for d in compiled.warnings
    }
    assert got == {("E405", 4, 11), ("E308", 9, 25), ("E308", 9, 29)}
    by_code = {d.code: d for d in compiled.warnings}
    assert all(d.severity == "warning" for d in compiled.warnings)
    msgs = [d.message for d in compiled.warnings if d.code == "E308"]
    assert any("g6.xlarge (L4) will not be considered" in m for m in msgs)
    assert any("p4de.24xlarge (A100-80GB)" in m for m in msgs)
    assert "did you mean `A100-80GB`?" in by_code["E405"].help


def test_check_prints_warnings_and_exits_0(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["check", str(_write(tmp_path))])
    assert r.exit_code == 0, r.stderr
    assert "warning[E308]" in r.stderr and "warning[E405]" in r.stderr
    assert "g6.xlarge (L4) will not be considered" in r.stderr
    assert "ok: 1 file checked (3 warnings)" in r.stderr


def test_check_json_lists_warnings(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["check", "--diagnostics-format", "json", str(_write(tmp_path))])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert {d["code"] for d in data["diagnostics"]} == {"E308", "E405"}
    assert {d["severity"] for d in data["diagnostics"]} == {"warning"}


def test_plan_warns_on_stderr_and_still_plans(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["plan", "--format", "json", str(_write(tmp_path))])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "optimal"
    assert "warning[E308]" in r.stderr and "warning[E405]" in r.stderr


def test_no_warning_when_everything_is_measured_and_used(tmp_path: Path) -> None:
    text = FLOW.replace("A100 = 8", "A10G = 8").replace('[A10G, L4, "A100-80GB"]', "[A10G]")
    assert compile_file(_write(tmp_path, text)).warnings == ()


def test_cpu_steps_name_the_cpu_types_left_out(tmp_path: Path) -> None:
    text = """\
workflow w { catalog = "aws/us-east-1" }
dataset d { items = 1000 }
step s {
  input = d
  throughput { "c6i.xlarge" = 10 }
}
"""
    (w,) = compile_file(_write(tmp_path, text)).warnings
    assert w.code == "E308"
    assert "c6i.2xlarge, m6i.2xlarge will not be considered" in w.message
