"""The GPU plan-vs-run benchmark's pieces that run without a GPU (benchmarks/gpu/).

The benchmark itself runs on a GPU machine (``device.sh``; docs/benchmarks.md
§ GPU: plan vs run). Here: its workflow and catalog plan as the benchmark
needs (the quota keeps the plan on the GPU that is there), the variables its
contrast gives a one-micro-batch shard are the ones the worker helper reads,
and the summary's arithmetic on a plan and a status recorded from a rehearsal
(``device.sh --tiny``).
"""

from __future__ import annotations

import json
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
import summarize  # noqa: E402  (a benchmark script, not a package)


def plan_json(*params: str) -> dict[str, Any]:
    args = [sys.executable, "-m", "exo.compiler", "plan", str(GPU / "embed.exo")]
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
