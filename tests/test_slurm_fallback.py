"""The deadline-aware fallback on the real Slurm cluster (tests/slurm/cluster.sh).

A spot step (partition ``preempt``) is requeued again and again; once its
remaining work plus the ``2r + c`` margin no longer fits before its due time,
the runner moves the pending task to the on-demand partition (the cluster's
default, ``ondemand``), where it resumes from its checkpoint and finishes:
every item once, the move recorded with its reason. The rule and the due times
are unit-tested without a cluster at the end.
"""

from __future__ import annotations

import io
import subprocess
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from exo.backends.api import PlannedWorkflow, RunReport
from exo.backends.runtime import actuals, fallback, ledger
from exo.backends.slurm import SlurmBackend, SlurmOptions
from exo.backends.slurm.fallback import SlurmFallback, pending_indices
from exo.compiler.cli import status_view
from exo.compiler.pipeline import plan_for

from . import test_slurm_cluster
from .test_slurm_cluster import context, squeue, wait_for

#: The private cluster's fixture, shared with the other Slurm tests.
slurm_env = test_slurm_cluster.slurm_env

CATALOG = """instance_type,accelerator,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,spot_usd_per_hour,spot_preemptions_per_hour
cpu2,,0,2,4,0.10,0.03,0.47
"""

#: 40 items at a planned 1 item/s in batches of 2 (c = 2 s), startup 2 s: T = 42 s.
#: The command works faster than planned (0.6 s a batch), so the due time holds
#: on a loaded machine too. Each batch records the partition it ran on.
WORKFLOW = """
workflow t {
  deadline = 60s
  catalog  = "./cat.csv"
}
step work {
  items      = 40
  command    = ["python3", "-c", "import os, time; from exo.worker import shard; s = shard(); [(time.sleep(0.6), b.commit({{'items.tsv': ''.join('%d\\\\t%s\\\\n' % (i, os.environ.get('SLURM_JOB_PARTITION', '?')) for i in b.items)}})) for b in s]; s.assemble()"]
  cpu        = 1
  memory     = 1GiB
  throughput { cpu = { 2: 1 } }
  startup    = 2s
  checkpoint = batch
  spot       = only
}
"""

OPTIONS = SlurmOptions(spot_partition="preempt", poll_s=0.5, backoff_s=0.2, backoff_max_s=1)


def _running(env: dict[str, str], job: str) -> bool:
    return any(r[-1] == "RUNNING" for r in squeue(env, job))


def _project(tmp: Path) -> Path:
    (tmp / "cat.csv").write_text(CATALOG)
    wf = tmp / "t.exo"
    wf.write_text(WORKFLOW)
    return wf


@pytest.mark.slurm
def test_requeued_spot_task_moves_to_on_demand_and_finishes(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    wf = _project(tmp_path)
    planned, _ = plan_for(wf, {})
    (sp,) = planned.plan.steps
    assert sp.spot and sp.replicas == 1
    steps = fallback.spot_steps(planned)
    assert steps["work"].due_h == pytest.approx(60 / 3600)
    result: list[RunReport] = []
    thread = threading.Thread(
        target=lambda: result.append(SlurmBackend().run(planned, OPTIONS, context(wf, slurm_env)))
    )
    thread.start()
    requeues = 0
    try:
        state = tmp_path / ".exo" / "slurm"
        wait_for(lambda: any(state.glob("*/*/jobs.tsv")), "the submission")
        (jobs_tsv,) = list(state.glob("*/*/jobs.tsv"))
        run = jobs_tsv.parent
        job = jobs_tsv.read_text().split()[1]
        mark = run / "state" / "work" / "shard-0.ondemand"
        deadline = time.monotonic() + 150
        while not mark.exists() and time.monotonic() < deadline:
            if _running(slurm_env, job):
                # the first attempt commits a few batches; a one-shard step is a plain job
                time.sleep(0.5 if requeues else 3.0)
                subprocess.run(["scontrol", "requeue", job], env=slurm_env, check=False)
                requeues += 1
                wait_for(lambda: not _running(slurm_env, job), "the requeue")
            time.sleep(0.2)
    finally:
        thread.join(timeout=240)
    (report,) = result
    assert report.state == "done", report
    assert requeues >= 1
    why = mark.read_text()
    assert "margin (2r + c) > due at 60s" in why
    rows = (run / "outputs" / "work" / "shard-0" / "items.tsv").read_text().splitlines()
    items = sorted(int(r.split("\t")[0]) for r in rows)
    assert items == list(range(40))  # every item once, across attempts
    partitions = [r.split("\t")[1] for r in rows]
    assert partitions[-1] == "ondemand" and "preempt" in partitions
    _ledger_shows_the_switch(planned, run, why.strip())


def _ledger_shows_the_switch(planned: PlannedWorkflow, run: Path, why: str) -> None:
    """The ledger records the on-demand attempt as such; status costs it at that price."""
    book = ledger.load(run / ledger.FILE_NAME)
    attempts = sorted(book.of_step("work"), key=lambda a: a.started_at)
    last = attempts[-1]
    assert last.outcome == "succeeded" and last.spot is False
    assert last.fallback == why  # the mark file's reason, as the job script read it
    assert all(a.spot is True and a.fallback is None for a in attempts[:-1])
    assert any(a.outcome == "preempted" for a in attempts[:-1])
    act = actuals.compare(planned.program, planned.plan, planned.catalog, book, None)
    (st,) = act.steps
    assert st.fallback_shards == 1
    assert st.fallback_ondemand_hours == pytest.approx((last.seconds or 0) / 3600)
    assert st.tiers_used == ["cpu2 on-demand", "cpu2 spot"]
    spot_s = sum(a.seconds or 0 for a in attempts[:-1])
    expected = spot_s / 3600 * 0.03 + (last.seconds or 0) / 3600 * 0.10
    assert st.actual.cost_usd == pytest.approx(expected)
    text = Console(width=200, record=True, file=io.StringIO())
    status_view.render(act, text)
    out = text.export_text()
    assert "fallback on-demand h" in out and "ran on cpu2 on-demand, cpu2 spot" in out


def test_pending_indices_of_squeue_fields() -> None:
    assert pending_indices("4") == [4]
    assert pending_indices("[3-5%2]") == [3, 4, 5]
    assert pending_indices("[1,3-4]") == [1, 3, 4]
    assert pending_indices(None) == [0]
    assert pending_indices("garbage") == []


def test_the_runtime_rule_reads_the_plan(tmp_path: Path) -> None:
    wf = _project(tmp_path)
    planned, _ = plan_for(wf, {})
    st = fallback.spot_steps(planned)["work"]
    assert st.restart_h == pytest.approx(2 / 3600) and st.checkpoint_h == pytest.approx(2 / 3600)
    assert st.work_h == pytest.approx(40 / 3600) and st.saves
    # fits while elapsed + remaining + 2r + c <= due: 60 - 40 - 6 = 14 s from the start
    assert not fallback.must_fall_back(st, 13.9 / 3600, st.work_h)
    assert fallback.must_fall_back(st, 14.1 / 3600, st.work_h)
    half = fallback.remaining_h(st, 20, 40)
    assert half == pytest.approx(20 / 3600)
    assert not fallback.must_fall_back(st, 33.9 / 3600, half)
    assert fallback.shard_remaining_h(st, tmp_path / "none", 0) == st.work_h
    assert SlurmFallback.of(planned, OPTIONS.model_copy(update={"fallback": "none"})) is None
    od = SlurmFallback.of(planned, OPTIONS)
    assert od is not None and od.ondemand["work"].partition is None  # the cluster default
