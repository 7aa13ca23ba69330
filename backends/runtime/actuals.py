"""Planned vs actual: a run's ledger held against the plan it ran (``exoc status``, #13).

Per step, from the plan (DESIGN §4) and the program's declared figures:
start, expected duration, replica-hours (``replicas x expected_duration_h``),
expected cost, declared items/s per replica on the planned tier and batch size,
and declared startup. From the ledger (:mod:`.ledger`): the first attempt's
start (from the run's start), the last attempt's end, the attempts' summed
lifetimes, their cost at the catalog price of the tier each ran on (an
instance holds ``ceil(replicas / instances)`` replicas, so a replica-hour costs
that share of its price), preemptions, error retries, items/s per replica
(items committed over the time after each attempt's first micro-batch) and
the observed startup (attempt start to first micro-batch). Attempts that the
deadline-aware fallback moved to on-demand are costed at the on-demand price
and their replica-hours counted apart (``fallback_ondemand_hours``). A deviation is
``(actual - planned) / planned`` in percent; the verdict names the largest one
beyond the tolerance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from exo.compiler.catalog import Catalog
from exo.compiler.frozen import Frozen
from exo.compiler.ir import Program
from exo.compiler.plan import Plan, StepPlan

from .ledger import AttemptEntry, Ledger
from .shards import planned_throughput

#: Deviations within this fraction are "as planned" (DESIGN §6's fidelity target).
TOLERANCE = 0.10
FIELDS = ("start_s", "duration_s", "replica_hours", "cost_usd", "items_per_s", "startup_s")


class Figures(Frozen):
    """One side of the comparison; ``None`` where not known (yet)."""

    start_s: float | None = None
    duration_s: float | None = None
    replica_hours: float | None = None
    cost_usd: float | None = None
    #: Items per second of one replica.
    items_per_s: float | None = None
    startup_s: float | None = None


class StepActuals(Frozen):
    name: str
    #: ``not started``, ``running`` or ``ended`` (every attempt so far has ended).
    progress: str
    instance_type: str
    spot: bool
    batch_size: int | None
    replicas: int
    #: Tiers the attempts ran on (``instance_type`` + `` spot`` / `` on-demand``).
    tiers_used: list[str]
    attempts: int
    preemptions: int
    retries: int
    items_committed: int
    items: int
    #: Shards the deadline-aware fallback moved to on-demand, and the replica-hours
    #: their attempts then ran there (costed at the on-demand price).
    fallback_shards: int = 0
    fallback_ondemand_hours: float = 0.0
    planned: Figures
    actual: Figures
    #: ``(actual - planned) / planned * 100`` per figure (``None``: not comparable).
    deviation_pct: dict[str, float | None]
    verdict: str


class RunActuals(Frozen):
    run_id: str | None
    tolerance_pct: float
    planned_makespan_s: float
    actual_makespan_s: float | None
    makespan_deviation_pct: float | None
    planned_cost_usd: float
    actual_cost_usd: float
    steps: tuple[StepActuals, ...]
    #: On-demand replica-hours used by the fallback, over all steps.
    fallback_ondemand_hours: float = 0.0
    #: Ledger lines that could not be read (a torn last line).
    skipped_lines: int = 0


def deviation(actual: float | None, planned: float | None) -> float | None:
    if actual is None or planned is None or planned <= 0:
        return None
    return round((actual - planned) / planned * 100.0, 1)


def _price(catalog: Catalog, instance_type: str, spot: bool, sp: StepPlan) -> float:
    row = catalog.get(instance_type)
    if row is None:
        return sp.price_usd_per_hour
    if spot and row.spot_usd_per_hour is not None:
        return row.spot_usd_per_hour
    return row.ondemand_usd_per_hour


def _planned(program: Program, sp: StepPlan) -> Figures:
    step = program.step(sp.name)
    rate = planned_throughput(step, sp) if step.throughput is not None else None
    return Figures(
        start_s=sp.start_h * 3600.0,
        duration_s=sp.expected_duration_h * 3600.0,
        replica_hours=sp.replicas * sp.expected_duration_h,
        cost_usd=sp.expected_cost_usd,
        items_per_s=rate,
        startup_s=step.startup_h * 3600.0,
    )


def items_per_s(attempts: Sequence[AttemptEntry], declared_startup_s: float) -> float | None:
    items = 0
    work = 0.0
    for a in attempts:
        if a.ended_at is None or a.items_committed <= 0:
            continue
        began = a.first_batch_at or (a.started_at + declared_startup_s)
        items += a.items_committed
        work += max(0.0, a.ended_at - began)
    return items / work if work > 0 else None


def _actual(
    attempts: Sequence[AttemptEntry],
    run_start: float,
    sp: StepPlan,
    catalog: Catalog,
    startup_s: float,
) -> Figures:
    if not attempts:
        return Figures()
    first = min(a.started_at for a in attempts)
    ends = [a.ended_at for a in attempts]
    done = all(e is not None for e in ends)
    per_instance = math.ceil(sp.replicas / max(1, sp.instances))
    seconds = sum(a.seconds or 0.0 for a in attempts)
    cost = 0.0
    for a in attempts:
        price = _price(catalog, a.instance_type or sp.instance_type, bool(a.spot), sp)
        cost += (a.seconds or 0.0) / 3600.0 * price / per_instance
    startups = [s for a in attempts if (s := a.startup_s) is not None]
    return Figures(
        start_s=first - run_start,
        duration_s=(max(e for e in ends if e is not None) - first) if done else None,
        replica_hours=seconds / 3600.0,
        cost_usd=cost,
        items_per_s=items_per_s(attempts, startup_s),
        startup_s=statistics.fmean(startups) if startups else None,
    )


def _hardware(sp: StepPlan) -> str:
    where = sp.accelerator or sp.instance_type
    return f"{where} at batch {sp.batch_size}" if sp.batch_size else where


def _fmt_rate(x: float) -> str:
    return f"{x:.3g}"


def verdict(
    sp: StepPlan, planned: Figures, dev: dict[str, float | None], progress: str, tol: float
) -> str:
    """One line: the largest deviation beyond the tolerance, or "as planned"."""
    if progress == "not started":
        return "not started"
    limit = tol * 100.0
    rate = dev.get("items_per_s")
    if rate is not None and abs(rate) > limit and planned.items_per_s:
        way = "below" if rate < 0 else "above"
        return (
            f"throughput {abs(rate):.0f}% {way} the declared {_fmt_rate(planned.items_per_s)} "
            f"items/s on {_hardware(sp)}"
        )
    start = dev.get("startup_s")
    if start is not None and abs(start) > limit and planned.startup_s:
        way = "longer" if start > 0 else "shorter"
        return f"startup {abs(start):.0f}% {way} than the declared {planned.startup_s:g}s"
    if progress == "running":
        return "running; so far as declared"
    dur = dev.get("duration_s")
    if dur is not None and abs(dur) > limit:
        way = "longer" if dur > 0 else "shorter"
        return f"took {abs(dur):.0f}% {way} than planned"
    cost = dev.get("cost_usd")
    if cost is not None and abs(cost) > limit:
        way = "more" if cost > 0 else "less"
        return f"cost {abs(cost):.0f}% {way} than planned"
    return f"as planned (within {limit:.0f}%)"


def _step(
    program: Program, sp: StepPlan, ledger: Ledger, run_start: float, catalog: Catalog, tol: float
) -> StepActuals:
    attempts = ledger.of_step(sp.name)
    planned = _planned(program, sp)
    actual = _actual(attempts, run_start, sp, catalog, planned.startup_s or 0.0)
    progress = (
        "not started"
        if not attempts
        else "running"
        if any(a.ended_at is None for a in attempts)
        else "ended"
    )
    dev = {f: deviation(getattr(actual, f), getattr(planned, f)) for f in FIELDS if f != "start_s"}
    dev["start_s"] = None  # a start of 0 has no ratio; the difference is shown instead
    tiers = sorted(
        {
            f"{a.instance_type or sp.instance_type} {'spot' if a.spot else 'on-demand'}"
            for a in attempts
        }
    )
    step = program.step(sp.name)
    moved = [a for a in attempts if a.fallback is not None]
    return StepActuals(
        name=sp.name,
        progress=progress,
        instance_type=sp.instance_type,
        spot=sp.spot,
        batch_size=sp.batch_size,
        replicas=sp.replicas,
        tiers_used=tiers,
        attempts=len(attempts),
        preemptions=sum(a.outcome in ("preempted", "lost") for a in attempts),
        retries=sum(a.outcome in ("failed", "timeout") for a in attempts),
        items_committed=sum(a.items_committed for a in attempts),
        items=step.items or 0,
        fallback_shards=len({a.shard for a in moved}),
        fallback_ondemand_hours=sum(a.seconds or 0.0 for a in moved) / 3600.0,
        planned=planned,
        actual=actual,
        deviation_pct=dict(sorted(dev.items())),
        verdict=verdict(sp, planned, dev, progress, tol),
    )


def compare(
    program: Program,
    plan: Plan,
    catalog: Catalog,
    ledger: Ledger,
    run_id: str | None,
    tolerance: float = TOLERANCE,
) -> RunActuals:
    """Every planned step against what the ledger recorded."""
    run_start = ledger.started_at or 0.0
    known = {s.name for s in program.steps}
    steps = [
        _step(program, sp, ledger, run_start, catalog, tolerance)
        for sp in plan.steps
        if sp.name in known
    ]
    ends = [end for s in steps if (end := _end(s)) is not None]
    finished = bool(steps) and len(ends) == len(steps)
    makespan = max(ends) if finished else None
    planned_makespan = (plan.makespan_h or 0.0) * 3600.0
    return RunActuals(
        run_id=run_id,
        tolerance_pct=tolerance * 100.0,
        planned_makespan_s=planned_makespan,
        actual_makespan_s=makespan,
        makespan_deviation_pct=deviation(makespan, planned_makespan),
        planned_cost_usd=plan.expected_cost_usd,
        actual_cost_usd=sum(s.actual.cost_usd or 0.0 for s in steps),
        steps=steps,
        fallback_ondemand_hours=sum(s.fallback_ondemand_hours for s in steps),
        skipped_lines=ledger.skipped,
    )


def _end(s: StepActuals) -> float | None:
    """When the step's last attempt ended, from the run's start (``None``: not ended)."""
    start, length = s.actual.start_s, s.actual.duration_s
    if s.progress != "ended" or start is None or length is None:
        return None
    return start + length
