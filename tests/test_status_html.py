"""``exoc status FILE --format html``: planned vs actual with a predicted-vs-actual Gantt (#13).

The section is rendered from a ledger written with fixed times (a spot
preemption, an error retry, a fall-back attempt on on-demand), snapshot-tested,
checked for what the Gantt draws, opened in headless Chromium, and produced
end to end by the CLI after a real local run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from exo.backends.runtime import actuals, ledger
from exo.backends.runtime.ledger import LedgerWriter, Tier
from exo.compiler.cli import app, status_view
from exo.compiler.report import runview
from exo.compiler.report.facts import build_report
from exo.compiler.report.html import render_html
from exo.compiler.report.runview import AttemptSpan

from .golden import golden
from .localrun import plan, run, state_dir_of
from .test_html_browser import browser, console_messages, run_browser  # noqa: F401 - fixture

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from bench_actuals import workflow  # noqa: E402 - the benchmark's workflow


def _workflow(folder: Path) -> Path:
    """One throughput step of the synthetic command: startup 1 s, 40 items/s, batch 20, 2 replicas."""
    return workflow(folder, 1.0, 40.0, 240, 2, [20])


def _ledger(path: Path) -> None:
    """Shard 0 preempted on spot, then finished on on-demand; shard 1 failed once, then finished."""
    w = LedgerWriter(path)
    w.run_started(1000.0, "r7", "local", None)
    spot, ondemand = Tier("c6i.xlarge", True, 20), Tier("c6i.xlarge", False, 20)
    w.attempt_started(1000.5, "work", 0, 1, (0, 120), spot, 0)
    w.attempt_started(1000.5, "work", 1, 1, (120, 240), spot, 0)
    w.attempt_ended(
        1002.0, "work", 1, 1, exit_code=1, outcome="failed", committed=0, first_batch_at=1001.6
    )
    w.attempt_started(1002.3, "work", 1, 2, (120, 240), spot, 0)
    w.attempt_ended(
        1003.0, "work", 0, 1, exit_code=-9, outcome="preempted", committed=40, first_batch_at=1001.5
    )
    w.attempt_started(1003.2, "work", 0, 2, (0, 120), ondemand, 40)
    w.attempt_ended(
        1006.5, "work", 1, 2, exit_code=0, outcome="succeeded", committed=120, first_batch_at=1003.4
    )
    w.attempt_ended(
        1009.0, "work", 0, 2, exit_code=0, outcome="succeeded", committed=120, first_batch_at=1004.4
    )
    w.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("fixed")
    planned = plan(_workflow(folder))
    _ledger(folder / "l.jsonl")
    book = ledger.read(folder / "l.jsonl")
    act = actuals.compare(planned.program, planned.plan, planned.catalog, book, "r7")
    section = runview.section(status_view.view(act, book))
    report = build_report(planned.plan, planned.program, planned.catalog)
    return render_html(report, actuals=section, solve_time=False)


def _section(page: str) -> str:
    m = re.search(r'<section id="actuals">.*?</section>', page, re.S)
    assert m, "no planned-vs-actual section"
    return m.group(0)


def test_the_section_snapshot(page: str, snapshot: SnapshotAssertion) -> None:
    assert _section(page) == golden(snapshot, "html")


def test_the_gantt_draws_plan_and_every_attempt(page: str) -> None:
    sec = _section(page)
    assert sec.count('class="planned"') == 1  # one step, one planned bar
    bars = re.findall(r'<rect class="attempt ([a-z-]+) ([a-z-]+)"', sec)
    assert sorted(bars) == [
        ("failed", "spot"),
        ("preempted", "spot"),
        ("succeeded", "on-demand"),
        ("succeeded", "spot"),
    ]
    assert sec.count('class="hatch"') == 3  # the spot attempts, hatched as in the plan's Gantt
    # the failed and the preempted attempt overlap in time: two lanes, never drawn on each other
    ys = {float(y) for y in re.findall(r'<rect class="attempt [^"]*" x="[\d.]+" y="([\d.]+)"', sec)}
    assert len(ys) == 2
    assert "the last run" not in sec and "run r7" in sec
    assert "throughput" in sec or "as planned" in sec  # the verdict
    for label in ("duration", "replica-hours", "cost", "items/s per replica", "startup"):
        assert f"<td>{label}</td>" in sec
    assert "a dry run" not in page  # the footer says what the page holds


def test_running_attempts_reach_the_latest_time_known() -> None:
    a = AttemptSpan(
        shard=0,
        attempt=1,
        start_s=1.0,
        end_s=None,
        outcome="running",
        instance_type="x",
        spot=False,
    )
    b = AttemptSpan(
        shard=1, attempt=1, start_s=0.0, end_s=2.0, outcome="failed", instance_type="x", spot=False
    )
    c = AttemptSpan(
        shard=1, attempt=2, start_s=2.0, end_s=None, outcome="running", instance_type="x", spot=True
    )
    assert runview.lanes([a, b, c], as_of=5.0) == [[b, c], [a]]
    view = runview.RunView(
        run_id="r",
        tolerance_pct=10.0,
        planned_makespan_s=4.0,
        actual_makespan_s=None,
        makespan_deviation_pct=None,
        planned_cost_usd=1.0,
        actual_cost_usd=0.5,
        as_of_s=5.0,
        steps=[
            runview.StepRun(
                name="s",
                tier="x on-demand",
                replicas=2,
                batch_size=None,
                tiers_used=["x on-demand"],
                progress="running",
                verdict="running; so far as declared",
                planned_start_s=0.0,
                planned_duration_s=4.0,
                figures=[],
                counts=[],
                attempts=[a, b, c],
            )
        ],
    )
    svg = runview.gantt(view)
    ends = re.findall(r'class="attempt running[^"]*" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert len(ends) == 2
    right = {round(float(x) + float(w), 1) for x, w in ends}
    assert len(right) == 1  # both running bars end at the as-of time


@pytest.mark.browser
def test_the_section_renders_in_a_browser(browser: str, page: str, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "status.html"
    path.write_text(page, encoding="utf-8")
    r = run_browser(browser, path, tmp_path / "profile", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    dom = r.stdout
    assert 'data-ready="yes"' in dom
    m = re.search(r'<svg[^>]*class="chart actual-gantt"[^>]*data-drawn="(\d+)"', dom)
    assert m and int(m.group(1)) >= 1 + 4 + 3, m  # the planned bar, 4 attempts, 3 hatches


def test_status_html_end_to_end(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    assert run(plan(wf), wf, jobs=2).state == "done"
    args = ["status", str(wf), "--state-dir", str(state_dir_of(wf)), "--format", "html"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    sec = _section(r.stdout)
    assert len(re.findall(r'<rect class="attempt succeeded spot"', sec)) == 2
    assert "Content-Security-Policy" in r.stdout and "src=" not in sec
    none = CliRunner().invoke(
        app, ["status", str(wf), "--state-dir", str(tmp_path / "none"), "--format", "html"]
    )
    assert none.exit_code == 0 and 'id="actuals"' not in none.stdout
    bad = CliRunner().invoke(app, ["status", str(wf), "--format", "xml"])
    assert bad.exit_code == 2
