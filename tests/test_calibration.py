"""``exoc profile``, ``exoc calibrate`` and ``--calibration`` (#13).

The synthetic command of the fidelity benchmark behaves exactly as declared,
so what ``profile`` measures must be the declared figures (a loose bound here:
``benchmarks/bench_actuals.py`` measures the accuracy), and a plan made with a
calibration file must equal the plan of the ``.exo`` with the measured
numbers typed in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exo.backends.runtime import profiling
from exo.compiler import calibration
from exo.compiler.calibration import Calibration, StepCalibration, TierCalibration
from exo.compiler.cli import app
from exo.compiler.diagnostics import CompileError

from .localrun import HEADER, plan, run, write
from .test_status_actuals import RATE, STARTUP_S, SYNTHETIC, synthetic_workflow


def exoc(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_apply_replaces_declared_figures_and_says_so(tmp_path: Path) -> None:
    planned = plan(synthetic_workflow(tmp_path))
    cal = Calibration(
        steps={"work": StepCalibration(startup_s=2.5, throughput={"cpu": {"20": 30.0}})},
        instance_types={"c6i.xlarge": TierCalibration(spot_hours=10.0, preemptions=4)},
    )
    program, catalog, notes = calibration.apply(planned.program, planned.catalog, cal)
    step = program.step("work")
    assert step.startup_h == 2.5 / 3600 and step.throughput is not None
    assert step.throughput.rate("cpu", 20) == 30.0
    row, old = catalog.get("c6i.xlarge"), planned.catalog.get("c6i.xlarge")
    assert row is not None and old is not None
    assert row.spot_preemptions_per_hour == pytest.approx(
        (old.spot_preemptions_per_hour * calibration.PRIOR_HOURS + 4)
        / (calibration.PRIOR_HOURS + 10)
    )
    assert any("throughput on cpu at batch 20 40.0 -> 30 items/s (-25%)" in n for n in notes)
    assert any(n.startswith("work: startup 1s -> 2.5s") for n in notes)
    assert planned.program.step("work").startup_h == STARTUP_S / 3600  # inputs untouched


def test_blended_rate_weighs_the_catalog_by_prior_hours() -> None:
    assert calibration.blended_rate(0.1, 0.0, 0) == 0.1
    assert calibration.blended_rate(0.1, 1000.0, 0) == pytest.approx(1.0 / 1010.0)
    assert calibration.blended_rate(0.0, 10.0, 5) == 0.25


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"format": 2}',
        '{"steps": {"a": {"startup_s": -1}}}',
        '{"steps": {"a": {"throughput": {"cpu": {"x": 1}}}}}',
        '{"steps": {"a": {"throughput": {"cpu": {"8": 0}}}}}',
    ],
)
def test_bad_calibration_files_are_e230(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(CompileError) as err:
        calibration.load(path)
    assert [d.code for d in err.value.diagnostics] == ["E230"]
    wf = synthetic_workflow(tmp_path / "wf")
    code, _, stderr = exoc("plan", str(wf), "--calibration", str(path))
    assert code == 1 and "E230" in stderr and "Traceback" not in stderr


def test_profile_measures_the_declared_figures_and_the_plan_follows(tmp_path: Path) -> None:
    wf = synthetic_workflow(tmp_path)
    cal_path = tmp_path / "cal.json"
    code, out, err = exoc(
        "profile", str(wf), "work", "--batch-sizes", "10,20", "--items", "80", "-o", str(cal_path)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].startswith("throughput { cpu = { 10: ") and ", 20: " in lines[1]
    assert lines[2].startswith("startup = ")
    cal = calibration.load(cal_path)
    sc = cal.steps["work"]
    assert set(sc.throughput["cpu"]) == {"10", "20"}
    for rate in sc.throughput["cpu"].values():
        assert rate == pytest.approx(RATE, rel=0.25)
    assert sc.startup_s == pytest.approx(STARTUP_S, rel=0.25)
    # A plan with the calibration file is the plan of the .exo with those numbers typed in.
    code, calibrated, err = exoc(
        "plan", str(wf), "--calibration", str(cal_path), "--format", "json"
    )
    assert code == 0, err
    table = ", ".join(f"{b}: {r!r}" for b, r in sorted(sc.throughput["cpu"].items()))
    text = wf.read_text()
    typed = text.replace(
        f"throughput {{ cpu = {{ 20: {RATE:g} }} }}", f"throughput {{ cpu = {{ {table} }} }}"
    )
    typed = typed.replace(f"startup    = {STARTUP_S:g}s", f"startup    = {sc.startup_s!r}s")
    assert typed != text
    wf2 = write(tmp_path / "typed" / "wf.exo", typed)
    code, by_hand, err = exoc("plan", str(wf2), "--format", "json")
    assert code == 0, err
    a, b = json.loads(calibrated), json.loads(by_hand)
    for p in (a, b):
        p.pop("solve_time_s", None)  # wall-clock
    explained = a.pop("explanation")
    notes = [e for e in explained if e.startswith("calibrated: ")]
    assert len(notes) == 3  # two batch sizes and the startup
    assert [e for e in explained if e not in notes] == b.pop("explanation")
    assert a == b


def test_calibrate_turns_a_run_into_a_calibration_file(tmp_path: Path) -> None:
    wf = synthetic_workflow(tmp_path)
    assert run(plan(wf), wf).state == "done"
    code, _, err = exoc("calibrate", str(wf))
    assert code == 0, err
    cal = calibration.load(wf.with_name("wf.calibration.json"))
    sc = cal.steps["work"]
    assert sc.throughput["cpu"]["20"] == pytest.approx(RATE, rel=0.5)
    assert sc.startup_s == pytest.approx(STARTUP_S, rel=0.5)
    assert all(t.preemptions == 0 and t.spot_hours > 0 for t in cal.instance_types.values())
    code, out, err = exoc(
        "plan", str(wf), "--calibration", str(wf.with_name("wf.calibration.json"))
    )
    assert code == 0 and "calibrated: work: throughput on cpu at batch 20" in out, out + err


def test_profile_refuses_a_gpu_step_here_and_says_where_to_run_it(tmp_path: Path) -> None:
    if profiling.local_accelerators():
        pytest.skip("this machine has a GPU")
    wf = write(
        tmp_path / "g.exo",
        HEADER
        + f"""
step embed {{
  items        = 100
  command      = [{json.dumps(sys.executable)}, "-c", "pass"]
  accelerators = ["A10G"]
  gpus         = 1
  throughput {{ A10G = {{ 32: 100 }} }}
}}
""",
    )
    code, out, err = exoc("profile", str(wf), "embed")
    assert code == 1 and out == ""
    assert "E740" in err and "A10G" in err and f"exoc profile {wf} embed" in err
    assert "Traceback" not in err


def test_profile_diagnostics(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "d.exo",
        HEADER
        + f"""
step a {{
  items      = 10
  command    = [{json.dumps(sys.executable)}, "-c", "pass"]
  cpu        = 1
  throughput {{ cpu = 10 }}
}}
step b {{
  input      = a
  command    = [{json.dumps(sys.executable)}, {json.dumps(str(SYNTHETIC))}]
  cpu        = 1
  throughput {{ cpu = 10 }}
}}
""",
    )
    assert "E741" in exoc("profile", str(wf), "nope")[2]
    assert "E742" in exoc("profile", str(wf), "b")[2]
    code, _, err = exoc("profile", str(wf), "a")  # commits nothing through the helper
    assert code == 1 and "E743" in err and "Traceback" not in err


def test_status_compares_with_the_calibrated_figures_the_run_was_planned_with(
    tmp_path: Path,
) -> None:
    wf = synthetic_workflow(tmp_path)
    cal_path = tmp_path / "cal.json"
    measured = RATE * 0.9
    cal = Calibration(
        steps={"work": StepCalibration(startup_s=1.5, throughput={"cpu": {"20": measured}})}
    )
    cal_path.write_text(cal.model_dump_json(), encoding="utf-8")
    state = ["--state-dir", str(tmp_path / "state")]
    code, _, err = exoc("run", str(wf), "--calibration", str(cal_path), *state)
    assert code == 0, err
    # Without the calibration, status warns that its planned figures are the declared ones.
    code, out, err = exoc("status", str(wf), "--format", "json", *state)
    assert code == 0, err
    assert "planned with calibrated figures" in err and "--calibration FILE" in err
    (step,) = json.loads(out)["plan_vs_actual"]["steps"]
    assert step["planned"]["items_per_s"] == RATE
    # With it, the planned items/s and startup are those the run was planned with.
    code, out, err = exoc(
        "status", str(wf), "--format", "json", "--calibration", str(cal_path), *state
    )
    assert code == 0, err
    assert "calibrated figures" not in err
    (step,) = json.loads(out)["plan_vs_actual"]["steps"]
    assert step["planned"]["items_per_s"] == measured
    assert step["planned"]["startup_s"] == 1.5
