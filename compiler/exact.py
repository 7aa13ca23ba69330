"""Exact models with quotas, started from the best plan known: time-indexed, then disjunctive.

Which model proves what (measured on PSPLIB, see docs/benchmarks.md):

- When every option's ``P`` lies on a common grid and the horizon spans few
  enough periods (durations in whole minutes or hours, PSPLIB's whole periods),
  the time-indexed model (:mod:`exo.compiler.timeindexed`) is exact and its
  relaxation counts every period's load. For ``objective = time`` from a plan,
  up to :data:`SMALL_STEPS` steps, it descends (:func:`_descend`): "is there a
  plan a whole period shorter?", a smaller model with no objective, until the
  answer is no (a proof; the question's windows are narrowed first, which
  often answers it with no model, :mod:`exo.compiler.windows`); above, the
  makespan model keeps giving a bound.
- Otherwise, for up to :data:`SMALL_STEPS` steps, the continuous-time
  disjunctive model (:func:`exo.compiler.milp.solve_milp` with ``exact_quota``),
  with its big-M horizon cut down to the best plan's makespan.

Both start from the best plan found so far (HiGHS checks it and prunes with it
from the first node) and report progress through the shared clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from exo.compiler.anytime import Clock
from exo.compiler.feasibility import known_of
from exo.compiler.highs import Watch
from exo.compiler.makespan_search import shorter_modes
from exo.compiler.milp import MilpResult, MilpStatus, solve_milp
from exo.compiler.problem import Problem
from exo.compiler.timeindexed import Grid, exact_grid, horizon_periods, solve_grid

#: Problems up to this many steps get the exact disjunctive quota model (continuous time).
SMALL_STEPS = 30


@dataclass(frozen=True, slots=True)
class Exact:
    """What an exact model found: a choice (the caller rebuilds its schedule) and a bound."""

    result: MilpResult
    #: The model is exact: its optimum is the problem's (so its bound is the problem's).
    exact: bool
    #: The exact grid's period (hours) when the time-indexed model ran: every
    #: makespan bound rounds up to a whole number of them (:func:`whole_periods`).
    period: float | None = None


def watch(
    clock: Clock,
    objective: Literal["cost", "time"],
    phase: str,
    scale: float = 1.0,
    offset: float = 0.0,
    *,
    plans: bool = True,
    bounds: bool = True,
) -> Watch:
    """HiGHS polls the clock (time limit, Ctrl-C) and reports ``(value + offset) * scale``.

    ``plans``: the model's incumbents are plans of the problem (not so for a
    relaxation, whose solutions may break a quota at some instant); ``bounds``:
    its proven bound holds for the problem (not so for a model over fewer
    options). What is not true of the problem is not reported as progress.
    """

    def progress(primal: float, dual: float) -> None:
        best = (primal + offset) * scale if plans and math.isfinite(primal) else None
        bound = (dual + offset) * scale if bounds and math.isfinite(dual) else None
        clock.report(objective, phase, best=best, bound=bound)

    return Watch(stopped=clock.expired, progress=progress)


def whole_periods(bound: float, delta: float) -> float:
    """A makespan bound rounded up to whole periods of the exact grid.

    On an exact grid the optimal makespan is the grid model's, a whole number
    of periods (:mod:`exo.compiler.timeindexed`), so no optimum lies between a
    bound and the next multiple of ``delta`` above it (a bound of 19.7 periods
    proves a plan of 20).
    """
    if not math.isfinite(bound) or delta <= 0.0:
        return bound
    periods = math.ceil(bound / delta - 1e-6)
    return max(bound, periods * delta)


def solve_exact(
    problem: Problem,
    *,
    objective: Literal["cost", "time"],
    limit: float | None,
    binding: Sequence[int],
    clock: Clock,
    seconds: float | None,
    plan: tuple[Sequence[int], Sequence[float], float] | None,
) -> Exact | None:
    """The best exact model for this problem, from ``plan`` (choice, starts, makespan).

    ``limit``: the deadline or makespan cap. ``None`` when no exact model fits.
    """
    horizon = limit
    if objective == "time" and plan is not None:
        horizon = plan[2] if horizon is None else min(horizon, plan[2])
    if horizon is not None:
        grid = exact_grid(problem, horizon)
        if grid is not None and objective == "time" and plan is not None and _descends(problem):
            got = _descend(problem, grid, clock, seconds, plan)
            if got is not None:
                return got
        if grid is not None:
            got = _time_indexed(problem, grid, objective, horizon, clock, seconds, plan)
            if got is not None:
                return got
    if problem.size > SMALL_STEPS:
        return None
    exact = solve_milp(
        problem,
        objective=objective,
        deadline=limit,
        makespan_cap=None if plan is None or objective != "time" else plan[2],
        energy=binding,
        exact_quota=binding,
        time_limit_s=seconds,
        start=None if plan is None else (plan[0], plan[1]),
        watch=watch(clock, objective, "exact model (disjunctive)"),
    )
    return Exact(exact, exact=True)


def _time_indexed(
    problem: Problem,
    grid: Grid,
    objective: Literal["cost", "time"],
    horizon: float,
    clock: Clock,
    seconds: float | None,
    plan: tuple[Sequence[int], Sequence[float], float] | None,
) -> Exact | None:
    """The time-indexed model on ``grid`` up to ``horizon``; ``None`` when it does not fit."""
    scale = grid.delta if objective == "time" else 1.0
    # the time-indexed makespan is the horizon minus the periods after the end
    offset = float(horizon_periods(grid, horizon)) if objective == "time" else 0.0
    got = solve_grid(
        problem,
        grid,
        objective=objective,
        horizon_h=horizon,
        time_limit_s=seconds,
        start=None if plan is None else (plan[0], plan[1]),
        watch=watch(clock, objective, "exact model (time-indexed)", scale, offset),
        remember=True,
    )
    if got is None:
        return None
    r = got.run
    status = r.status
    bound = got.bound
    if objective == "time":
        bound = whole_periods(bound, grid.delta)
    return Exact(
        MilpResult(
            status if status != "unknown" else "unknown",
            got.choice,
            got.starts,
            got.value,
            bound,
            r.build_s,
            r.solve_s,
        ),
        exact=True,
        period=grid.delta,
    )


def descends(problem: Problem, span: float) -> bool:
    """Whether :func:`solve_exact` for ``objective = time`` from a plan of makespan
    ``span`` is the descent (its questions kept between rounds,
    :mod:`exo.compiler.feasibility`)."""
    return _descends(problem) and exact_grid(problem, span) is not None


def _descends(problem: Problem) -> bool:
    """Whether the makespan is searched by descent (up to :data:`SMALL_STEPS` steps).

    A descent cut short proves nothing, so its bound is only the trivial one;
    above 30 steps, where the 60 s limit rarely lets it finish, the makespan
    model's relaxation gives the bound a user reads as the gap (PSPLIB j60/j90:
    proven gaps of 11-18 % by descent against 2.7-7 % by the makespan model for
    the same plans; docs/benchmarks.md).
    """
    return problem.size <= SMALL_STEPS


def _descend(
    problem: Problem,
    grid: Grid,
    clock: Clock,
    seconds: float | None,
    plan: tuple[Sequence[int], Sequence[float], float],
) -> Exact | None:
    """The shortest makespan by asking, one period at a time, for a plan that ends sooner.

    Each question is the time-indexed model with the horizon one period below
    the best makespan and no objective: its windows are narrower and HiGHS
    stops at the first plan, or proves that none exists, which proves the best
    plan optimal. Proving that is what the makespan model, over the whole
    horizon, was slow at (PSPLIB ``j1040_1``: no plan of 18 periods in 0.3 CPU s
    here; the makespan model's bound went from 15.6 to 16 in 30 s;
    docs/benchmarks.md).
    It takes the whole of ``seconds``: the makespan model over the horizon asks
    the same question in a larger model, so the time is not split between them
    (each HiGHS run starts its search afresh). ``None`` when the model does not fit.
    """
    t0 = time.perf_counter()
    end = None if seconds is None else t0 + seconds
    shorter = shorter_first(problem, grid, clock, seconds, plan)
    best = None if shorter is None else shorter[:2]
    span = plan[2] if shorter is None else shorter[2]
    stop = Watch(stopped=clock.expired)
    while not clock.expired():
        left = None if end is None else end - time.perf_counter()
        if left is not None and left <= 0.0:
            break
        # the optimum is a whole number of periods: the most below the best makespan
        periods = math.ceil(span / grid.delta - 1e-6) - 1
        if periods < 0:
            return _descended(best, span, grid.delta, proven=True, t0=t0)
        got = solve_grid(
            problem,
            grid,
            objective=None,
            horizon_h=periods * grid.delta,
            time_limit_s=left,
            watch=stop,
            remember=True,
        )
        if got is None:
            return None
        if got.run.status == "infeasible":
            clock.report("time", "exact model (time-indexed)", bound=span)
            return _descended(best, span, grid.delta, proven=True, t0=t0)
        if got.choice is None or got.starts is None:
            break
        best = (got.choice, got.starts)
        span = max(t + problem.options[s][k].P for s, (k, t) in enumerate(zip(*best, strict=True)))
        clock.report("time", "exact model (time-indexed)", best=span)
    return _descended(best, span, grid.delta, proven=False, t0=t0)


def shorter_first(
    problem: Problem,
    grid: Grid,
    clock: Clock,
    seconds: float | None,
    plan: tuple[Sequence[int], Sequence[float], float],
) -> tuple[tuple[int, ...], tuple[float, ...], float] | None:
    """Steps with several options: a shorter plan from the mode search
    (:func:`makespan_search.shorter_modes`) before the descent's questions.

    Not again from a plan it already started from with at least as many seconds
    and found nothing shorter: its seeds are fixed, so a resume round (the same
    plan, less time) would only repeat a part of that work, and the question the
    descent asks next (its split search going on from where it stopped) gets the
    time instead (PSPLIB ``j2061_7``: 5.6 s of a 60 s run's rounds spent so;
    docs/benchmarks.md).
    """
    tried = known_of(problem, grid.delta).modes_tried
    key = (tuple(plan[0]), tuple(plan[1]))
    if key in tried:
        was = tried[key]
        if was is None or (seconds is not None and seconds <= was):
            return None
    shorter = shorter_modes(problem, plan, clock, seconds)
    if shorter is None and not clock.expired():
        tried[key] = seconds
    return shorter


def _descended(
    best: tuple[tuple[int, ...], tuple[float, ...]] | None,
    span: float,
    delta: float,
    *,
    proven: bool,
    t0: float,
) -> Exact:
    """What :func:`_descend` found: no plan ends a period before ``span`` when ``proven``."""
    took = time.perf_counter() - t0
    if best is None:
        # no plan ends sooner than the one the caller has
        none: MilpStatus = "infeasible" if proven else "unknown"
        bound = math.inf if proven else -math.inf
        return Exact(MilpResult(none, None, None, None, bound, 0.0, took), True, delta)
    status: MilpStatus = "optimal" if proven else "feasible"
    result = MilpResult(status, best[0], best[1], span, span if proven else -math.inf, 0.0, took)
    return Exact(result, True, delta)
