"""The optimizer: a Program and a catalog in, the cheapest (or fastest) Plan out.

``optimize`` enumerates and prunes options (:mod:`exo.compiler.problem`), solves
the model (:mod:`exo.compiler.solve`), rebuilds the schedule and every figure
from the cost model so that each number in the plan can be checked by hand,
adds the baselines and explains the result (or the infeasibility).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import quota_limits, quota_resources, resource_label
from exo.compiler.formatting import money
from exo.compiler.ir import Program
from exo.compiler.plan import Baseline, Plan, StepPlan
from exo.compiler.problem import TOL_H, Problem, build_problem
from exo.compiler.schedule import critical, violations

if TYPE_CHECKING:
    from exo.compiler.solve import Solution, Status

#: Share of ``time_limit_s`` for the main solve; the all-on-demand baseline gets the rest.
MAIN_SHARE = 0.7


def optimize(
    program: Program,
    catalog: Catalog,
    *,
    time_limit_s: float | None = None,
    allow_spot: bool = True,
) -> Plan:
    """The plan of DESIGN §4 for ``program`` (deterministic without a time limit)."""
    t0 = time.perf_counter()
    # The solver stack (cvxpy, HiGHS) loads here, not at import: commands that
    # never plan, like `exoc check`, start without it.
    from exo.compiler.baselines import all_on_demand, naive
    from exo.compiler.solve import Clock, solve_problem

    main_clock = Clock(None if time_limit_s is None else time_limit_s * MAIN_SHARE)
    problem, enum = build_problem(program, catalog, allow_spot=allow_spot)
    sol = solve_problem(problem, main_clock)
    rest = Clock(
        None if time_limit_s is None else max(time_limit_s - (time.perf_counter() - t0), 0.0)
    )
    if allow_spot:
        on_demand = all_on_demand(program, catalog, rest)
    elif sol.cost is not None and sol.makespan is not None:
        on_demand = Baseline(expected_cost_usd=sol.cost, makespan_h=sol.makespan)
    else:
        on_demand = None
    baselines: dict[str, Baseline | None] = {
        "all_on_demand": on_demand,
        "naive": naive(program, enum),
    }
    wf = program.workflow

    def plan(sol_status: Status, steps: list[StepPlan], explanation: list[str]) -> Plan:
        return Plan(
            workflow=wf.name,
            objective=wf.objective,
            status=sol_status,
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

    if sol.status == "infeasible" or sol.choice is None or sol.starts is None:
        from exo.compiler.infeasibility import explain_infeasible

        lines = [sol.note] if sol.note else []
        if sol.note is None:
            lines.extend(explain_infeasible(program, enum, rest))
        return plan("infeasible", [], lines)
    return plan(
        sol.status, step_plans(problem, sol), explain_plan(program, problem, sol, on_demand)
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
    program: Program, problem: Problem, sol: Solution, on_demand: Baseline | None
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
        lines.append("optimal: proven by the solver (HiGHS)")
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
    return lines
