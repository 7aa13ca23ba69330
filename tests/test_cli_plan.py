"""``exoc plan`` end to end: the DESIGN §4 JSON, the text table, exit codes, files."""

from __future__ import annotations

import json
from pathlib import Path

from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize

from .conftest import SPEC
from .test_cli_frontend import exoc

OVERNIGHT = SPEC / "examples" / "overnight_llm.exo"


def test_json_is_the_plan_object_with_sorted_keys() -> None:
    r = exoc("plan", str(OVERNIGHT), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert r.stdout == json.dumps(data, indent=2, sort_keys=True) + "\n"
    compiled = compile_file(OVERNIGHT)
    expected = optimize(compiled.program, compiled.catalog).model_dump(mode="json")
    data.pop("solve_time_s")
    expected.pop("solve_time_s")
    assert data == expected
    assert data["status"] == "optimal" and data["workflow"] == "overnight-summaries"


def test_text_table_and_output_file(tmp_path: Path) -> None:
    r = exoc("plan", str(OVERNIGHT))
    assert r.returncode == 0, r.stderr
    assert "summarize" in r.stdout and "g5.xlarge" in r.stdout and "spot" in r.stdout
    assert "all on-demand" in r.stdout and "\x1b[" not in r.stdout
    out = tmp_path / "plan.json"
    r = exoc("plan", str(OVERNIGHT), "--format", "json", "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    assert json.loads(out.read_text())["status"] == "optimal"
    txt = tmp_path / "plan.txt"
    assert exoc("plan", str(OVERNIGHT), "-o", str(txt)).returncode == 0
    assert "summarize" in txt.read_text()


def test_infeasible_exits_3_with_the_explanation() -> None:
    r = exoc("plan", str(OVERNIGHT), "--format", "json", "-p", "model=x", "--time-limit", "30")
    assert r.returncode == 0
    tight = SPEC / "examples" / "finetune_synthetic.exo"
    r = exoc("plan", str(tight), "--format", "json", "-p", "samples=100000000")
    assert r.returncode == 3, r.stderr
    data = json.loads(r.stdout)
    assert data["status"] == "infeasible" and data["steps"] == []
    assert any("cannot be met" in line for line in data["explanation"])
    r = exoc("plan", str(tight), "-p", "samples=100000000")
    assert r.returncode == 3 and "infeasible" in r.stdout and "Traceback" not in r.stderr


def test_usage_errors_and_diagnostics() -> None:
    assert exoc("plan", str(OVERNIGHT), "--format", "yaml").returncode == 2
    assert exoc("plan", str(OVERNIGHT), "--time-limit", "0").returncode == 2
    r = exoc("plan", str(SPEC / "errors" / "two_errors.exo"))
    assert r.returncode == 1 and "E101" in r.stderr


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
    r = exoc("plan", str(OVERNIGHT), "--format", "json", "--catalog", str(csv))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {s["instance_type"] for s in data["steps"]} == {"gpu.a100", "cpu.4"}
    assert not any(s["spot"] for s in data["steps"])
