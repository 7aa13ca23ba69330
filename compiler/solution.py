"""A solved problem, and the plans that need no solver model to be proven optimal.

:class:`Solution` is what solving a :class:`~exo.compiler.problem.Problem`
returns: a plan (an option per step and its schedule), its proven lower bound
and gap. The trivial bounds (every step at its cheapest, or fastest, option)
hold for every plan. When the cheapest option everywhere already meets the
deadline, the budget and the quotas, that plan reaches the bound and is
optimal: :func:`proven_by_bound` finds it without the solver stack (cvxpy,
HiGHS), which ``exoc plan`` and ``exoc run`` then never import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from exo.compiler.problem import Problem, longest_paths
from exo.compiler.schedule import asap, improve, makespan, priority_order, serial_sgs, tails

Status = Literal["optimal", "feasible", "infeasible"]
#: What proved a plan optimal: the solver's bound, or the trivial bound alone.
Proof = Literal["solver", "bound"]


@dataclass(frozen=True, slots=True)
class Solution:
    status: Status
    choice: tuple[int, ...] | None = None
    starts: tuple[float, ...] | None = None
    cost: float | None = None
    makespan: float | None = None
    #: Proven lower bound on the optimal expected cost (USD).
    lower_bound: float | None = None
    #: Relative gap of the primary objective (0 when optimal).
    gap: float | None = None
    #: Why no plan was found although none was proven impossible, if so.
    note: str | None = None
    #: What proved an ``optimal`` plan optimal.
    proved_by: Proof = "solver"


def pick(problem: Problem, by: str) -> tuple[int, ...]:
    """Every step's cheapest (``by = "cost"``) or fastest (``"P"``) option."""
    out: list[int] = []
    for opts in problem.options:
        keys = [(o.cost, o.P) if by == "cost" else (o.P, o.cost) for o in opts]
        out.append(min(range(len(opts)), key=keys.__getitem__))
    return tuple(out)


def trivial_cost_bound(problem: Problem) -> float:
    """Every step at its cheapest option: a bound no plan can beat."""
    return sum(min(o.cost for o in opts) for opts in problem.options)


def trivial_makespan_bound(problem: Problem) -> float:
    """Every step at its fastest option, quotas ignored: no plan ends sooner."""
    fastest = [min(o.P for o in opts) for opts in problem.options]
    head, _ = longest_paths(problem, fastest)
    return max((h + f for h, f in zip(head, fastest, strict=True)), default=0.0)


def proven_by_bound(problem: Problem, expired: Callable[[], bool] | None = None) -> Solution | None:
    """The cheapest option everywhere, when it meets every limit: optimal, no model needed.

    ``objective = cost`` only. Its cost is the trivial bound, so no plan costs
    less; the schedule is the one the solver's path would report for it (ASAP,
    or the serial schedule by longest remaining path, improved, under quotas).
    ``None`` when that plan misses the deadline or the budget (the solver decides).
    ``expired``: the clock, which the improvement of a quota schedule looks at.
    """
    if problem.objective != "cost" or not all(problem.options):
        return None
    choice = pick(problem, "cost")
    cost = problem.cost(choice)
    if not problem.meets_budget(cost):
        return None
    jobs = problem.jobs(choice)
    if jobs.limits:
        starts = serial_sgs(jobs, priority_order(jobs, [-v for v in tails(jobs)]))
        if not problem.meets_deadline(makespan(jobs, starts)):
            return None
        starts = improve(jobs, starts, expired=expired)
    else:
        starts = asap(jobs)
    span = makespan(jobs, starts)
    if not problem.meets_deadline(span):
        return None
    return Solution("optimal", choice, tuple(starts), cost, span, cost, 0.0, proved_by="bound")
