"""What every report format shows, computed once: rows, savings, constraints, assumptions.

:func:`build_report` takes a :class:`~exo.compiler.plan.Plan` and, when they are
known, the program and the catalog it was planned from. With only a plan (a JSON
file) the report still has every figure of the plan; the "why" per step, the
binding analysis and the DAG need the program and the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from exo.compiler import figures
from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import (
    Option,
    quota_limits,
    quota_resources,
    resource_label,
    usage,
)
from exo.compiler.ir import Program
from exo.compiler.plan import Plan, StepPlan
from exo.compiler.quota import CPU_RESOURCE, ResourceKey, accelerator_of
from exo.compiler.report.why import (
    EPS_H,
    EPS_USD,
    StepOptions,
    Why,
    explain,
    step_floats,
    step_options,
)
from exo.compiler.schedule import Jobs, asap, makespan, priority_order, serial_sgs, tails
from exo.compiler.toposort import order_by_needs

BASELINES: tuple[tuple[str, str], ...] = (
    ("all_on_demand", "all on-demand"),
    ("naive", "naive"),
)


@dataclass(frozen=True, slots=True)
class StepFacts:
    plan: StepPlan
    #: Hours the step can grow without moving the plan's end.
    float_h: float
    #: Preemptions per hour of the chosen spot tier (``None`` on demand or unknown).
    preemptions_per_hour: float | None
    why: Why | None
    #: The step's ``description`` (needs the program).
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Saving:
    key: str
    label: str
    cost_usd: float | None
    makespan_h: float | None
    #: ``baseline cost - plan cost`` and that as a fraction of the baseline cost.
    saved_usd: float | None
    saved_fraction: float | None


#: How a limit relates to the plan:
#: ``binding``: the plan is at the limit (it presses against it);
#: ``shapes``: the plan has room left, but the limit rules out cheaper (for
#: ``objective = time``: faster) options, so it shapes the plan;
#: ``slack``: the plan would be the same without it;
#: ``unused``: a quota on something no step of the plan uses.
ConstraintState = Literal["binding", "shapes", "slack", "unused"]
#: How each state is written in every report format.
STATE_WORDS: dict[str, str] = {
    "binding": "binding",
    "shapes": "shapes the plan",
    "slack": "slack",
    "unused": "unused",
}
#: The plan is at a time limit when less than this is left (what ``0m`` shows).
AT_LIMIT_H = 0.5 / 60
#: ... and at a budget when less than half a cent is left.
AT_LIMIT_USD = 0.005


@dataclass(frozen=True, slots=True)
class Constraint:
    """A limit of the workflow and whether it shaped the plan."""

    name: str
    limit: str
    #: What the plan uses of it: ``6h43m``, ``$9.84``, ``peak 4``; ``-`` when unused.
    used: str
    #: ``1h17m to spare``, ``$50.16 under budget``, ``12 free at the peak``.
    slack: str
    state: ConstraintState
    #: Why it binds or shapes the plan (or nothing).
    detail: str = ""

    @property
    def binding(self) -> bool:
        """The plan presses against the limit."""
        return self.state == "binding"

    @property
    def words(self) -> str:
        return STATE_WORDS[self.state]


@dataclass(frozen=True, slots=True)
class Report:
    plan: Plan
    steps: tuple[StepFacts, ...]
    savings: tuple[Saving, ...]
    constraints: tuple[Constraint, ...]
    #: Step DAG edges (producer, consumer), sorted; empty without the program.
    edges: tuple[tuple[str, str], ...]
    #: (topic, text) pairs: catalog, snapshot, confidence, preemption rates, ...
    assumptions: tuple[tuple[str, str], ...]
    #: Whether ``edges`` is known (the program was given).
    dag_known: bool = False

    @property
    def feasible(self) -> bool:
        return self.plan.status != "infeasible"


# --------------------------------------------------------------------------- savings


def savings(plan: Plan) -> tuple[Saving, ...]:
    out: list[Saving] = []
    for key, label in BASELINES:
        b = plan.baselines.get(key)
        if b is None:
            out.append(Saving(key, label, None, None, None, None))
            continue
        saved = (
            None if plan.expected_cost_usd is None else b.expected_cost_usd - plan.expected_cost_usd
        )
        frac = (
            saved / b.expected_cost_usd if saved is not None and b.expected_cost_usd > 0 else None
        )
        out.append(Saving(key, label, b.expected_cost_usd, b.makespan_h, saved, frac))
    return tuple(out)


# --------------------------------------------------------------------------- constraints


def _order(program: Program, names: Sequence[str]) -> tuple[list[str], tuple[tuple[int, ...], ...]]:
    """Step names in a topological order (ties by position in ``names``), with
    predecessor positions; only the edges among ``names`` count."""
    wanted = set(names)
    needs: dict[str, tuple[str, ...]] = {}
    for n in names:
        step = program.step(n)
        before = step.predecessors() if step is not None else ()
        needs[n] = tuple(p for p in before if p in wanted)
    order = order_by_needs(list(needs.items()))
    pos = {n: i for i, n in enumerate(order)}
    preds = tuple(tuple(sorted(pos[p] for p in needs[n])) for n in order)
    return order, preds


def _pick(opts: Sequence[Option], by: str) -> Option:
    if by == "cost":
        return min(opts, key=lambda o: (o.cost, o.P, o.key))
    return min(opts, key=lambda o: (o.P, o.cost, o.key))


def _greedy_span(
    chosen: Sequence[Option],
    preds: tuple[tuple[int, ...], ...],
    resources: tuple[ResourceKey, ...],
    limits: tuple[int, ...],
) -> tuple[float, float]:
    """Makespan of one option per step: as soon as possible, and under the quota."""
    plain = Jobs(tuple(o.P for o in chosen), preds)
    free = makespan(plain, asap(plain))
    if not resources:
        return free, free
    jobs = Jobs(plain.durations, preds, tuple(usage(o, resources) for o in chosen), limits)
    order = priority_order(jobs, [-t for t in tails(jobs)])
    try:
        return free, makespan(jobs, serial_sgs(jobs, order))
    except ValueError:  # an option alone exceeds the quota
        return free, float("inf")


def _usage_of(step: StepPlan, resource: ResourceKey, catalog: Catalog | None) -> int:
    if resource == CPU_RESOURCE:
        inst = catalog.get(step.instance_type) if catalog is not None else None
        vcpus = inst.vcpus if inst is not None else step.vcpus
        return step.instances * vcpus
    if step.accelerator is not None and accelerator_of(resource) == step.accelerator:
        return step.instances * step.accelerator_count
    return 0


def peak_usage(plan: Plan, resource: ResourceKey, catalog: Catalog | None = None) -> int:
    """The most of ``resource`` the planned steps hold at one instant.

    A step holds its usage on ``[start, start + P)``; at equal times releases come
    before acquisitions (a successor may start when its predecessor ends).
    """
    events: list[tuple[float, int, int]] = []
    for s in plan.steps:
        use = _usage_of(s, resource, catalog)
        if use and s.p_duration_h > EPS_H:
            events.append((s.start_h, 1, use))
            events.append((s.start_h + s.p_duration_h - EPS_H, 0, -use))
    level = peak = 0
    for _, _, delta in sorted(events):
        level += delta
        peak = max(peak, level)
    return peak


def _deadline(plan: Plan, cheap_free: float | None, cheap_quota: float | None) -> Constraint:
    assert plan.deadline_h is not None
    d = plan.deadline_h
    m = plan.makespan_h or 0.0
    at_limit = d - m < AT_LIMIT_H
    spare = "at the deadline" if at_limit else f"{figures.hours(d - m)} to spare"
    c = Constraint(
        "deadline", figures.hours(d), figures.hours(m), spare, "binding" if at_limit else "slack"
    )
    if plan.objective == "time":
        return c
    why = ""
    if cheap_free is not None and cheap_free > d + EPS_H:
        why = f"the cheapest option of every step would take {figures.hours(cheap_free)}"
    elif cheap_free is not None and cheap_quota is not None and cheap_quota > d + EPS_H:
        why = (
            "the cheapest options would fit in time but not side by side under the quota "
            f"({figures.hours(cheap_quota)})"
        )
    if why:
        return replace(c, state="binding" if at_limit else "shapes", detail=why)
    return c


def _budget(plan: Plan, fast_cost: float | None) -> Constraint:
    assert plan.budget_usd is not None
    b = plan.budget_usd
    cost = plan.expected_cost_usd or 0.0
    at_limit = b - cost < AT_LIMIT_USD
    spare = "at the budget" if at_limit else f"{figures.money(b - cost)} under budget"
    c = Constraint(
        "budget", figures.money(b), figures.money(cost), spare, "binding" if at_limit else "slack"
    )
    if plan.objective == "time" and fast_cost is not None and fast_cost > b + EPS_USD:
        why = f"the fastest option of every step would cost {figures.money(fast_cost)}"
        return replace(c, state="binding" if at_limit else "shapes", detail=why)
    return c


def _quota(label: str, q: int, peak: int, ruled: list[str]) -> Constraint:
    """Full at the peak: binding; rules out cheaper options: shapes the plan; not
    used by any planned step: unused."""
    notes: list[str] = []
    if peak >= q:
        notes.append("full while steps run side by side")
    if ruled:
        notes.append("rules out cheaper options (" + "; ".join(ruled) + ")")
    if peak >= q:
        state: ConstraintState = "binding"
    elif ruled:
        state = "shapes"
    elif peak == 0:
        return Constraint(f"quota {label}", str(q), "-", "-", "unused", "no planned step uses it")
    else:
        state = "slack"
    return Constraint(
        f"quota {label}",
        str(q),
        f"peak {peak}",
        f"{q - peak} free at the peak",
        state,
        "; ".join(notes),
    )


def constraints(
    plan: Plan,
    program: Program | None = None,
    catalog: Catalog | None = None,
    options: Mapping[str, StepOptions] | None = None,
) -> tuple[Constraint, ...]:
    """Deadline, budget and each quota: how much is used and whether it shaped the plan."""
    if plan.status == "infeasible" or not plan.steps:
        return ()  # the plan's explanation says which limit cannot be met
    cheap_free = cheap_quota = fast_cost = None
    resources: tuple[ResourceKey, ...] = ()
    limits: tuple[int, ...] = ()
    outside: dict[str, list[str]] = {}
    if program is not None and catalog is not None:
        quota = program.workflow.quota
        resources, limits = quota_resources(quota), quota_limits(quota)
        if options is None:
            options = step_options(program, catalog, plan.confidence)
        known = set(program.step_names())
        names = [s.name for s in plan.steps if s.name in known]
        order, preds = _order(program, names)
        kept: list[tuple[Option, ...]] = []
        for n in order:
            opts, within, over = options[n].every, options[n].within_quota, options[n].over_quota
            kept.append(within or opts)
            if (
                within
                and opts
                and min(o.cost for o in opts) < min(o.cost for o in within) - EPS_USD
            ):
                # the cheapest options the quota rules out come first
                for rej in sorted(over, key=lambda r: r.cost if r.cost is not None else 0.0):
                    outside.setdefault(rej.step, []).append(rej.message)
        if all(kept):
            cheap = [_pick(k, "cost") for k in kept]
            cheap_free, cheap_quota = _greedy_span(cheap, preds, resources, limits)
            fast_cost = sum(_pick(k, "time").cost for k in kept)
    out: list[Constraint] = []
    if plan.deadline_h is not None:
        out.append(_deadline(plan, cheap_free, cheap_quota))
    if plan.budget_usd is not None:
        out.append(_budget(plan, fast_cost))
    for r, q in zip(resources, limits, strict=True):
        label = resource_label(r)
        ruled = [
            f"{s}: {next(m for m in msgs if f' {label},' in m)}"
            for s, msgs in sorted(outside.items())
            if any(f" {label}," in m for m in msgs)
        ]
        out.append(_quota(label, q, peak_usage(plan, r, catalog), ruled))
    return tuple(out)


# --------------------------------------------------------------------------- assumptions


def assumptions(plan: Plan, catalog: Catalog | None = None) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    name = catalog.name if catalog is not None else plan.catalog
    snapshot = catalog.snapshot if catalog is not None else plan.catalog_snapshot
    out.append(("catalog", name or "unknown"))
    out.append(("price snapshot", snapshot or "not dated"))
    if catalog is not None and catalog.source:
        out.append(("price source", catalog.source))
    out.append(
        (
            "confidence",
            f"{plan.confidence:.0%}: under the model, the whole plan ends by its makespan with "
            f"probability at least {plan.confidence:.0%} (each spot step and instance keeps "
            "its share); costs are expected values",
        )
    )
    spot = sorted({s.instance_type for s in plan.steps if s.spot})
    if catalog is not None:
        rates = []
        for it in spot:
            inst = catalog.get(it)
            if inst is not None:
                rates.append(f"{it} {inst.spot_preemptions_per_hour:g}/h")
        if rates:
            out.append(("spot preemptions", ", ".join(rates)))
        out.append(
            (
                "default preemption rate",
                f"{catalog.default_spot_preemptions_per_hour:g}/h for catalog rows without one",
            )
        )
    elif spot:
        out.append(("spot tiers", ", ".join(spot)))
    out.append(
        (
            "pricing",
            "replicas are packed onto instances (as many per instance as its accelerators "
            "hold); each instance is rented whole at the catalog's hourly price",
        )
    )
    if plan.lower_bound_usd is not None:
        bound = f"{figures.money(plan.lower_bound_usd)} (no plan meeting the limits costs less)"
        if plan.gap is not None and plan.status == "feasible":
            bound += f"; gap {figures.percent(plan.gap)}"
        out.append(("proven lower bound", bound))
    return tuple(out)


def execution_assumptions(plan: Plan, program: Program | None) -> tuple[tuple[str, str], ...]:
    """What the figures assume of the commands themselves (DESIGN §6): the user's claims."""
    if program is None or not plan.steps:
        return ()
    out = [
        (
            "replicas",
            "each replica runs as one long-lived process over its share of the items, "
            "paying `startup` once per start",
        )
    ]
    batch, interval = [], []
    names = set(program.step_names())
    for s in plan.steps:
        if not s.spot or s.name not in names:
            continue
        ck = program.step(s.name).checkpoint
        if ck.kind == "batch":
            batch.append(s.name)
        elif ck.kind == "interval":
            interval.append(f"{s.name} every {figures.hours(ck.interval_h)}")
    if batch:
        out.append(
            (
                "checkpoint = batch",
                f"{', '.join(batch)}: the command commits every batch to its checkpoint "
                "folder and, restarted, skips what is committed (exo.worker, or the contract "
                "in docs/resumable-commands.md); a preemption then loses at most one batch",
            )
        )
    if interval:
        out.append(
            (
                "interval checkpoints",
                f"{', '.join(interval)}: the command records its progress in its checkpoint "
                "folder at least that often and resumes from it",
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- the report


def _rates(plan: Plan, catalog: Catalog | None) -> Mapping[str, float | None]:
    out: dict[str, float | None] = {}
    for s in plan.steps:
        inst = catalog.get(s.instance_type) if catalog is not None and s.spot else None
        out[s.name] = inst.spot_preemptions_per_hour if inst is not None else None
    return out


def _descriptions(program: Program | None) -> dict[str, str]:
    if program is None:
        return {}
    return {s.name: s.description for s in program.steps if s.description is not None}


def build_report(
    plan: Plan, program: Program | None = None, catalog: Catalog | None = None
) -> Report:
    """Everything the renderers show, from a plan (and its program and catalog if known)."""
    whys: Mapping[str, Why] = {}
    options: Mapping[str, StepOptions] | None = None
    floats: Mapping[str, float] = {}
    edges: tuple[tuple[str, str], ...] = ()
    if program is not None:
        planned = {s.name for s in plan.steps}
        edges = tuple(
            sorted(
                (p, s.name)
                for s in program.steps
                if s.name in planned
                for p in s.predecessors()
                if p in planned
            )
        )
        if plan.steps:
            floats = step_floats(plan, program)
        if catalog is not None:
            options = step_options(program, catalog, plan.confidence)
            whys = explain(program, catalog, plan, options)
    rates = _rates(plan, catalog)
    about = _descriptions(program)
    rows = tuple(
        StepFacts(
            s, floats.get(s.name, 0.0), rates.get(s.name), whys.get(s.name), about.get(s.name)
        )
        for s in plan.steps
    )
    return Report(
        plan=plan,
        steps=rows,
        savings=savings(plan),
        constraints=constraints(plan, program, catalog, options),
        edges=edges,
        assumptions=assumptions(plan, catalog) + execution_assumptions(plan, program),
        dag_known=program is not None,
    )
