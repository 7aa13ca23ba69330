"""``exoc status``: planned vs actual from the run ledger (#13).

End to end, a workflow whose command behaves as declared (the fidelity
benchmark's ``synthetic_step.py``: ``startup`` once per process from its
start, then the declared items/s, committing every micro-batch through the
worker helper) is run on the local backend; ``exoc status --format json``
must report what the command's own timestamps say. The text and JSON are
snapshot-tested on a ledger written with fixed times.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from exo.backends.runtime import actuals, ledger
from exo.backends.runtime.ledger import LedgerWriter, Tier
from exo.compiler.cli import app, status_view

from .golden import golden
from .localrun import plan, run, state_dir_of

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SYNTHETIC = BENCHMARKS / "synthetic_step.py"
sys.path.insert(0, str(BENCHMARKS))
from bench_actuals import own_span, workflow  # noqa: E402 - the benchmark's workflow

STARTUP_S = 1.0
RATE = 40.0
ITEMS = 240
REPLICAS = 2


def synthetic_workflow(folder: Path) -> Path:
    """One throughput step of the synthetic command: startup 1 s, 40 items/s, batch 20."""
    return workflow(folder, STARTUP_S, RATE, ITEMS, REPLICAS, [20])


def test_status_reports_what_the_commands_did(tmp_path: Path) -> None:
    wf = synthetic_workflow(tmp_path)
    rep = run(plan(wf), wf, jobs=REPLICAS)
    assert rep.state == "done"
    r = CliRunner().invoke(
        app, ["status", str(wf), "--format", "json", "--state-dir", str(state_dir_of(wf))]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    pva = data["plan_vs_actual"]
    (step,) = pva["steps"]
    assert step["progress"] == "ended"
    assert (step["attempts"], step["preemptions"], step["retries"]) == (REPLICAS, 0, 0)
    assert step["items_committed"] == ITEMS
    # The runner's figures agree with the command's own clock (within 10%).
    assert step["actual"]["duration_s"] == pytest.approx(own_span(tmp_path), rel=0.10)
    # ... and the command did what it declared: the observed rate and startup are the
    # declared ones (a loose bound here; benchmarks/bench_actuals.py measures them).
    assert step["actual"]["items_per_s"] == pytest.approx(RATE, rel=0.5)
    assert step["actual"]["startup_s"] == pytest.approx(STARTUP_S, rel=0.5)
    assert step["planned"]["items_per_s"] == RATE and step["planned"]["startup_s"] == STARTUP_S
    assert pva["actual_makespan_s"] is not None and pva["actual_cost_usd"] > 0
    assert step["verdict"]
    text = CliRunner().invoke(app, ["status", str(wf), "--state-dir", str(state_dir_of(wf))])
    assert text.exit_code == 0 and "planned vs actual" in text.stdout


def _fixed_ledger(path: Path) -> None:
    """Two shards: one preempted once (a slower rate and startup than declared), one clean."""
    w = LedgerWriter(path)
    w.run_started(1000.0, "r1", "local", None)
    tier = Tier("c6i.xlarge", True, 20)
    w.attempt_started(1000.5, "work", 0, 1, (0, 120), tier, 0)
    w.attempt_started(1000.5, "work", 1, 1, (120, 240), tier, 0)
    w.attempt_ended(
        1003.0, "work", 0, 1, exit_code=-9, outcome="preempted", committed=40, first_batch_at=1002.0
    )
    w.attempt_started(1003.2, "work", 0, 2, (0, 120), tier, 40)
    w.attempt_ended(
        1009.0, "work", 0, 2, exit_code=0, outcome="succeeded", committed=120, first_batch_at=1004.7
    )
    w.attempt_ended(
        1007.0, "work", 1, 1, exit_code=0, outcome="succeeded", committed=120, first_batch_at=1002.0
    )
    w.close()


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> actuals.RunActuals:
    folder = tmp_path_factory.mktemp("fixed")
    planned = plan(synthetic_workflow(folder))
    _fixed_ledger(folder / "l.jsonl")
    book = ledger.read(folder / "l.jsonl")
    return actuals.compare(planned.program, planned.plan, planned.catalog, book, "r1")


def test_status_json_snapshot(fixed: actuals.RunActuals, snapshot: SnapshotAssertion) -> None:
    (step,) = fixed.steps
    assert (step.attempts, step.preemptions) == (3, 1)
    assert step.verdict.startswith("throughput ") and "below the declared 40" in step.verdict
    assert json.dumps(fixed.model_dump(mode="json"), indent=2, sort_keys=True) == golden(
        snapshot, "json"
    )


def test_status_text_snapshot(fixed: actuals.RunActuals, snapshot: SnapshotAssertion) -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None, force_terminal=False)
    status_view.render(fixed, console)
    assert out.getvalue() == golden(snapshot, "txt")


def test_no_ledger_means_no_section(tmp_path: Path) -> None:
    wf = synthetic_workflow(tmp_path)
    r = CliRunner().invoke(
        app, ["status", str(wf), "--format", "json", "--state-dir", str(tmp_path / "none")]
    )
    assert r.exit_code == 0
    assert json.loads(r.stdout)["plan_vs_actual"] is None
