"""``exoc plan``: the DESIGN §4 JSON, the text table, exit codes, files.

One test runs the installed ``exoc`` as a user does; the others call the same
typer app in-process (same code, without a process start per case).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from exo.compiler.cli import app
from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import DEFAULT_TIME_LIMIT_S, optimize

from .conftest import SPEC
from .test_cli_frontend import exoc

OVERNIGHT = SPEC / "examples" / "overnight_llm.exo"
FINETUNE = SPEC / "examples" / "finetune_synthetic.exo"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_installed_command_prints_the_plan_object_with_sorted_keys() -> None:
    r = exoc("plan", str(OVERNIGHT), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert r.stdout == json.dumps(data, indent=2, sort_keys=True) + "\n"
    compiled = compile_file(OVERNIGHT)
    # `exoc plan` runs under the default time limit (proven optimal well before it)
    expected = optimize(
        compiled.program, compiled.catalog, time_limit_s=DEFAULT_TIME_LIMIT_S
    ).model_dump(mode="json")
    data.pop("solve_time_s")
    expected.pop("solve_time_s")
    assert data == expected
    assert data["status"] == "optimal" and data["workflow"] == "overnight-summaries"


def test_text_and_output_files(tmp_path: Path) -> None:
    code, out, _ = run("plan", str(OVERNIGHT))
    assert code == 0
    assert "summarize" in out and "g5.xlarge" in out
    path = tmp_path / "plan.json"
    code, out, _ = run("plan", str(OVERNIGHT), "--format", "json", "-o", str(path), "-p", "model=x")
    assert code == 0 and out == ""
    assert json.loads(path.read_text())["status"] == "optimal"


def test_infeasible_exits_3_with_the_explanation() -> None:
    code, out, _ = run("plan", str(FINETUNE), "--format", "json", "-p", "samples=100000000")
    assert code == 3
    data = json.loads(out)
    assert data["status"] == "infeasible" and data["steps"] == []
    assert any("cannot be met" in line for line in data["explanation"])
    code, out, _ = run("plan", str(FINETUNE), "-p", "samples=100000000", "--time-limit", "20")
    assert code == 3 and "cannot be met" in out


def test_usage_errors_and_diagnostics() -> None:
    assert run("plan", str(OVERNIGHT), "--format", "yaml")[0] == 2
    assert run("plan", str(OVERNIGHT), "--time-limit", "0")[0] == 2
    code, _, err = run("plan", str(SPEC / "errors" / "two_errors.exo"))
    assert code == 1 and "E101" in err


def test_catalog_override(tmp_path: Path) -> None:
    csv = tmp_path / "tiny.csv"
    csv.write_text(
        "instance_type,accelerator,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,"
        "spot_usd_per_hour,accelerator_memory_gib\n"
        "gpu.a100,A100,1,12,85,2.0,,40\n"
        "gpu.l4,L4,1,4,16,3.0,,24\n"
        "gpu.a10g,A10G,1,4,16,3.0,,24\n"
        "cpu.4,,0,4,16,0.1,,\n"
    )
    code, out, err = run("plan", str(OVERNIGHT), "--format", "json", "--catalog", str(csv))
    assert code == 0, err
    data = json.loads(out)
    assert {s["instance_type"] for s in data["steps"]} == {"gpu.a100", "cpu.4"}
    assert not any(s["spot"] for s in data["steps"])
