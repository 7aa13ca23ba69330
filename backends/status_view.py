"""``exoc status``'s planned vs actual section: the run's ledger against its plan (#13)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from exo.compiler.plan import Plan

from .api import PlannedWorkflow, RunReport
from .runtime import actuals, ledger
from .runtime.actuals import RunActuals, StepActuals


def actuals_for(rep: RunReport, planned: PlannedWorkflow) -> RunActuals | None:
    """Planned vs actual for the report's run, if its backend keeps a ledger and it exists."""
    if not rep.ledger or not Path(rep.ledger).is_file():
        return None
    book = ledger.load(Path(rep.ledger))
    # The plan the run executed (recorded in the ledger), else today's plan of the file.
    plan = Plan.model_validate(book.plan) if book.plan else planned.plan
    return actuals.compare(planned.program, plan, planned.catalog, book, rep.run_id)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.2f}h"


def _number(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if unit == "$":
        return f"${x:.2f}" if x >= 0.01 or x == 0 else f"${x:.3g}"
    return f"{x:.3g}"


def _dev(x: float | None) -> str:
    return "" if x is None else f"{x:+.0f}%"


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
    table.add_row("  items committed", str(s.items), str(s.items_committed), "")
    table.add_row("  attempts", str(s.replicas), str(s.attempts), "")
    table.add_row("  preemptions", "", str(s.preemptions), "")
    table.add_row("  error retries", "", str(s.retries), "")
    if s.fallback_shards:
        # replica-hours the fallback ran on on-demand (shards moved: in the JSON)
        table.add_row("  fallback on-demand h", "", _number(s.fallback_ondemand_hours), "")
    return table


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
    for s in act.steps:
        console.print(_title(s), highlight=False, markup=False)
        console.print(_table(s))
    if act.skipped_lines:
        console.print(f"({act.skipped_lines} unreadable ledger line(s) skipped)", highlight=False)
