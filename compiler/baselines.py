"""The two baselines of DESIGN §4: ``all_on_demand`` and ``naive``.

- ``all_on_demand``: the optimum of the same problem with spot disallowed.
- ``naive``: no optimisation. Every step runs on its cheapest-per-hour candidate
  instance type (on-demand, or spot when the step sets ``spot = only``), with
  the largest batch size that fits and one replica (the smallest count the step
  allows; on as few instances as hold it), started as soon as its predecessors are done and the quota has room.
  It is reported even when it misses the deadline or the budget (that is the
  point of showing it); it is ``null`` only when some step has no candidate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import (
    Option,
    apply_quota,
    option_for,
    quota_limits,
    quota_resources,
    usage,
)
from exo.compiler.ir import Program
from exo.compiler.plan import Baseline
from exo.compiler.problem import Enumeration, ordered_steps, problem_from, without_spot
from exo.compiler.schedule import Jobs, makespan, priority_order, serial_sgs
from exo.compiler.solution import proven_by_bound

if TYPE_CHECKING:
    from exo.compiler.anytime import Clock


#: A plan without a solver model (:func:`exo.compiler.repair.quick`: the cheapest option
#: everywhere scheduled again, then crashed until its schedule meets the deadline) costs
#: about this many times the one schedule :func:`proven_by_bound` made and found late
#: (10,000 steps, one quota, loaded: 1.56 against 0.73 CPU s, 7.6 against 3.4 wall s).
QUICK_PER_SCHEDULE = 2.5


def all_on_demand(
    program: Program, enum: Enumeration, clock: Clock
) -> Baseline | Literal["late"] | None:
    """The optimum with spot disallowed (from the plan's enumeration), or ``None`` when
    that is infeasible.

    Under a time limit, ``"late"`` when the cheapest option everywhere misses a
    limit and the time left cannot hold a plan without a model: the baseline is
    optional, and that plan's schedules cannot look at the clock.
    """
    problem = problem_from(program, without_spot(enum), clock.expired)
    began = time.perf_counter()
    sol = proven_by_bound(problem, clock.expired)
    if sol is None:
        if not clock.affords(QUICK_PER_SCHEDULE * (time.perf_counter() - began)):
            return "late"
        from exo.compiler.solve import solve_problem  # the solver stack: only for a model

        sol = solve_problem(problem, clock)
    if sol.cost is None or sol.makespan is None:
        return None
    return Baseline(expected_cost_usd=sol.cost, makespan_h=sol.makespan)


def naive_choice(program: Program, catalog: Catalog, enum: Enumeration) -> dict[str, Option] | None:
    """Each step's naive option, or ``None`` when some step has none.

    The candidates are the (instance type, batch size) pairs the step has options
    on, in the tier the naive plan uses; the first, by price per hour then the
    largest batch, that runs the smallest replica count within the quota wins.
    """
    out: dict[str, Option] = {}
    quota = program.workflow.quota
    for step in program.steps:
        want_spot = step.spot == "only"
        pairs = {
            (o.price_usd_per_hour, -(o.batch_size or 0), o.instance_type, o.batch_size)
            for o in enum.options[step.name]
            if o.spot == want_spot
        }
        for _, _, instance_type, batch in sorted(pairs, key=lambda p: p[:3]):
            got = option_for(
                step,
                catalog,
                enum.confidence,
                instance_type=instance_type,
                spot=want_spot,
                batch_size=batch,
                replicas=step.replicas.min,
            )
            if isinstance(got, Option) and apply_quota([got], quota)[0]:
                out[step.name] = got
                break
        else:
            return None
    return out


def naive_schedule(
    program: Program, chosen: Mapping[str, Option]
) -> tuple[list[str], list[float], Jobs]:
    """ASAP along the DAG, in declaration order where the quota makes steps wait."""
    steps = ordered_steps(program)
    pos = {s.name: i for i, s in enumerate(steps)}
    resources = quota_resources(program.workflow.quota)
    opts: Sequence[Option] = [chosen[s.name] for s in steps]
    jobs = Jobs(
        tuple(o.P for o in opts),
        tuple(tuple(sorted(pos[p] for p in s.predecessors())) for s in steps),
        tuple(usage(o, resources) for o in opts) if resources else (),
        quota_limits(program.workflow.quota) if resources else (),
    )
    starts = serial_sgs(jobs, priority_order(jobs, [float(i) for i in range(jobs.size)]))
    return [s.name for s in steps], starts, jobs


def naive(program: Program, catalog: Catalog, enum: Enumeration) -> Baseline | None:
    chosen = naive_choice(program, catalog, enum)
    if chosen is None:
        return None
    _, starts, jobs = naive_schedule(program, chosen)
    return Baseline(
        expected_cost_usd=sum(o.cost for o in chosen.values()),
        makespan_h=makespan(jobs, starts),
    )
