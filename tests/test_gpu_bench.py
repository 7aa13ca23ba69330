"""The GPU plan-vs-run benchmark's pieces that run without a GPU (benchmarks/gpu/).

The benchmark itself runs on a GPU machine (``device.sh``; docs/benchmarks.md
§ GPU: plan vs run). Here: its workflow and catalog plan as the benchmark
needs (the quota keeps the plan on the GPU that is there), the variables its
contrast gives a one-micro-batch shard are the ones the worker helper reads,
and the summary's arithmetic on a plan and a status recorded from a rehearsal
(``device.sh --tiny``). The injected-preemption part (``injected.py``): its
catalog plans spot at the rate it sets, its model of a preempted run agrees with
the cost model's expected duration (a seeded Monte Carlo check), a run is
replayed under the model at its own preemption times, and the report on runs
recorded from a rehearsal.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exo.worker import shard

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "benchmarks" / "gpu"
DATA = Path(__file__).resolve().parent / "data" / "gpu"
sys.path.insert(0, str(GPU))
import injected  # noqa: E402  (benchmark scripts, not a package)
import summarize  # noqa: E402


def plan_json(*params: str, options: tuple[str, ...] = ()) -> dict[str, Any]:
    args = [sys.executable, "-m", "exo.compiler", "plan", str(GPU / "embed.exo"), *options]
    for p in params:
        args += ["-p", p]
    out = subprocess.run([*args, "--format", "json"], capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.mark.parametrize(
    ("params", "instance", "price"),
    [
        (("h200=0",), "p5.48xlarge-1gpu", 12.29),
        (("h100=0",), "p5en.48xlarge-1gpu", 10.6),
    ],
)
def test_the_quota_keeps_the_plan_on_the_gpu_present(
    params: tuple[str, ...], instance: str, price: float
) -> None:
    plan = plan_json("items=100_000", *params)
    assert plan["status"] == "optimal"
    [step] = plan["steps"]
    assert step["instance_type"] == instance
    assert step["price_usd_per_hour"] == price  # the catalog's row, one eighth of the 8-GPU one
    assert (step["replicas"], step["spot"]) == (1, False)


def test_size_is_whole_batches_at_the_best_measured_rate() -> None:
    cal = {"steps": {"embed": {"throughput": {"H100": {"256": 7_000.0, "1024": 9_876.5}}}}}
    assert summarize.best_rate(cal) == 9_876.5
    assert summarize.items_for(9_876.5, 60.0) == 578 * 1024  # floor(592,590 / 1024) batches
    assert summarize.items_for(10.0, 1.0) == 4 * 1024  # at least four batches


def test_contrast_shards_are_what_the_worker_helper_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in summarize.shard_env(2048, 3072, 1024, tmp_path / "p2").items():
        monkeypatch.setenv(k, v)
    s = shard()
    assert (s.start, s.end, s.batch_size) == (2048, 3072, 1024)
    [batch] = list(s)
    assert (batch.start, batch.end) == (2048, 3072)
    batch.commit({"embeddings.f16": b"\0" * 4})
    s.assemble()
    assert (tmp_path / "p2" / "output" / "embeddings.f16").read_bytes() == b"\0" * 4


def test_contrast_projects_the_mean_process_over_every_micro_batch() -> None:
    c = summarize.contrast_summary([9.0, 8.0, 7.0], batch=1024, items=10_000)
    assert c["micro_batches"] == 10  # ceil(10,000 / 1024)
    assert c["mean_process_s"] == pytest.approx(8.0)
    assert c["projected_s"] == pytest.approx(80.0)


def test_report_on_a_recorded_rehearsal() -> None:
    plan = json.loads((DATA / "plan.json").read_text())
    status = json.loads((DATA / "status.json").read_text())
    contrast = json.loads((DATA / "contrast.json").read_text())
    cal = json.loads((DATA / "calibration.json").read_text())
    [f] = summarize.step_figures(plan, status, cal)
    sp = plan["steps"][0]
    real = status["plan_vs_actual"]["steps"][0]["actual"]
    assert f.planned_s == pytest.approx(sp["expected_duration_h"] * 3600)
    assert f.real_s == real["duration_s"]
    assert f.ratio == pytest.approx(real["duration_s"] / (sp["expected_duration_h"] * 3600))
    assert f.real_cost == pytest.approx(real["replica_hours"] * sp["price_usd_per_hour"])
    # exo's own cost of the attempts at the catalog price agrees (one replica per instance)
    assert f.real_cost == pytest.approx(real["cost_usd"], rel=1e-9)
    # planned items/s and startup: the calibration's, which the plan was made with
    assert f.planned_rate == cal["steps"]["embed"]["throughput"]["H100"]["1024"]
    assert f.planned_startup_s == cal["steps"]["embed"]["startup_s"]
    assert f.planned_s == pytest.approx(f.planned_startup_s + f.items / f.planned_rate)
    lines = summarize.report(
        plan, status, contrast, run_wall_s=50.0, gpu="NVIDIA H100 80GB HBM3", calibration=cal
    )
    assert len(lines) == 4
    assert lines[1].startswith("embed on p5.48xlarge-1gpu (H100) on-demand, 1 replica(s)")
    assert f"real/planned {f.ratio:.3f}" in lines[1]
    assert f"= ${f.real_cost:.4f}" in lines[1]
    assert "exoc status:" not in lines[1]
    ratio = contrast["projected_s"] / real["duration_s"]
    assert f"projected, {ratio:.1f}x the long-lived replica's" in lines[3]


def test_without_the_calibration_the_status_figures_and_verdict_are_shown() -> None:
    plan = json.loads((DATA / "plan.json").read_text())
    status = json.loads((DATA / "status.json").read_text())
    [f] = summarize.step_figures(plan, status)
    planned = status["plan_vs_actual"]["steps"][0]["planned"]
    assert (f.planned_rate, f.planned_startup_s) == (planned["items_per_s"], planned["startup_s"])
    assert summarize.step_line(f).endswith(f"exoc status: {f.verdict}")


def test_report_without_a_ledger_says_so() -> None:
    plan = json.loads((DATA / "plan.json").read_text())
    lines = summarize.report(plan, {"run_id": None, "state": "none", "plan_vs_actual": None})
    assert "real - s, real/planned -" in lines[1]
    assert lines[1].endswith("exoc status: no ledger")


# --- injected preemptions (injected.py) --------------------------------------------------------

#: What `exoc profile` measured on an H200 (docs/benchmarks.md § GPU: plan vs run, 2026-11-27).
H200_CALIBRATION = {
    "format": 1,
    "instance_types": {},
    "source": "exoc profile",
    "steps": {"embed": {"startup_s": 15.23, "throughput": {"H200": {"1024": 16_574.5}}}},
}


def spot_plan(tmp_path: Path, rate: float, items: int = 647 * 1024) -> dict[str, Any]:
    catalog = tmp_path / f"catalog-{rate:g}.csv"
    catalog.write_text(injected.injected_catalog((GPU / "catalog.csv").read_text(), rate))
    cal = tmp_path / "calibration.json"
    cal.write_text(json.dumps(H200_CALIBRATION))
    options = ("--catalog", str(catalog), "--calibration", str(cal))
    return plan_json(f"items={items}", "tier=only", "h100=0", options=options)


def test_the_injected_catalog_sets_every_spot_rate_and_the_plan_prices_it(tmp_path: Path) -> None:
    text = injected.injected_catalog((GPU / "catalog.csv").read_text(), 60.0)
    rows = text.splitlines()
    assert rows[0].endswith(",spot_preemptions_per_hour")
    assert len(rows) == 3 and all(r.endswith(",60") for r in rows[1:])
    calm, rough = spot_plan(tmp_path, 0.0)["steps"][0], spot_plan(tmp_path, 60.0)["steps"][0]
    assert (calm["spot"], rough["spot"]) == (True, True)
    assert calm["instance_type"] == rough["instance_type"] == "p5en.48xlarge-1gpu"
    assert rough["expected_duration_h"] > calm["expected_duration_h"]
    assert rough["p_duration_h"] > rough["expected_duration_h"]  # the bound at its confidence


def test_the_model_of_a_preempted_run_averages_the_plans_expected_duration(tmp_path: Path) -> None:
    """Seeded Monte Carlo: 20,000 runs preempted at 60/h against the cost model's closed form."""
    items = 647 * 1024
    sp = spot_plan(tmp_path, 60.0, items)["steps"][0]
    model = injected.step_model(H200_CALIBRATION, sp, items, 60.0)
    assert (model.startup_s, model.items_per_s, model.batch_size) == (15.23, 16_574.5, 1024)
    mean, sd = model.spread(samples=20_000, seed=7)
    expected = sp["expected_duration_h"] * 3600
    # one run's sd is ~15.6 s, so the mean of 20,000 lies within ~0.11 s (1 sigma) of the truth
    assert mean == pytest.approx(expected, abs=4 * sd / math.sqrt(20_000))
    calm = injected.StepModel(15.23, 16_574.5, 1024, items, 0.0)
    assert calm.spread(samples=10) == (pytest.approx(15.23 + items / 16_574.5), 0.0)


def test_a_run_is_replayed_under_the_model_at_its_own_preemption_times() -> None:
    model = injected.StepModel(
        startup_s=10.0, items_per_s=100.0, batch_size=100, items=5000, preemptions_per_h=60
    )
    attempts = [
        injected.Attempt(0, 1, 0.0, 5.0, "preempted", None),  # killed in its startup
        injected.Attempt(0, 2, 5.0, 35.5, "preempted", 15.0),
        injected.Attempt(0, 3, 36.0, 80.0, "succeeded", 47.0),
    ]
    # 5 s lost, then 30.5 s of which 20.5 s of work: 20 whole batches (2,000 items);
    # a 0.5 s gap; then the startup again and the other 3,000 items at 100/s
    assert model.replay(attempts) == pytest.approx(5.0 + 30.5 + 0.5 + 10.0 + 30.0)
    assert injected.restart_gaps(attempts) == [0.0, 0.5]
    assert [a.startup_s for a in attempts] == [None, 10.0, 11.0]
    assert model.replay(attempts[-1:]) == pytest.approx(10.0 + 50.0)


def test_report_on_injected_runs_recorded_from_a_rehearsal() -> None:
    spot = DATA / "spot"
    plan = json.loads((spot / "plan-spot.json").read_text())
    cal = DATA / "spot" / "calibration.json"
    folders = sorted(spot.glob("seed-*"))
    lines = injected.spot_command(plan, folders, 60.0, cal)
    assert lines[0].startswith(
        "injected preemptions at 60/h: embed on p5.48xlarge-1gpu (H100) spot"
    )
    statuses = [json.loads((d / "status.json").read_text()) for d in folders]
    steps = [injected.status_step(st, "embed") for st in statuses]
    for line, step in zip(lines[1:], steps, strict=False):
        assert f"{step['preemptions']} preemption(s), {step['attempts']} attempt(s)" in line
        assert f"real {step['actual']['duration_s']:.1f} s" in line
        assert "the model gives with these preemptions" in line
    mean = statistics.fmean(s["actual"]["duration_s"] for s in steps)
    expected = plan["steps"][0]["expected_duration_h"] * 3600
    assert (
        f"mean of {len(folders)} run(s): {mean:.1f} s ({mean / expected:.3f}x expected)"
        in lines[len(folders) + 1]
    )
    assert lines[-2].startswith("real / replayed under the model: mean ")
    assert lines[-1].startswith("the model (startup ")
