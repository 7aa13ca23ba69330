"""Why no plan exists, in terms a user can act on (DESIGN §3).

The explanation names what binds and the smallest value that would work:

- a step with no option at all, and what ruled its candidates out (GPU memory
  fit, hardware sizes, the quota, spot prices, missing throughput entries);
- the deadline: the fastest possible plan and the chain of steps that sets it;
- the budget: the cheapest possible plan;
- the combination: the cheapest plan that meets the deadline, the fastest
  plan within the budget, and what the quota costs in time.

Suggested minimums are rounded *up* (to 0.01 h and to the cent) so that using
them as the new deadline or budget works.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from exo.compiler.costmodel import Option, Rejection, resource_label
from exo.compiler.exact import SMALL_STEPS
from exo.compiler.figures import money
from exo.compiler.ir import Program
from exo.compiler.problem import (
    Enumeration,
    Problem,
    base_problem,
    binding_resources,
    longest_paths,
    quota_shortfalls,
    reduce_by_bounds,
)
from exo.compiler.solve import Clock, solve_problem

_KIND_TEXT = {
    "accelerator_count": "too few accelerators per instance",
    "vcpus": "too few vCPUs",
    "host_memory": "too little host memory",
    "accelerator_memory": "the batch does not fit in accelerator memory",
    "accelerator_memory_unknown": "accelerator memory unknown",
    "no_performance_entry": "no throughput or duration entry",
    "no_spot_price": "no spot price",
    "no_items": "no item count",
    "unpromisable": "spot cannot be promised at the confidence",
    "out_of_range": "beyond what the model represents",
    "quota": "more than the quota",
}


def hours_up(h: float) -> str:
    """Hours rounded up to 0.01 h, so that the value works as a deadline."""
    return f"{math.ceil(h * 100.0 - 1e-7) / 100.0:.2f} h"


def usd_up(x: float) -> str:
    """Dollars rounded up to the cent, so that the value works as a budget."""
    return f"${math.ceil(x * 100.0 - 1e-7) / 100.0:,.2f}"


def _h(h: float) -> str:
    return f"{h:.2f} h"


def describe(option: Option) -> str:
    return f"{option.label()}: {_h(option.P)}, {money(option.cost)}"


def no_option_lines(name: str, enum: Enumeration, accelerators: Sequence[str]) -> list[str]:
    """Why step ``name`` has no option, grouped by reason."""
    rejections = enum.rejections.get(name, ())
    if not rejections and not enum.options.get(name):
        wanted = ", ".join(accelerators) if accelerators else "CPU instance types"
        return [f"step `{name}` has no option: the catalog offers no candidate for {wanted}"]
    by_kind: dict[str, list[Rejection]] = defaultdict(list)
    for r in rejections:
        by_kind[r.kind].append(r)
    lines = [f"step `{name}` has no option:"]
    for kind in sorted(by_kind):
        items = by_kind[kind]
        examples: list[str] = []
        for r in items:
            msg = (
                f"{r.instance_type}: {r.message}" if r.instance_type not in r.message else r.message
            )
            if msg not in examples:
                examples.append(msg)
        shown = "; ".join(examples[:2])
        more = f" (and {len(examples) - 2} more)" if len(examples) > 2 else ""
        lines.append(f"  - {_KIND_TEXT.get(kind, kind)}: {shown}{more}")
    return lines


def _chain(problem: Problem, durations: Sequence[float]) -> list[int]:
    """The steps of a longest path (by ``durations``), first to last."""
    head, _ = longest_paths(problem, durations)
    finish = [head[i] + durations[i] for i in range(problem.size)]
    j = max(range(problem.size), key=lambda i: (finish[i], -i))
    path = [j]
    while problem.preds[j]:
        j = max(problem.preds[j], key=lambda i: (finish[i], -i))
        path.append(j)
    return list(reversed(path))


def _relaxed_problem(problem: Problem, *, deadline: bool, budget: bool, objective: str) -> Problem:
    p = replace(
        problem,
        deadline=problem.deadline if deadline else None,
        budget=problem.budget if budget else None,
        objective="time" if objective == "time" else "cost",
    )
    return reduce_by_bounds(p)


def explain_infeasible(program: Program, enum: Enumeration, clock: Clock) -> list[str]:
    """Lines explaining why the workflow has no plan, with the values that would work."""
    base = base_problem(program, enum)
    wf = program.workflow
    lines: list[str] = []
    empty = [s for s, opts in zip(base.names, base.options, strict=True) if not opts]
    if empty:
        for name in empty:
            lines.extend(no_option_lines(name, enum, program.step(name).accelerators))
        return lines
    fastest = [min(opts, key=lambda o: (o.P, o.cost)) for opts in base.options]
    cheapest = [min(opts, key=lambda o: (o.cost, o.P)) for opts in base.options]
    p_min = [o.P for o in fastest]
    head, _ = longest_paths(base, p_min)
    min_span = max((head[i] + p_min[i] for i in range(base.size)), default=0.0)
    min_cost = sum(o.cost for o in cheapest)
    conf = f"{wf.confidence:.0%}"
    if base.deadline is not None and min_span > base.deadline + 1e-6:
        chain = _chain(base, p_min)
        lines.append(
            f"the deadline of {_h(base.deadline)} cannot be met: the fastest possible plan takes "
            f"{_h(min_span)} at {conf} confidence; a deadline of at least {hours_up(min_span)} "
            "would be needed"
        )
        lines.append("the chain that sets it: " + " -> ".join(f"`{base.names[i]}`" for i in chain))
        for i in chain:
            lines.append(f"  - `{base.names[i]}` at its fastest: {describe(fastest[i])}")
            lines.extend(_quota_cost_in_time(base.names[i], enum, fastest[i]))
    if base.budget is not None and min_cost > base.budget + 1e-6:
        lines.extend(_budget_lines(base, clock, cheapest, min_cost, deadline_ok=not lines))
    if lines:
        return lines
    work = _quota_work_lines(base)
    if work and base.size > SMALL_STEPS:
        return work  # proof enough; the shortest schedule within the quota is a large solve
    return work + _joint_lines(base, clock, min_span)


def _quota_work_lines(base: Problem) -> list[str]:
    """A quota too small for the steps' work by the deadline, whatever the schedule."""
    if base.deadline is None:
        return []
    lines: list[str] = []
    for r, need in quota_shortfalls(base):
        q = base.limits[r]
        label = resource_label(base.resources[r])
        unit = "vCPU" if label == "cpu" else label
        lines.append(
            f"the quota of {label} = {q} cannot hold the work by the deadline of "
            f"{_h(base.deadline)}: even at their leanest options the steps hold "
            f"{need:,.0f} {unit}-hours, the quota gives {q} x {_h(base.deadline)} = "
            f"{q * base.deadline:,.0f}; a quota of at least {math.ceil(need / base.deadline)} "
            f"or a deadline of at least {hours_up(need / q)} is needed (not enough alone: "
            "the steps' order and the other limits also count)"
        )
    return lines


def _budget_lines(
    base: Problem, clock: Clock, cheapest: Sequence[Option], min_cost: float, *, deadline_ok: bool
) -> list[str]:
    """The budget is below the cheapest plan: the least budget that works, deadline included.

    When a deadline is set (and can be met), the cheapest plan of all may miss
    it: the budget suggested is then the cheapest plan that meets the deadline
    too, so that raising the budget to it gives a plan.
    """
    assert base.budget is not None
    need = min_cost
    detail = ""
    if base.deadline is not None and deadline_ok:
        sol = solve_problem(
            _relaxed_problem(base, deadline=True, budget=False, objective="cost"), clock
        )
        if sol.cost is not None and sol.cost > min_cost + 1e-6:
            need = sol.cost
            least = "costs" if sol.status == "optimal" else "found costs"
            detail = (
                f"; the cheapest plan that also meets the deadline of {_h(base.deadline)} "
                f"{least} {money(sol.cost)}"
            )
    lines = [
        f"the budget of {money(base.budget)} cannot be met: the cheapest possible plan costs "
        f"{money(min_cost)} (expected){detail}; a budget of at least {usd_up(need)} "
        "would be needed"
    ]
    top = sorted(range(base.size), key=lambda i: -cheapest[i].cost)[:3]
    for i in top:
        lines.append(f"  - `{base.names[i]}` at its cheapest: {describe(cheapest[i])}")
    return lines


def _quota_cost_in_time(name: str, enum: Enumeration, best: Option) -> list[str]:
    """A faster option of the step that only the quota rules out, if any."""
    over = [
        o
        for o in enum.options.get(name, ())
        if o.P < best.P - 1e-9 and o not in enum.within_quota.get(name, ())
    ]
    if not over:
        return []
    o = min(over, key=lambda o: (o.P, o.cost))
    why = next(
        (
            r.message
            for r in enum.rejections.get(name, ())
            if r.kind == "quota" and r.instance_type == o.instance_type and r.replicas == o.replicas
        ),
        "it exceeds the quota",
    )
    return [f"    the quota rules out faster options, e.g. {describe(o)} ({why})"]


def _joint_lines(base: Problem, clock: Clock, min_span: float) -> list[str]:
    """Deadline and budget are each reachable, but not together (or not within the quota)."""
    lines: list[str] = []
    binding = binding_resources(base.options, base.resources, base.limits)
    if base.deadline is not None and binding:
        quick = _relaxed_problem(base, deadline=False, budget=False, objective="time")
        sol = solve_problem(quick, clock)
        if sol.makespan is not None and sol.makespan > base.deadline + 1e-6:
            quota = ", ".join(
                f"{resource_label(base.resources[r])} = {base.limits[r]}" for r in binding
            )
            what = "takes" if sol.status == "optimal" else "found takes"
            lines.append(
                f"the quota ({quota}) makes the deadline of {_h(base.deadline)} unreachable: "
                f"the shortest schedule within the quota {what} {_h(sol.makespan)} "
                f"(without the quota: {_h(min_span)}); raise the quota or the deadline to "
                f"{hours_up(sol.makespan)}"
            )
            return lines
    if base.deadline is not None and base.budget is not None:
        cost_at_deadline = solve_problem(
            _relaxed_problem(base, deadline=True, budget=False, objective="cost"), clock
        )
        if cost_at_deadline.cost is not None:
            least = "costs at least" if cost_at_deadline.status == "optimal" else "found costs"
            lines.append(
                f"meeting the deadline of {_h(base.deadline)}: the cheapest plan {least} "
                f"{money(cost_at_deadline.cost)}, more than the budget of {money(base.budget)}; "
                f"raise the budget to {usd_up(cost_at_deadline.cost)}"
            )
        span_in_budget = solve_problem(
            _relaxed_problem(base, deadline=False, budget=True, objective="time"), clock
        )
        if span_in_budget.makespan is not None:
            least = "takes" if span_in_budget.status == "optimal" else "found takes"
            lines.append(
                f"within the budget of {money(base.budget)}: the fastest plan {least} "
                f"{_h(span_in_budget.makespan)}, more than the deadline of {_h(base.deadline)}; "
                f"or raise the deadline to {hours_up(span_in_budget.makespan)}"
            )
    if not lines:
        lines.append(
            "no plan meets the deadline, the budget and the quota together "
            "(each one alone can be met)"
        )
    return lines
