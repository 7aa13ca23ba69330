"""The optimization problem: a workflow's steps with their options, constraints and quotas.

:func:`build_problem` turns a :class:`~exo.compiler.ir.Program` and a catalog
into a :class:`Problem`: every step's options (DESIGN §3), minus those the quota
rules out, minus dominated ones, minus those no plan meeting the deadline and
the budget can use. Every reduction is exact: the optimum does not change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import (
    Option,
    Rejection,
    ResourceKey,
    Sampled,
    SpotGate,
    apply_quota,
    enumerate_steps,
    prune_dominated,
    quota_limits,
    quota_resources,
    usage,
    workflow_confidence,
)
from exo.compiler.ir import Objective as Objective  # re-exported: part of this API
from exo.compiler.ir import Program, Step, step_order
from exo.compiler.preemption import Confidence
from exo.compiler.schedule import Jobs

#: A plan meets the deadline when its makespan is at most ``deadline + TOL_H`` hours (3.6 ms).
TOL_H = 1e-6
#: A plan meets the budget when its expected cost is at most ``budget + TOL_USD``.
TOL_USD = 1e-6
#: Steps pruned between two looks at the clock.
CLOCK_EVERY = 64

#: The clock of the request (true once the time is up); ``None``: no limit.
Expired = Callable[[], bool] | None


@dataclass(frozen=True, slots=True)
class Problem:
    """Steps by position (a topological order), each with its candidate options."""

    names: tuple[str, ...]
    preds: tuple[tuple[int, ...], ...]
    options: tuple[tuple[Option, ...], ...]
    resources: tuple[ResourceKey, ...]
    limits: tuple[int, ...]
    deadline: float | None
    budget: float | None
    objective: Objective
    confidence: float

    @property
    def size(self) -> int:
        return len(self.names)

    def jobs(self, choice: Sequence[int], *, with_quota: bool = True) -> Jobs:
        opts = [self.options[s][k] for s, k in enumerate(choice)]
        if not with_quota or not self.resources:
            return Jobs(tuple(o.P for o in opts), self.preds)
        return Jobs(
            tuple(o.P for o in opts),
            self.preds,
            tuple(usage(o, self.resources) for o in opts),
            self.limits,
        )

    def cost(self, choice: Sequence[int]) -> float:
        return sum(self.options[s][k].cost for s, k in enumerate(choice))

    def chosen(self, choice: Sequence[int]) -> list[Option]:
        return [self.options[s][k] for s, k in enumerate(choice)]

    def meets_budget(self, cost: float) -> bool:
        return self.budget is None or cost <= self.budget + TOL_USD

    def meets_deadline(self, makespan: float) -> bool:
        return self.deadline is None or makespan <= self.deadline + TOL_H

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.names]
        for j, ps in enumerate(self.preds):
            for i in ps:
                succ[i].append(j)
        return succ


@dataclass(frozen=True, slots=True)
class Enumeration:
    """All options of every step before pruning, and why candidates were rejected."""

    #: Options per DESIGN §3 (spot options dropped when spot is disallowed), quota not applied.
    options: Mapping[str, tuple[Option, ...]]
    #: The options whose replicas alone fit the quota.
    within_quota: Mapping[str, tuple[Option, ...]]
    #: Hardware, memory fit, spot, performance entries, unpromisable spot and quota.
    rejections: Mapping[str, tuple[Rejection, ...]]
    #: Instance counts of huge replica ranges that were not enumerated (with bounds).
    sampled: Mapping[str, tuple[Sampled, ...]]
    #: The workflow's confidence and N, the steps with a spot option.
    confidence: Confidence
    #: Bounds on the spot options not built before the time limit (per step, per family).
    unbuilt: Mapping[str, tuple[Sampled, ...]] = field(default_factory=dict)


def ordered_steps(program: Program) -> list[Step]:
    """The program's steps in a topological order, ties by declaration order."""
    by_name = {s.name: s for s in program.steps}
    return [by_name[n] for n in step_order(program)]


def enumerate_program(
    program: Program, catalog: Catalog, *, allow_spot: bool = True, spot: SpotGate | None = None
) -> Enumeration:
    """Every step's options; ``spot`` decides which batches of steps get their spot
    options built (:func:`exo.compiler.costmodel.enumerate_steps`; default: all)."""
    conf = workflow_confidence(program, catalog)
    quota = program.workflow.quota
    options: dict[str, tuple[Option, ...]] = {}
    within: dict[str, tuple[Option, ...]] = {}
    rejections: dict[str, tuple[Rejection, ...]] = {}
    sampled: dict[str, tuple[Sampled, ...]] = {}
    unbuilt: dict[str, tuple[Sampled, ...]] = {}
    deadline = program.workflow.deadline_h
    every = enumerate_steps(  # with the cyclic collector paused (see there)
        program.steps, catalog, conf, deadline_h=deadline, spot=spot if allow_spot else None
    )
    for step, got in zip(program.steps, every, strict=True):
        opts, why, skipped = got.options, got.rejections, got.sampled
        if not allow_spot:
            opts = [o for o in opts if not o.spot]
            why = [r for r in why if r.kind != "unpromisable"]
            skipped = [g for g in skipped if not g.spot]
        kept, over = apply_quota(opts, quota)
        options[step.name] = tuple(opts)
        # one tuple when the quota keeps every option (860,000 pointers at 10,000 steps)
        within[step.name] = options[step.name] if len(kept) == len(opts) else tuple(kept)
        rejections[step.name] = (*why, *over)
        sampled[step.name] = tuple(skipped)
        if got.unbuilt and allow_spot:
            unbuilt[step.name] = tuple(got.unbuilt)
    return Enumeration(options, within, rejections, sampled, conf, unbuilt)


def without_spot(enum: Enumeration) -> Enumeration:
    """``enum`` as ``enumerate_program(..., allow_spot=False)`` would have built it.

    On-demand options do not depend on whether spot is allowed (the workflow's
    confidence is computed from the program alone), so the all-on-demand
    baseline filters the plan's enumeration instead of building it again.
    """

    def keep(opts: tuple[Option, ...]) -> tuple[Option, ...]:
        return tuple(o for o in opts if not o.spot)

    return Enumeration(
        {k: keep(v) for k, v in enum.options.items()},
        {k: keep(v) for k, v in enum.within_quota.items()},
        {
            # spot candidates that cannot be promised, and spot options over the quota
            k: tuple(
                r for r in v if r.kind != "unpromisable" and not (r.kind == "quota" and r.spot)
            )
            for k, v in enum.rejections.items()
        },
        {k: tuple(g for g in v if not g.spot) for k, v in enum.sampled.items()},
        enum.confidence,
    )


def base_problem(program: Program, enum: Enumeration, expired: Expired = None) -> Problem:
    """Every step with its undominated options within the quota (no bound reductions).

    Quota resources that can never bind (all steps at their largest usage at once
    fit) are left out, so that they do not keep dominated options alive. Once
    ``expired()`` is true, the steps not yet pruned keep all their options
    (pruning is exact but optional: a plan may use a dominated option).
    """
    steps = ordered_steps(program)
    pos = {s.name: i for i, s in enumerate(steps)}
    wf = program.workflow
    all_resources = quota_resources(wf.quota)
    all_limits = quota_limits(wf.quota)
    keep = binding_resources([enum.within_quota[s.name] for s in steps], all_resources, all_limits)
    resources = tuple(all_resources[r] for r in keep)
    return Problem(
        names=tuple(s.name for s in steps),
        preds=tuple(tuple(sorted(pos[p] for p in s.predecessors())) for s in steps),
        options=prune_each([enum.within_quota[s.name] for s in steps], resources, expired),
        resources=resources,
        limits=tuple(all_limits[r] for r in keep),
        deadline=wf.deadline_h,
        budget=wf.budget_usd,
        objective=wf.objective,
        confidence=wf.confidence,
    )


def prune_each(
    options: Sequence[Sequence[Option]], resources: Sequence[ResourceKey], expired: Expired
) -> tuple[tuple[Option, ...], ...]:
    """:func:`prune_dominated` of every step's options while the clock has time left."""
    out: list[tuple[Option, ...]] = []
    for s, opts in enumerate(options):
        if expired is not None and s % CLOCK_EVERY == 0 and expired():
            out.extend(tuple(o) for o in options[s:])
            break
        out.append(tuple(prune_dominated(opts, resources)))
    return tuple(out)


def binding_resources(
    options: Sequence[Sequence[Option]], resources: Sequence[ResourceKey], limits: Sequence[int]
) -> list[int]:
    """Resources the steps could exceed if each ran at its largest usage at the same time."""
    if not resources:
        return []
    total = [0] * len(resources)
    for opts in options:
        peak = [0] * len(resources)
        seen: set[tuple[str, int]] = set()
        for o in opts:
            group = (o.instance_type, o.instances)  # usage depends on nothing else
            if group in seen:
                continue
            seen.add(group)
            for r, u in enumerate(usage(o, resources)):
                if u > peak[r]:
                    peak[r] = u
        total = [a + b for a, b in zip(total, peak, strict=True)]
    return [r for r, q in enumerate(limits) if total[r] > q]


def quota_shortfalls(problem: Problem, limit: float | None = None) -> list[tuple[int, float]]:
    """Quota resources that cannot hold the work by the deadline: (resource, work needed).

    Every step holds at least its leanest option's ``usage * P`` (unit-hours) of each
    resource somewhere within ``[0, deadline]``, where the quota gives ``limit * deadline``:
    more work than that proves that no plan exists, before any model is built.
    """
    horizon = problem.deadline if limit is None else limit
    if horizon is None or not problem.resources or not all(problem.options):
        return []
    need = [0.0] * len(problem.resources)
    for opts in problem.options:
        least = [math.inf] * len(problem.resources)
        for o in opts:
            for r, u in enumerate(usage(o, problem.resources)):
                least[r] = min(least[r], u * o.P)
        need = [a + b for a, b in zip(need, least, strict=True)]
    return [
        (r, need[r])
        for r, q in enumerate(problem.limits)
        if need[r] > q * (horizon + TOL_H) * (1 + 1e-9)
    ]


def build_problem(
    program: Program, catalog: Catalog, *, allow_spot: bool = True, expired: Expired = None
) -> tuple[Problem, Enumeration]:
    """The reduced problem and the full enumeration it came from.

    ``expired``: the request's clock; dominance pruning stops when it runs out (it
    is exact and optional); the options themselves are always all built, and the
    bound reductions always run (a few passes, and what lets the cheapest option
    everywhere prove a plan optimal without a model).
    """
    enum = enumerate_program(program, catalog, allow_spot=allow_spot)
    return problem_from(program, enum, expired), enum


def problem_from(program: Program, enum: Enumeration, expired: Expired = None) -> Problem:
    """The reduced problem of an enumeration (pruned until ``expired()``, if given)."""
    return drop_slack_resources(reduce_by_bounds(base_problem(program, enum, expired)))


def drop_slack_resources(problem: Problem) -> Problem:
    """Forget quota resources that can no longer bind (after options were removed)."""
    keep = binding_resources(problem.options, problem.resources, problem.limits)
    if len(keep) == len(problem.resources):
        return problem
    return replace(
        problem,
        resources=tuple(problem.resources[r] for r in keep),
        limits=tuple(problem.limits[r] for r in keep),
    )


def longest_paths(
    problem: Problem,
    durations: Sequence[float],
    succ: Sequence[Sequence[int]] | None = None,
) -> tuple[list[float], list[float]]:
    """Per step: longest path ending before it (head) and starting after it (tail).

    ``succ``: the problem's successors, when the caller already has them (a
    search that asks after every move).
    """
    n = problem.size
    head = [0.0] * n
    for j, ps in enumerate(problem.preds):
        if ps:
            head[j] = max([head[i] + durations[i] for i in ps])
    if succ is None:
        succ = problem.successors()
    tail = [0.0] * n
    for i in reversed(range(n)):
        ss = succ[i]
        if ss:
            tail[i] = max([durations[j] + tail[j] for j in ss])
    return head, tail


def reduce_by_bounds(problem: Problem, deadline: float | None = None) -> Problem:
    """Drop options no plan within the deadline and the budget can use (exact).

    An option of step ``s`` needs ``head(s) + P + tail(s) <= deadline`` with the
    fastest options elsewhere, and ``cost + sum of the other steps' cheapest costs
    <= budget``. Repeats until nothing changes. A step may end with no option: the
    problem is then infeasible. Each step's least and largest ``P`` and cost are
    kept between rounds (recomputed for the steps that lost options), and a step
    whose slowest (dearest) option passes keeps them all without a look at each.
    """
    limit = problem.deadline if deadline is None else deadline
    budget = problem.budget
    options: list[Sequence[Option]] = list(problem.options)  # a step's tuple until it changes
    stats = [_extremes(opts, limit is not None, budget is not None) for opts in options]
    changed = True
    while changed and all(options):
        changed = False
        if limit is not None:
            head, tail = longest_paths(problem, [st[0] for st in stats])
            for s, opts in enumerate(options):
                if head[s] + stats[s][1] + tail[s] <= limit + TOL_H:
                    continue  # (the same sum as below: rounding is monotone)
                keep = [o for o in opts if head[s] + o.P + tail[s] <= limit + TOL_H]
                if len(keep) != len(opts):
                    options[s], changed = keep, True
                    stats[s] = _extremes(keep, limit is not None, budget is not None)
        if budget is not None and all(options):
            total = sum(st[2] for st in stats)
            for s, opts in enumerate(options):
                rest = total - stats[s][2]
                if rest + stats[s][3] <= budget + TOL_USD:
                    continue
                keep = [o for o in opts if rest + o.cost <= budget + TOL_USD]
                if len(keep) != len(opts):
                    options[s], changed = keep, True
                    stats[s] = _extremes(keep, limit is not None, budget is not None)
    return replace(problem, options=tuple(tuple(o) for o in options))


def _extremes(
    options: Sequence[Option], times: bool, costs: bool
) -> tuple[float, float, float, float]:
    """The least and largest ``P`` (``times``), the least and largest cost (``costs``);
    ``inf`` for those not asked for and for a step without options."""
    inf = math.inf
    ps = [o.P for o in options] if times and options else [inf]
    cs = [o.cost for o in options] if costs and options else [inf]
    return min(ps), max(ps), min(cs), max(cs)
