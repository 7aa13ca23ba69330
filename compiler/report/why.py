"""Why each step got its tier: the reason, and the best alternatives that were not chosen.

For every step the chosen option is found among the step's options (DESIGN §3,
quota applied) and compared with:

- the cheapest option, when it is cheaper than the chosen one;
- the best option on another tier (another instance type, or the other side of spot);
- for a spot step, the best on-demand option (the price of not taking the spot risk).

"Best" prefers options that keep the plan within the deadline and the budget,
then the lowest cost, then the shortest duration. The effect of an alternative on
the plan is the step's change in duration beyond its *float* (how much the step
can grow without delaying the end, from the planned schedule and the DAG). Without
quotas that is exact for a single change; with quotas it is an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import (
    Option,
    Rejection,
    apply_quota,
    enumerate_steps,
    workflow_confidence,
)
from exo.compiler.figures import money
from exo.compiler.ir import Program, step_order
from exo.compiler.plan import Plan, StepPlan
from exo.compiler.preemption import Confidence

#: Money and time closer than these are equal when comparing options.
EPS_USD = 1e-6
EPS_H = 1e-6

AltKind = Literal["cheaper", "other_tier", "on_demand"]


@dataclass(frozen=True, slots=True)
class Alternative:
    """An option that was not chosen, and what taking it instead would do."""

    kind: AltKind
    option: Option
    #: ``alternative cost - chosen cost`` (expected USD).
    cost_delta_usd: float
    #: ``alternative P - chosen P`` (hours at the workflow's confidence).
    duration_delta_h: float
    #: The plan's makespan with this alternative and every other step unchanged.
    plan_makespan_h: float
    #: The plan's expected cost with this alternative.
    plan_cost_usd: float
    misses_deadline: bool
    over_budget: bool


@dataclass(frozen=True, slots=True)
class Why:
    """The reason a step runs where it does."""

    reason: str
    alternatives: tuple[Alternative, ...]
    #: How many options the step had (quota applied).
    options: int


def step_floats(plan: Plan, program: Program) -> dict[str, float]:
    """Hours each step can grow without moving the plan's end (total float).

    Over the step DAG (edges from each step's predecessors) in reverse topological
    order (``ir.step_order``): the report loads no networkx (a tenth
    of a second of ``exoc plan`` and ``exoc status`` for a topological sort)."""
    by_name = {s.name: s for s in plan.steps}
    finish = {s.name: s.start_h + s.p_duration_h for s in plan.steps}
    end = plan.makespan_h if plan.makespan_h is not None else max(finish.values(), default=0.0)
    successors: dict[str, list[str]] = {s.name: [] for s in program.steps}
    for s in program.steps:
        for p in s.predecessors():
            successors.setdefault(p, []).append(s.name)
    latest: dict[str, float] = {}
    for name in reversed(step_order(program)):
        if name not in by_name:
            continue
        succ = [s for s in successors[name] if s in by_name]
        latest[name] = min((latest[s] - by_name[s].p_duration_h for s in succ), default=end)
    return {n: max(0.0, latest.get(n, end) - finish[n]) for n in by_name}


def _matches(o: Option, s: StepPlan) -> bool:
    return (
        o.instance_type == s.instance_type
        and o.spot == s.spot
        and o.batch_size == s.batch_size
        and o.replicas == s.replicas
    )


def _alternative(
    kind: AltKind, o: Option, chosen: Option, plan: Plan, slack_h: float
) -> Alternative:
    dp = o.P - chosen.P
    end = plan.makespan_h or 0.0
    makespan = end + max(0.0, dp - slack_h)
    cost = (plan.expected_cost_usd or 0.0) - chosen.cost + o.cost
    return Alternative(
        kind=kind,
        option=o,
        cost_delta_usd=o.cost - chosen.cost,
        duration_delta_h=dp,
        plan_makespan_h=makespan,
        plan_cost_usd=cost,
        misses_deadline=plan.deadline_h is not None and makespan > plan.deadline_h + EPS_H,
        over_budget=plan.budget_usd is not None and cost > plan.budget_usd + EPS_USD,
    )


def _rank(a: Alternative) -> tuple[bool, float, float, tuple[str, bool, int, int]]:
    """Options within the limits first, cheapest first; otherwise the closest to fitting."""
    if a.misses_deadline or a.over_budget:
        return (True, a.plan_makespan_h, a.plan_cost_usd, a.option.key)
    return (False, a.option.cost, a.option.P, a.option.key)


def _best(alts: Sequence[Alternative]) -> Alternative | None:
    return min(alts, key=_rank, default=None)


def _reason(plan: Plan, chosen: Option, opts: Sequence[Alternative], slack_h: float) -> str:
    cheapest = min((a.option.cost for a in opts), default=chosen.cost)
    fastest = min((a.option.P for a in opts), default=chosen.P)
    is_cheapest = chosen.cost <= cheapest + EPS_USD
    duration = chosen.P
    is_fastest = duration <= fastest + EPS_H
    n = len(opts) + 1
    if n == 1:
        return "the only option"
    if plan.objective == "time":
        end = plan.makespan_h or 0.0
        if is_fastest and is_cheapest:
            return f"the fastest and cheapest of {n} options"
        if is_fastest:
            return f"the fastest of {n} options"
        faster = [a for a in opts if duration > a.option.P + EPS_H]
        cheaper = [a for a in opts if a.option.cost < chosen.cost - EPS_USD]
        if slack_h > EPS_H and all(a.plan_makespan_h <= end + EPS_H for a in faster):
            if all(a.plan_makespan_h > end + EPS_H or a.over_budget for a in cheaper):
                return "off the critical path: the cheapest option that does not delay the plan"
            return "off the critical path: a faster option would not end the plan sooner"
        if faster and all(a.over_budget for a in faster):
            return "the fastest option within the budget"
        return "the fastest choice that fits the schedule and the quota"
    if is_cheapest:
        return f"the cheapest of {n} options"
    cheaper = [a for a in opts if a.option.cost < chosen.cost - EPS_USD]
    if cheaper and all(a.misses_deadline for a in cheaper):
        return "the cheapest option that keeps the plan within the deadline"
    if plan.status == "feasible":
        return "the cheapest found within the time limit"
    return "the cheapest option that fits the schedule and the quota"


def unpromised_note(chosen: Option, dropped: Sequence[Rejection], confidence: float) -> str | None:
    """Spot that would have been cheaper than the chosen option but cannot be promised."""
    cheaper = [
        r
        for r in dropped
        if r.kind == "unpromisable" and r.cost is not None and r.cost < chosen.cost - EPS_USD
    ]
    if not cheaper:
        return None
    best = min(cheaper, key=lambda r: (r.cost or 0.0, r.instance_type))
    return (
        f"spot on {best.instance_type} would cost {money(best.cost or 0.0)} (expected) but "
        f"cannot be promised at {confidence:.0%} confidence: {best.message.split(': ', 1)[-1]}"
    )


def explain_step(
    plan: Plan,
    step: StepPlan,
    options: Sequence[Option],
    slack_h: float,
    dropped: Sequence[Rejection] = (),
) -> Why | None:
    """The reason and up to three alternatives for one step, or ``None`` if its option is gone."""
    chosen = next((o for o in options if _matches(o, step)), None)
    if chosen is None:
        return None
    others = [
        _alternative("cheaper", o, chosen, plan, slack_h) for o in options if not _matches(o, step)
    ]
    picked: list[Alternative] = []

    def add(kind: AltKind, a: Alternative | None) -> None:
        if a is None or any(p.option == a.option for p in picked):
            return
        picked.append(replace(a, kind=kind))

    cheaper = [a for a in others if a.option.cost < chosen.cost - EPS_USD]
    if cheaper:
        add("cheaper", min(cheaper, key=lambda a: (a.option.cost, a.option.P, a.option.key)))
    tier = (chosen.instance_type, chosen.spot)
    add("other_tier", _best([a for a in others if (a.option.instance_type, a.option.spot) != tier]))
    if chosen.spot:
        add("on_demand", _best([a for a in others if not a.option.spot]))
    reason = _reason(plan, chosen, others, slack_h)
    note = unpromised_note(chosen, dropped, plan.confidence)
    if note is not None:
        reason += f"; {note}"
    return Why(reason, tuple(picked), len(options))


@dataclass(frozen=True, slots=True)
class StepOptions:
    """A step's options (DESIGN §3) split by the quota, computed once per report."""

    every: tuple[Option, ...]
    within_quota: tuple[Option, ...]
    over_quota: tuple[Rejection, ...]
    #: Spot candidates dropped because they cannot be promised at the confidence.
    unpromisable: tuple[Rejection, ...] = ()


def step_options(program: Program, catalog: Catalog, confidence: float) -> dict[str, StepOptions]:
    """Every step's options at ``confidence`` (shared among the workflow's spot steps)."""
    conf = Confidence(confidence, workflow_confidence(program, catalog).spot_steps)
    # all at once: a few hundred steps per pass of arrays, as the optimizer builds them
    every = enumerate_steps(program.steps, catalog, conf, deadline_h=program.workflow.deadline_h)
    out: dict[str, StepOptions] = {}
    for step, got in zip(program.steps, every, strict=True):
        opts, why = got.options, got.rejections
        kept, over = apply_quota(opts, program.workflow.quota)
        dropped = tuple(r for r in why if r.kind == "unpromisable")
        out[step.name] = StepOptions(tuple(opts), tuple(kept), tuple(over), dropped)
    return out


def explain(
    program: Program,
    catalog: Catalog,
    plan: Plan,
    options: Mapping[str, StepOptions] | None = None,
) -> dict[str, Why]:
    """Why every planned step runs where it does (steps whose option is gone are left out)."""
    if plan.status == "infeasible" or not plan.steps:
        return {}
    if options is None:
        options = step_options(program, catalog, plan.confidence)
    floats = step_floats(plan, program)
    out: dict[str, Why] = {}
    for sp in plan.steps:
        opts = options.get(sp.name)
        if opts is None:
            continue
        why = explain_step(plan, sp, opts.within_quota, floats.get(sp.name, 0.0), opts.unpromisable)
        if why is not None:
            out[sp.name] = why
    return out
