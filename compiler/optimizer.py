"""The optimizer: a Program and a catalog in, the cheapest (or fastest) Plan out.

``optimize`` enumerates and prunes options (:mod:`exo.compiler.problem`), solves
the model (:mod:`exo.compiler.solve`), rebuilds the schedule and every figure
from the cost model so that each number in the plan can be checked by hand,
adds the baselines and explains the result (or the infeasibility).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace

from exo.compiler.anytime import Clock, ProgressFn, StopFn
from exo.compiler.buildclock import SpotGate
from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import MAX_COUNTS, quota_limits, quota_resources, resource_label
from exo.compiler.figures import money
from exo.compiler.ir import Objective, Program
from exo.compiler.plan import Baseline, Plan, StepPlan
from exo.compiler.problem import (
    TOL_H,
    TOL_USD,
    Enumeration,
    Problem,
    enumerate_program,
    longest_paths,
    problem_from,
)
from exo.compiler.schedule import critical, violations
from exo.compiler.solution import Solution, Status, proven_by_bound

#: ``exoc plan`` stops the search after this many seconds unless ``--time-limit`` says otherwise.
DEFAULT_TIME_LIMIT_S = 60.0
#: Share of the time left after building the problem that the all-on-demand baseline
#: gets when it must be solved on its own (it also gets what the main solve leaves).
BASELINE_SHARE = 0.2
#: Seconds a solver model (cvxpy's build and HiGHS' first answer, which cannot look at
#: the clock) is expected to take per second that building the options took: a search
#: stage with less time left than that returns a quick plan instead of starting one.
#: (1.5 since the options are built in one array pass, about 2.5x faster than the
#: per-candidate build this ratio was first set against, 0.5, while a model costs
#: what it did: at 1,000 steps about 2.3 s quiet, against about 1 s of options.)
MODEL_PER_BUILD = 1.5
#: CPU seconds that importing the solver stack (cvxpy, highspy) takes, which the first
#: model pays (1.4-1.6 measured on the 2-core machine; imported only where a model is
#: built, so a plan without one never pays it).
SOLVER_IMPORT_CPU_S = 1.5
#: Seconds the work after pruning that cannot look at the clock is expected to take per
#: second that building the options took: the bound reductions, the quota resources left
#: binding, and the first schedule (10,000 steps, tight deadline, quotas: 3.0 CPU s on
#: pruned options, 4.0 with pruning cut short, against 9.2 for the build). Pruning stops
#: with this much time left, so that a plan comes back within the limit.
TAIL_PER_BUILD = 0.5
#: Likewise for what follows the search: the bound over the spot options not built, the
#: plan's figures, its schedule checked again, the explanation (10,000 steps: about 0.5
#: CPU s against 9.2 for the build). The search's clock ends this much before the limit.
WRAPUP_PER_BUILD = 0.1
#: Likewise for what the caller does with the plan within the limit (which counts from
#: ``exoc plan``'s start): the plan's JSON or report written (10,000 steps at load 7-9:
#: 0.2 CPU s against 2.1 for the build; with the figures above, 0.2 builds of wall time).
OUTPUT_PER_BUILD = 0.1
#: The naive baseline (its options and one schedule) is not started with less time left
#: than this share of what reducing, solving and scheduling the plan took after its
#: options were built (it schedules the same steps once, without the reductions).
NAIVE_PER_PLAN = 0.5


def optimize(
    program: Program,
    catalog: Catalog,
    *,
    time_limit_s: float | None = None,
    allow_spot: bool = True,
    progress: ProgressFn | None = None,
    stop: StopFn | None = None,
    started: float | None = None,
) -> Plan:
    """The plan of DESIGN §4 for ``program`` (deterministic without a time limit).

    ``time_limit_s`` bounds the whole call (building the options included), or,
    with ``started`` (a ``time.perf_counter()`` value: ``exoc plan`` passes its
    process's start), everything since then (compiling included); the plan
    returned is the best found, with its proven gap. ``progress`` receives
    the incumbent and the bound as they improve; ``stop()`` returning true ends
    the search early (Ctrl-C) with the best plan so far.
    """
    t0 = time.perf_counter()
    # the limit counts the imports (and, from ``started``, whatever ran before)
    clock = Clock(time_limit_s, stop=stop, progress=progress, started=started)
    # spot options only for the steps the limit leaves time for (all, without a limit)
    gate = SpotGate(clock, len(program.steps))
    enum, problem, raw, sol, after = _search(program, catalog, allow_spot, clock, gate)
    if enum.unbuilt and (sol.status == "infeasible" or sol.choice is None):
        # no plan on demand where spot was not built proves nothing: build them all
        enum, problem, raw, sol, after = _search(program, catalog, allow_spot, clock, None)
    separate = allow_spot and (bool(enum.unbuilt) or _any_spot(enum))
    baselines, baseline_line, naive_late = _baselines(
        program, catalog, enum, problem, sol, separate, clock, after
    )
    sol = _resumed(problem, enum, raw, sol, clock)
    on_demand = baselines["all_on_demand"]
    rest = clock.child(None)

    def plan(sol_status: Status, steps: list[StepPlan], explanation: list[str]) -> Plan:
        return _plan(program, catalog, sol, baselines, sol_status, steps, explanation, t0)

    if sol.status == "infeasible" or sol.choice is None or sol.starts is None:
        from exo.compiler.infeasibility import explain_infeasible

        lines = [sol.note] if sol.note else []
        if sol.note is None:
            lines.extend(explain_infeasible(program, enum, rest))
        return plan("infeasible", [], lines)
    lines = explain_plan(program, problem, sol, on_demand, enum)
    lines.extend(_search_lines(clock, sol, time_limit_s, baseline_line, naive_late))
    return plan(sol.status, step_plans(problem, sol), lines)


def _search(
    program: Program, catalog: Catalog, allow_spot: bool, clock: Clock, gate: SpotGate | None
) -> tuple[Enumeration, Problem, Solution, Solution, float]:
    """The options (spot where ``gate`` lets them be built), the reduced problem, the
    solver's plan, that plan with its bound over every option, and the seconds after
    the options."""
    built, cpu = time.perf_counter(), time.process_time()
    enum = enumerate_program(program, catalog, allow_spot=allow_spot, spot=gate)
    enumerated = time.perf_counter()
    # the plan's figures, its explanation and its output cannot look at the clock: kept back
    clock.keep((WRAPUP_PER_BUILD + OUTPUT_PER_BUILD) * (enumerated - built))
    # pruning (exact, optional) stops while the time left still holds what cannot stop
    # after it: the bound reductions and the first schedule (the options cannot stop)
    tail = TAIL_PER_BUILD * (enumerated - built)
    problem = problem_from(program, enum, lambda: not clock.affords(tail))
    clock.model_s = _model_estimate(time.perf_counter() - built, time.process_time() - cpu)
    separate = allow_spot and (bool(enum.unbuilt) or _any_spot(enum))
    left = clock.remaining()
    main_clock = clock.child(None if left is None or not separate else left * (1 - BASELINE_SHARE))
    raw = _solve(problem, main_clock)
    sol = account_for_sampled(problem, enum, raw)
    return enum, problem, raw, sol, time.perf_counter() - enumerated


def _model_estimate(wall_s: float, cpu_s: float) -> float:
    """Seconds a first solver model is expected to take, from how long the options took.

    A model costs a multiple of what building the options did (both walk every
    option), on this machine at this load; the first one also imports the solver
    stack, whose CPU seconds are stretched by the load: by as much as the build's
    were, or by the load average per CPU (a short build may have had a CPU to
    itself in a burst; at load 16 on 2 CPUs the import took 9-12 s of wall time).
    """
    estimate = MODEL_PER_BUILD * wall_s
    if "cvxpy" not in sys.modules:
        measured = wall_s / cpu_s if cpu_s > 0.0 else 1.0
        try:
            load = os.getloadavg()[0] / (os.cpu_count() or 1)
        except (AttributeError, OSError):  # no load average on this system
            load = 1.0
        estimate += SOLVER_IMPORT_CPU_S * max(measured, load, 1.0)
    return estimate


def _any_spot(enum: Enumeration) -> bool:
    return any(o.spot for opts in enum.options.values() for o in opts)


def _baselines(
    program: Program,
    catalog: Catalog,
    enum: Enumeration,
    problem: Problem,
    sol: Solution,
    separate: bool,
    clock: Clock,
    after: float,
) -> tuple[dict[str, Baseline | None], str, bool]:
    """The baselines the time left can hold, the all-on-demand line, and whether naive was late.

    ``after``: seconds the plan took once its options were built.
    """
    from exo.compiler.baselines import naive

    uses_spot = sol.choice is not None and any(o.spot for o in problem.chosen(sol.choice))
    # the baseline reduces and schedules the on-demand part of what the plan did
    on_demand, baseline_line = _all_on_demand(
        program,
        enum,
        sol,
        separate and (uses_spot or sol.status != "optimal"),
        clock,
        after * _on_demand_share(enum),
    )
    # the naive plan's schedule costs about what the plan's first one did: not past the limit
    naive_late = not clock.affords(NAIVE_PER_PLAN * after)
    baselines: dict[str, Baseline | None] = {
        "all_on_demand": on_demand,
        "naive": None if naive_late else naive(program, catalog, enum),
    }
    return baselines, baseline_line, naive_late


def _plan(
    program: Program,
    catalog: Catalog,
    sol: Solution,
    baselines: dict[str, Baseline | None],
    status: Status,
    steps: list[StepPlan],
    explanation: list[str],
    t0: float,
) -> Plan:
    """The Plan of ``sol`` (its figures only when it has steps), timed from ``t0``."""
    wf = program.workflow
    return Plan(
        workflow=wf.name,
        objective=wf.objective,
        status=status,
        deadline_h=wf.deadline_h,
        budget_usd=wf.budget_usd,
        confidence=wf.confidence,
        expected_cost_usd=sol.cost if steps else None,
        makespan_h=sol.makespan if steps else None,
        lower_bound_usd=sol.lower_bound if steps else None,
        baselines=baselines,
        steps=steps,
        explanation=explanation,
        catalog=catalog.name,
        catalog_snapshot=catalog.snapshot,
        solve_time_s=time.perf_counter() - t0,
        gap=sol.gap if steps else None,
    )


def _search_lines(
    clock: Clock,
    sol: Solution,
    time_limit_s: float | None,
    baseline_line: str,
    naive_late: bool,
) -> list[str]:
    """How the search ended (stopped, out of time) and which baselines it left unsolved."""
    lines: list[str] = []
    if clock.stopped():
        lines.append("stopped on request: the best plan found so far, with its proven gap")
    elif sol.status == "feasible" and clock.expired():
        lines.append(
            f"time limit of {time_limit_s:g} s reached: the best plan found so far, "
            "with its proven gap (a longer --time-limit may find a better one)"
        )
    if baseline_line and (time_limit_s is not None or clock.stopped()):
        lines.append(baseline_line)
    if naive_late and clock.expired():
        lines.append("naive baseline: not computed, the plan used the whole time limit")
    elif naive_late:
        lines.append(
            "naive baseline: not computed, the time the plan left cannot hold its schedule "
            "(a longer --time-limit leaves it room)"
        )
    return lines


def _resumed(
    problem: Problem, enum: Enumeration, raw: Solution, sol: Solution, clock: Clock
) -> Solution:
    """``sol`` improved with the share of the limit the baselines left (see ``solve.resume``).

    ``raw``: the solver's solution before :func:`account_for_sampled`, which is
    applied again to the improved one.
    """
    if raw.status != "feasible" or clock.remaining() is None or clock.expired():
        return sol  # the solver stack is loaded only for a plan it can improve
    from exo.compiler.solve import resume

    got = resume(problem, raw, clock.child(None))
    return sol if got is raw else account_for_sampled(problem, enum, got)


def _solve(problem: Problem, clock: Clock) -> Solution:
    """The plan proven by the trivial bound when there is one, else the solver's.

    The solver stack (cvxpy, HiGHS) loads only in the second case: a workflow
    whose cheapest option everywhere meets every limit plans without it.
    """
    quick = proven_by_bound(problem, clock.expired)
    if quick is not None:  # found at once: no search to show progress of
        return quick
    from exo.compiler.solve import solve_problem

    return solve_problem(problem, clock)


def _on_demand_share(enum: Enumeration) -> float:
    """The share of the options within the quota that are on demand."""
    total = sum(len(opts) for opts in enum.within_quota.values())
    kept = sum(1 for opts in enum.within_quota.values() for o in opts if not o.spot)
    return kept / total if total else 1.0


_WHOLE_LIMIT = (
    "all_on_demand baseline: not computed, the plan used the whole time limit "
    "(a longer --time-limit leaves it its share)"
)
_NO_QUICK_PLAN = (
    "all_on_demand baseline: not computed, the time the plan left cannot hold a plan "
    "without a solver model on demand (a longer --time-limit leaves it its share)"
)


def _all_on_demand(
    program: Program,
    enum: Enumeration,
    sol: Solution,
    separate: bool,
    clock: Clock,
    expected_s: float = 0.0,
) -> tuple[Baseline | None, str]:
    """The all-on-demand baseline, from the plan itself when they coincide, and a line on how.

    ``separate`` is false when they coincide: no option of any step is spot (the
    problems are the same), or the plan is proven optimal and uses no spot (the
    baseline's options are a subset of the plan's, so the plan is optimal among
    them too). When the plan used the whole time limit, or the time left cannot
    hold ``expected_s`` (what its reductions and schedule are expected to take,
    work that cannot all look at the clock), or, once reduced, its cheapest
    option everywhere is late and the time left cannot hold a plan without a
    model (:data:`~exo.compiler.baselines.QUICK_PER_SCHEDULE`), the baseline is
    not solved past it: it is ``null``, and the line says why.
    """
    from exo.compiler.baselines import all_on_demand

    if not separate:
        if sol.cost is None or sol.makespan is None:
            return None, ""
        return (
            Baseline(expected_cost_usd=sol.cost, makespan_h=sol.makespan),
            "all_on_demand baseline: the plan itself (no spot option was in the problem, "
            "or the plan is proven optimal without spot)",
        )
    if clock.expired():
        return None, _WHOLE_LIMIT
    if not clock.affords(expected_s):
        return None, (
            f"all_on_demand baseline: not computed, the {clock.remaining() or 0.0:.1f} s "
            f"the plan left cannot hold it (about {expected_s:.1f} s here, by what the "
            "plan took; a longer --time-limit leaves it its share)"
        )
    base = all_on_demand(program, enum, clock.child(None))
    if base == "late":  # its reductions done, no time for a plan without a model
        return None, _WHOLE_LIMIT if clock.expired() else _NO_QUICK_PLAN
    return base, (
        "all_on_demand baseline: solved on its own in the time the plan left "
        f"(at least {BASELINE_SHARE:.0%} of the time limit)"
    )


def step_plans(problem: Problem, sol: Solution) -> list[StepPlan]:
    """Per-step figures straight from the chosen options and the schedule."""
    assert sol.choice is not None and sol.starts is not None
    jobs = problem.jobs(sol.choice)
    limit = None if problem.deadline is None else problem.deadline + TOL_H
    bad = violations(jobs, sol.starts, limit)
    if bad:  # never expected: the schedule is rebuilt and checked by construction
        raise AssertionError(
            "internal error: the schedule breaks its constraints: " + "; ".join(bad)
        )
    crit = critical(jobs, sol.starts)
    out: list[StepPlan] = []
    for s, o in enumerate(problem.chosen(sol.choice)):
        out.append(
            StepPlan(
                name=problem.names[s],
                instance_type=o.instance_type,
                accelerator=o.accelerator,
                accelerator_count=o.accelerator_count,
                spot=o.spot,
                batch_size=o.batch_size,
                replicas=o.replicas,
                instances=o.instances,
                start_h=sol.starts[s],
                expected_duration_h=o.E,
                p_duration_h=o.P,
                expected_cost_usd=o.cost,
                vcpus=o.vcpus,
                price_usd_per_hour=o.price_usd_per_hour,
                on_critical_path=crit[s],
            )
        )
    return out


def _pct(x: float) -> str:
    return f"{x:.1%}"


def explain_plan(
    program: Program,
    problem: Problem,
    sol: Solution,
    on_demand: Baseline | None,
    enum: Enumeration | None = None,
) -> list[str]:
    """A few lines saying what was optimised, what binds and how sure the result is."""
    wf = program.workflow
    assert sol.cost is not None and sol.makespan is not None
    conf = f"{wf.confidence:.0%}"
    lines: list[str] = []
    if wf.objective == "cost":
        what = f"cheapest plan: {money(sol.cost)} expected, makespan {sol.makespan:.2f} h at {conf} confidence"
    else:
        what = f"fastest plan: makespan {sol.makespan:.2f} h at {conf} confidence, {money(sol.cost)} expected"
    lines.append(what)
    limits: list[str] = []
    if wf.deadline_h is not None:
        slack = wf.deadline_h - sol.makespan
        limits.append(f"deadline {wf.deadline_h:g} h ({slack:.2f} h to spare)")
    if wf.budget_usd is not None:
        limits.append(f"budget {money(wf.budget_usd)} ({money(wf.budget_usd - sol.cost)} to spare)")
    names = quota_resources(wf.quota)
    if names:
        quota = ", ".join(
            f"{resource_label(r)} = {q}" for r, q in zip(names, quota_limits(wf.quota), strict=True)
        )
        limits.append(f"quota {quota} held at every instant")
    if limits:
        lines.append("meets " + "; ".join(limits))
    if sol.status == "optimal":
        lines.append(_proof_line(wf.objective, sol))
    else:
        lines.append(
            f"feasible: stopped before a proof of optimality; within {_pct(sol.gap or 0.0)} "
            f"of the proven bound (lower bound {money(sol.lower_bound or 0.0)})"
        )
    if on_demand is not None and on_demand.expected_cost_usd > sol.cost + 1e-9:
        saved = on_demand.expected_cost_usd - sol.cost
        lines.append(
            f"spot saves {money(saved)} ({_pct(saved / on_demand.expected_cost_usd)}) "
            f"against the best all-on-demand plan"
        )
    if enum is not None:
        lines.extend(confidence_lines(problem, sol, enum))
        lines.extend(sampled_lines(enum))
        lines.extend(unbuilt_lines(enum))
    return lines


def _proof_line(objective: Objective, sol: Solution) -> str:
    """What proved the plan optimal: the solver, or the trivial bound without a model."""
    if sol.proved_by == "solver":
        return "optimal: proven by the solver (HiGHS)"
    if objective == "cost":
        return (
            "optimal: proven without a solver model: each step's cheapest option meets "
            "every limit, so no plan costs less"
        )
    return (
        "optimal: proven without a solver model: no plan ends sooner than each step's "
        "fastest option allows, and none as fast costs less"
    )


def confidence_lines(problem: Problem, sol: Solution, enum: Enumeration) -> list[str]:
    """How the confidence is shared, and spot that was cheaper but cannot be promised."""
    assert sol.choice is not None
    conf = enum.confidence
    chosen = problem.chosen(sol.choice)
    lines: list[str] = []
    if any(o.spot for o in chosen):
        n = conf.spot_steps
        who = "the one step" if n == 1 else f"each of the {n} steps"
        lines.append(
            f"confidence {conf.confidence:.0%} for the whole plan: {who} with a spot option "
            f"keeps {conf.step:.2%}, shared among its instances"
        )
    for name, o in zip(problem.names, chosen, strict=True):
        dropped = [
            r
            for r in enum.rejections.get(name, ())
            if r.kind == "unpromisable" and r.cost is not None and r.cost < o.cost - 1e-9
        ]
        if not dropped:
            continue
        best = min(dropped, key=lambda r: (r.cost or 0.0, r.instance_type))
        lines.append(
            f"`{name}`: spot on {best.instance_type} would cost {money(best.cost or 0.0)} "
            f"(expected) but cannot be promised at {conf.confidence:.0%} confidence: "
            f"{best.message.split(': ', 1)[-1]}"
        )
    return lines


def sampled_lines(enum: Enumeration) -> list[str]:
    steps = sorted(name for name, gaps in enum.sampled.items() if gaps)
    if not steps:
        return []
    names = ", ".join(f"`{n}`" for n in steps)
    return [
        f"replica ranges too large to enumerate one by one ({names}): "
        f"{MAX_COUNTS} instance counts per instance type near the deadline's minimum and "
        "a geometric ladder above were planned; the bound covers the counts in between"
    ]


def unbuilt_lines(enum: Enumeration) -> list[str]:
    steps = sum(1 for bounds in enum.unbuilt.values() if bounds)
    if not steps:
        return []
    total = len(enum.options)
    return [
        f"time limit: the spot options of {steps} of the {total} steps were not built "
        "(the limit left no time for them); those steps were planned on demand, and the "
        "lower bound covers every spot option not built (a longer --time-limit builds them)"
    ]


def account_for_sampled(problem: Problem, enum: Enumeration, sol: Solution) -> Solution:
    """The solution's bound over every option, the skipped instance counts included.

    The spot options not built in time (``enum.unbuilt``) count as skipped ranges
    (each has the same bounds). A plan that uses a skipped option of step ``s``
    costs at least that range's ``cost_lb`` plus every other step's cheapest
    option, and takes at least its ``p_lb`` (with the fastest options elsewhere).
    Ranges that cannot meet the deadline or the budget do not count; the others
    lower the proven bound, and the plan is optimal only if none could beat it.
    """
    names = dict.fromkeys([*enum.sampled, *enum.unbuilt])
    gaps = {n: g for n in names if (g := (*enum.sampled.get(n, ()), *enum.unbuilt.get(n, ())))}
    if not gaps or sol.choice is None or sol.cost is None or sol.makespan is None:
        return sol
    pos = {n: i for i, n in enumerate(problem.names)}
    cheap = [min((o.cost for o in enum.within_quota[n]), default=math.inf) for n in problem.names]
    fast = [min((o.P for o in enum.within_quota[n]), default=math.inf) for n in problem.names]
    for name, rs in gaps.items():
        i = pos[name]
        cheap[i] = min(cheap[i], *(r.cost_lb for r in rs))
        fast[i] = min(fast[i], *(r.p_lb for r in rs))
    head, tail = longest_paths(problem, fast)
    limit = problem.deadline
    if problem.objective == "time":
        limit = sol.makespan if limit is None else min(limit, sol.makespan)
    total = sum(cheap)
    bound = sol.lower_bound if sol.lower_bound is not None else sol.cost
    for name, rs in gaps.items():
        i = pos[name]
        for r in rs:
            if limit is not None and head[i] + r.p_lb + tail[i] > limit + TOL_H:
                continue
            reach = total - cheap[i] + r.cost_lb
            if problem.budget is not None and reach > problem.budget + TOL_USD:
                continue
            bound = min(bound, reach)
    span_lb = max((head[i] + fast[i] for i in range(problem.size)), default=0.0)
    faster = problem.objective == "time" and span_lb < sol.makespan - TOL_H
    unbeaten = sol.lower_bound is not None and bound >= sol.lower_bound - TOL_USD
    if unbeaten and not faster:
        return sol
    if faster:
        gap = (sol.makespan - span_lb) / sol.makespan if sol.makespan > 0 else 0.0
    else:
        gap = (sol.cost - bound) / sol.cost if sol.cost > 0 else 0.0
    return replace(sol, status="feasible", lower_bound=min(bound, sol.cost), gap=max(gap, 0.0))
