"""``exoc status``'s planned vs actual section: the run's ledger against its plan (#13)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from exo.backends.api import PlannedWorkflow, RunReport
from exo.backends.runtime import actuals, ledger
from exo.backends.runtime.actuals import RunActuals, StepActuals
from exo.backends.runtime.ledger import Ledger
from exo.compiler.calibration import calibration_notes
from exo.compiler.plan import Plan
from exo.compiler.report.runview import AttemptSpan, FigureRow, RunView, StepRun
from exo.compiler.report.runview import number as _number
from exo.compiler.report.runview import seconds as duration
from exo.compiler.report.runview import signed_pct as _dev

#: A run's ledger and the plan it ran (see :func:`ledger_of`).
Recorded = tuple[Plan, Ledger]


def ledger_of(rep: RunReport, planned: PlannedWorkflow) -> Recorded | None:
    """The report's run ledger and the plan it ran, if its backend keeps one and it exists."""
    if not rep.ledger or not Path(rep.ledger).is_file():
        return None
    book = ledger.load(Path(rep.ledger))
    # The plan the run executed (recorded in the ledger), else today's plan of the file.
    plan = Plan.model_validate(book.plan) if book.plan else planned.plan
    return plan, book


def calibration_warning(found: Recorded | None, planned: PlannedWorkflow) -> str | None:
    """A warning when the run was planned with a calibration and ``status`` was not given
    one: the planned items/s and startup it would compare with are then the ``.exo``'s
    declared figures, not the ones the run was planned with."""
    notes = calibration_notes(found[0]) if found is not None else []
    if not notes or calibration_notes(planned.plan):
        return None
    return (
        f"warning: this run was planned with calibrated figures ({'; '.join(notes)}); "
        "the planned items/s and startup below are the .exo's declared ones. "
        "To fix: pass the calibration file the run used: exoc status ... --calibration FILE"
    )


def actuals_for(
    found: Recorded | None, rep: RunReport, planned: PlannedWorkflow
) -> RunActuals | None:
    """Planned vs actual for the report's run, if its backend keeps a ledger and it exists."""
    if found is None:
        return None
    plan, book = found
    return actuals.compare(planned.program, plan, planned.catalog, book, rep.run_id)


ROWS = (
    ("start", "start_s", "duration"),
    ("duration", "duration_s", "duration"),
    ("replica-hours", "replica_hours", ""),
    ("cost", "cost_usd", "$"),
    ("items/s per replica", "items_per_s", ""),
    ("startup", "startup_s", "duration"),
)


def _title(s: StepActuals) -> str:
    tier = f"{s.instance_type} {'spot' if s.spot else 'on-demand'}"
    batch = f", batch {s.batch_size}" if s.batch_size else ""
    used = ", ".join(s.tiers_used)
    ran = f"; ran on {used}" if used and used != tier else ""
    return f"{s.name} on {tier} ({s.replicas} replica(s){batch}{ran}): {s.verdict}"


def _table(s: StepActuals) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2))
    table.add_column("  ", justify="left")
    for col in ("planned", "actual", "deviation"):
        table.add_column(col, justify="right")
    for label, field, fmt in ROWS:
        p, a = getattr(s.planned, field), getattr(s.actual, field)
        if fmt == "duration":
            cells = (duration(p), duration(a))
        else:
            cells = (_number(p, fmt), _number(a, fmt))
        table.add_row(f"  {label}", *cells, _dev(s.deviation_pct.get(field)))
    for label, planned, actual in _counts(s):
        table.add_row(f"  {label}", planned, actual, "")
    return table


def _counts(s: StepActuals) -> list[tuple[str, str, str]]:
    """``(label, planned, actual)``: items, attempts, preemptions, error retries, fallback."""
    return [
        ("items committed", str(s.items), str(s.items_committed)),
        ("attempts", str(s.replicas), str(s.attempts)),
        ("preemptions", "", str(s.preemptions)),
        ("error retries", "", str(s.retries)),
        *(
            # replica-hours the fallback ran on on-demand (shards moved: in the JSON)
            [("fallback on-demand h", "", _number(s.fallback_ondemand_hours))]
            if s.fallback_shards
            else []
        ),
    ]


#: Above this many steps, the text shows the steps furthest from their planned duration
#: (5,000 steps' blocks took 23 s to lay out, and no one reads them).
STEP_BLOCKS = 20


def _blocks(steps: Sequence[StepActuals]) -> Sequence[StepActuals]:
    """The steps whose block the text shows, in the run's order."""
    if len(steps) <= STEP_BLOCKS:
        return steps
    far = sorted(
        range(len(steps)), key=lambda i: -abs(steps[i].deviation_pct.get("duration_s") or 0.0)
    )
    return [steps[i] for i in sorted(far[:STEP_BLOCKS])]


def render(act: RunActuals, console: Console) -> None:
    """The section as text: the run's totals, then per step its figures and verdict."""
    makespan = _dev(act.makespan_deviation_pct)
    console.print(
        f"\nplanned vs actual (tolerance {act.tolerance_pct:.0f}%): makespan "
        f"{duration(act.planned_makespan_s)} planned, {duration(act.actual_makespan_s)} actual"
        + (f" ({makespan})" if makespan else "")
        + f"; cost {_number(act.planned_cost_usd, '$')} planned, "
        f"{_number(act.actual_cost_usd, '$')} at catalog prices",
        highlight=False,
        markup=False,
    )
    if act.fallback_ondemand_hours:
        console.print(
            f"the deadline-aware fallback ran {act.fallback_ondemand_hours:.3g} replica-hour(s) "
            "on on-demand (costed at the on-demand price)",
            highlight=False,
            markup=False,
        )
    shown = _blocks(act.steps)
    for s in shown:
        console.print(_title(s), highlight=False, markup=False)
        console.print(_table(s))
    if len(shown) < len(act.steps):
        console.print(
            f"({len(act.steps) - len(shown):,} more steps, closer to their plan; "
            "`--format json` or `--format html` shows every step)",
            highlight=False,
            markup=False,
        )
    if act.skipped_lines:
        console.print(f"({act.skipped_lines} unreadable ledger line(s) skipped)", highlight=False)


def _step_run(s: StepActuals, book: Ledger, t0: float) -> StepRun:
    """One step of the HTML section: its figures, counts and attempts (times from ``t0``)."""
    spans = [
        AttemptSpan(
            shard=a.shard,
            attempt=a.attempt,
            start_s=a.started_at - t0,
            end_s=None if a.ended_at is None else a.ended_at - t0,
            outcome=a.outcome,
            instance_type=a.instance_type or s.instance_type,
            spot=s.spot if a.spot is None else a.spot,
        )
        for a in book.of_step(s.name)
    ]
    figures = [
        FigureRow(
            label=label,
            unit="s" if unit == "duration" else unit,
            planned=getattr(s.planned, field),
            actual=getattr(s.actual, field),
            deviation_pct=s.deviation_pct.get(field),
        )
        for label, field, unit in ROWS
    ]
    return StepRun(
        name=s.name,
        tier=f"{s.instance_type} {'spot' if s.spot else 'on-demand'}",
        replicas=s.replicas,
        batch_size=s.batch_size,
        tiers_used=s.tiers_used,
        progress=s.progress,
        verdict=s.verdict,
        planned_start_s=s.planned.start_s or 0.0,
        planned_duration_s=s.planned.duration_s or 0.0,
        figures=figures,
        counts=[(label, p, a) for label, p, a in _counts(s)],
        attempts=spans,
    )


def view(act: RunActuals, book: Ledger) -> RunView:
    """The plain data the HTML report's planned-vs-actual section draws (times from the run's start)."""
    t0 = book.started_at or 0.0
    times = [t for a in book.attempts for t in (a.started_at, a.ended_at) if t is not None]
    return RunView(
        run_id=act.run_id,
        tolerance_pct=act.tolerance_pct,
        planned_makespan_s=act.planned_makespan_s,
        actual_makespan_s=act.actual_makespan_s,
        makespan_deviation_pct=act.makespan_deviation_pct,
        planned_cost_usd=act.planned_cost_usd,
        actual_cost_usd=act.actual_cost_usd,
        cost_deviation_pct=actuals.deviation(act.actual_cost_usd, act.planned_cost_usd),
        as_of_s=(max(times) - t0) if times else 0.0,
        steps=[_step_run(s, book, t0) for s in act.steps],
        skipped_lines=act.skipped_lines,
    )


def html(found: Recorded | None, rep: RunReport, planned: PlannedWorkflow) -> str:
    """The plan report of the run's plan with its planned-vs-actual section (when a ledger exists)."""
    from exo.compiler.report import runview
    from exo.compiler.report.facts import build_report
    from exo.compiler.report.html import render_html

    plan = found[0] if found else planned.plan
    act = actuals_for(found, rep, planned)
    section = runview.section(view(act, found[1])) if act is not None and found else None
    report = build_report(plan, planned.program, planned.catalog)
    return render_html(report, actuals=section, solve_time=False)
