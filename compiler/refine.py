"""From a plan that meets every constraint, a better one: local search, the exact model,
local search (:func:`improve`), and how a stage's results are read and compared
(:func:`from_milp`, :func:`best`).

:mod:`exo.compiler.solve` decides which model a stage solves and hands its plan here;
the local search is :mod:`exo.compiler.heuristics` (cost, short makespans) or the
genetic search of :mod:`exo.compiler.makespan_search` (makespans of large problems),
the exact model :mod:`exo.compiler.exact`. Within one solve, the seeded moves before
the model are not made again from a plan they started from (:class:`Tried`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from exo.compiler.anytime import Clock
from exo.compiler.exact import SMALL_STEPS, descends, solve_exact, whole_periods
from exo.compiler.heuristics import Found, cheapen, shorten
from exo.compiler.ir import Objective
from exo.compiler.makespan_search import children_for, evolve
from exo.compiler.milp import MilpResult
from exo.compiler.problem import Problem
from exo.compiler.repair import Stage as _Stage
from exo.compiler.repair import best_schedule
from exo.compiler.repair import enough as _enough
from exo.compiler.repair import limit_of as _limit
from exo.compiler.repair import tol as _tol
from exo.compiler.repair import value_of as _value
from exo.compiler.repair import within as _within
from exo.compiler.schedule import makespan


def from_milp(
    problem: Problem,
    objective: Objective,
    r: MilpResult,
    cap: float | None,
    bound: float,
    expired: Callable[[], bool] | None = None,
) -> _Stage | None:
    """A stage from a MILP solution if its (clean) schedule meets the limits."""
    if r.choice is None:
        return None
    starts = best_schedule(problem, r.choice, r.starts, _enough(problem, objective, cap), expired)
    jobs = problem.jobs(r.choice)
    if not _within(problem, jobs, starts, cap):
        return None
    if not problem.meets_budget(problem.cost(r.choice)):
        return None
    value = _value(problem, objective, r.choice, starts)
    proven = r.status == "optimal" and value <= bound + _tol(objective, value)
    return _Stage(r.choice, starts, value, bound, proven)


def improve(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    found: _Stage,
    stage_clock: Clock,
    binding: Sequence[int],
    tried: Tried | None = None,
) -> _Stage:
    """From a plan that meets every constraint: local search, the exact model, local search.

    Each uses what the ones before it left of ``stage_clock``; the moves before
    the model are not made again from a plan they started from (:func:`_moved`).
    The descent (:func:`exact.descends`) gets the whole stage: its questions go
    on in the next round, where the seeded local search after it would repeat
    itself (PSPLIB ``j2061_7``: 5 s of 60; docs/benchmarks.md).
    """
    limit = _limit(problem, cap)
    found = _moved(problem, objective, cap, found, stage_clock, tried or Tried())
    if found.proven or not stage_clock.affords(stage_clock.model_s):
        return found
    assert found.choice is not None and found.starts is not None and found.value is not None
    span = makespan(problem.jobs(found.choice), found.starts)
    whole = objective == "time" and descends(problem, span)
    got = solve_exact(
        problem,
        objective=objective,
        limit=limit,
        binding=binding,
        clock=stage_clock,
        seconds=stage_clock.share(1.0 if whole else EXACT_SHARE),
        plan=(found.choice, found.starts, span),
    )
    if got is not None:
        if got.result.status == "infeasible":
            # the plan in hand meets every constraint: the model has no better one
            return replace(found, proven=True, bound=found.value)
        bound = max(found.bound, got.result.bound)
        if objective == "time" and got.period is not None:
            bound = whole_periods(bound, got.period)
        better = from_milp(problem, objective, got.result, cap, bound)
        found = best(objective, found, better)
        found = replace(found, bound=max(found.bound, bound))
        if got.result.status == "optimal" and better is not None and better.proven:
            return found
        if found.value is not None and found.value <= found.bound + _tol(objective, found.value):
            return replace(found, proven=True)
    if stage_clock.expired():
        return found
    if stage_clock.remaining() is None:
        return found  # no time limit: the deterministic search above was all
    return _search(problem, objective, cap, found, stage_clock, moves=None)


class Tried:
    """What one solve's moves before the exact model found from each plan (:func:`_moved`)."""

    def __init__(self) -> None:
        self.moves: dict[tuple[object, ...], tuple[int, _Stage]] = {}


def _moved(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    found: _Stage,
    stage_clock: Clock,
    tried: Tried,
) -> _Stage:
    """The local search before the exact model: a fixed number of seeded moves; from a
    plan they already started from (all made), what they found then (the same moves,
    the same answer)."""
    moves = _moves(problem)
    key = (found.choice, found.starts, found.value, found.bound, objective, cap)
    was = tried.moves.get(key)
    if was is not None and was[0] >= moves:
        return was[1]
    # the moves are a fixed amount of work, but under load they must leave the
    # exact model its time (PSPLIB j108_7: 25 s of moves, then no exact model)
    first = stage_clock.child(stage_clock.share(_pre_search_share(problem, objective)))
    got = _search(problem, objective, cap, found, first, moves=moves)
    if not first.expired():
        tried.moves[key] = (moves, got)  # all of them made (not cut short by the clock)
    return got


#: The share of a stage's time left after the local search that the exact model may
#: use (the local search after it has the rest), where it is not the descent.
EXACT_SHARE = 0.85
#: The share of a stage's time the local search before the exact model may use.
PRE_SEARCH_SHARE = 0.2
#: The same for the makespan above the exact disjunctive model's size, where the
#: genetic search (:mod:`exo.compiler.makespan_search`) finds what the
#: time-indexed model does not (PSPLIB j60/j90, docs/benchmarks.md).
LARGE_PRE_SEARCH_SHARE = 0.5


def _large_makespan(problem: Problem, objective: Objective) -> bool:
    """The makespan of a problem above the exact disjunctive model's size: the genetic search."""
    return objective == "time" and problem.size > SMALL_STEPS


def _pre_search_share(problem: Problem, objective: Objective) -> float:
    return LARGE_PRE_SEARCH_SHARE if _large_makespan(problem, objective) else PRE_SEARCH_SHARE


def _moves(problem: Problem) -> int:
    """Local-search moves before the exact model: a deterministic amount of work.

    Each move schedules every step a few times, so the moves shrink as steps grow.
    """
    return max(20, min(500, 10_000 // max(problem.size, 1)))


def _search(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    st: _Stage,
    clock: Clock,
    *,
    moves: int | None,
) -> _Stage:
    """Local search from ``st``: ``moves`` moves (deterministic), or until the clock says."""
    if st.choice is None or st.starts is None or st.value is None or st.proven:
        return st
    budget = clock
    plan = Found(
        st.choice,
        st.starts,
        makespan(problem.jobs(st.choice), st.starts),
        problem.cost(st.choice),
    )
    limit = _limit(problem, cap)
    if _large_makespan(problem, objective):
        # anytime under a time limit; without one, a deterministic number of schedules
        most = None if budget.remaining() is not None else children_for(problem)
        # the search after the exact model draws other children than the one before it
        seed = 0 if moves is not None else 1
        got = evolve(problem, plan, budget, bound=st.bound, cap=limit, seed=seed, max_children=most)
        value = got.makespan
    elif objective == "time":
        got = shorten(problem, plan, budget, bound=st.bound, cap=limit, max_moves=moves)
        value = got.makespan
    else:
        assert limit is not None
        got = cheapen(problem, plan, budget, limit=limit, bound=st.bound, max_moves=moves)
        value = got.cost
    if value >= st.value - _tol(objective, st.value):
        return st
    proven = value <= st.bound + _tol(objective, value)
    return _Stage(got.choice, got.starts, value, st.bound, proven)


def best(objective: Objective, a: _Stage | None, b: _Stage | None) -> _Stage:
    """The better of two results; both bounds are valid, so the larger one is kept.

    Values equal within the tolerance count as equal (two schedules of one choice
    may differ in the last bits) and then a proven result is preferred.
    """
    got = [s for s in (a, b) if s is not None]
    bound = max((s.bound for s in got), default=-math.inf)
    cands = [s for s in got if s.value is not None]
    if not cands:
        return _Stage(None, None, None, bound, False)
    low = min(s.value for s in cands if s.value is not None)
    tied = [s for s in cands if s.value is not None and s.value <= low + _tol(objective, low)]
    pick = next((s for s in tied if s.proven), tied[0])
    assert pick.value is not None
    proven = any(s.proven for s in tied) or pick.value <= bound + _tol(objective, pick.value)
    return _Stage(pick.choice, pick.starts, pick.value, bound, proven)
