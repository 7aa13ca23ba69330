"""Shorter multi-mode plans from the exact model over neighbourhoods (a matheuristic).

After the mode search (:func:`exo.compiler.makespan_search.shorter_modes`) the
options it settles on are often not those of any shortest plan: on PSPLIB
``j2029_4`` its 34-period plan's options admit no plan of 33 (the time-indexed
model proves it), while the optimum is 32. The genetic search changes one
option at a time; a shorter plan may need several changed together, with the
steps reordered around them. Here the time-indexed model
(:func:`exo.compiler.timeindexed.solve_grid`) asks "is there a plan a period
shorter?" over a *neighbourhood* of the best plan: a set of freed steps, which
may take any option and any place; every other step keeps its option and its
order relative to the other kept steps (an edge ``a -> b`` whenever ``a`` ends
before ``b`` starts in the best plan), though not its start. These extra edges
and fixed options shrink the windows, so a question is answered in a fraction
of a second where the same question over the whole problem takes the descent
seconds to minutes. This is large neighbourhood search with precedence-fixing
neighbourhoods (Godard, Laborie and Nuijten 2005, "Randomized large
neighborhood search for cumulative scheduling", ICAPS): the freed steps are,
in turn, drawn at random and a run of consecutive steps of the schedule (a
time window).

The neighbourhood grows by a step after :data:`GROW_AFTER` answers "no plan"
in a row (the kept part is then too tight) and shrinks by one when a question
runs out of time (too large to answer quickly). A search that has not
shortened the plan gives up after :func:`stall_after` questions (half as many
as steps, at least eight): the plan is then likely optimal, and what is left
of the share goes to the descent that proves it; once it has, it goes on until
as many questions in a row as steps bring nothing (new bests come in runs).
Every answer is a plan of the whole problem (the model holds every
precedence, quota and the budget, plus the extra edges), so the result is
never longer than the plan given and always valid. Without a time limit the
search asks a fixed number of questions, each answered fully, with a seeded
draw: the same plan on every run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace

from exo.compiler.anytime import Clock
from exo.compiler.heuristics import Found
from exo.compiler.highs import Watch
from exo.compiler.problem import TOL_H, Problem
from exo.compiler.timeindexed import Grid, exact_grid, solve_grid

#: Share of the steps freed in the first neighbourhood.
FREE_SHARE = 0.4
#: Fewest steps freed.
LEAST_FREE = 2
#: Answers "no plan" in a row before the neighbourhood grows by a step.
GROW_AFTER = 3
#: Wall seconds one question may take (with a time limit): above, the
#: neighbourhood shrinks (PSPLIB j20-j30 multi-mode: most questions were
#: answered in 0.1-0.9 CPU s at a load of 7).
QUESTION_S = 2.0
#: Questions without a shorter plan, per step, before a search that has not yet
#: shortened the plan gives up (with a time limit), and never fewer than
#: :data:`LEAST_STALL`: the time left goes to the descent's proof. On a plan
#: already optimal every question is spent for nothing (PSPLIB ``j1861_7``: 18
#: questions, ~8 s of a 60 s run, and its proof then missed the limit); on
#: j16-j30 multi-mode the first shorter plan came within 8 questions in 7 of 8
#: searches that found one (3 seeds).
STALL_PER_STEP = 0.5
#: Fewest questions without a shorter plan before the search gives up.
LEAST_STALL = 8
#: Questions in a row without a shorter plan, per step, before a search that
#: has shortened the plan gives up: new bests come in runs (``j2029_4``: 34, 33,
#: then 32 after up to 15 more questions at a load of 14).
PATIENCE_PER_STEP = 1
#: Questions without a time limit (a deterministic amount of work; each is
#: answered fully, which on 30 steps may take seconds).
QUESTIONS_UNLIMITED = 6


def shorter_by_neighbourhoods(
    problem: Problem,
    best: Found,
    clock: Clock,
    *,
    bound: float,
    seed: int = 0,
) -> Found:
    """A plan shorter than ``best`` from the exact model over neighbourhoods (or ``best``).

    Stops at ``bound`` (no plan is shorter), when ``clock`` expires, after
    :func:`stall_after` questions without a shorter plan when none was found
    yet (what is left of ``clock`` is then the caller's), after
    :data:`PATIENCE_PER_STEP` questions per step in a row without one once one
    was, or, when ``clock`` has no limit, after :data:`QUESTIONS_UNLIMITED`
    questions.
    """
    n = problem.size
    grid = exact_grid(problem, best.makespan)
    if grid is None or n < 2 or not problem.limits:
        return best
    limited = clock.remaining() is not None
    most = None if limited else QUESTIONS_UNLIMITED
    patience = stall_after(n)
    rng = random.Random(seed)
    free = max(LEAST_FREE, min(n - 1, round(FREE_SHARE * n)))
    asked = since = refused = 0
    while best.makespan > bound + TOL_H and not clock.expired():
        if (most is not None and asked >= most) or since >= patience:
            break
        freed = _drawn(rng, best, free, window=asked % 2 == 1)
        asked, since = asked + 1, since + 1
        got, status = _ask(problem, grid, best, freed, clock)
        if got is not None:
            best, since, refused = got, 0, 0
            patience = max(patience, math.ceil(PATIENCE_PER_STEP * n))
            clock.report("time", "neighbourhood search", best=best.makespan)
        elif status == "infeasible" and limited:
            refused += 1
            if refused >= GROW_AFTER and free < n - 1:
                free, refused = free + 1, 0
        elif limited:
            free, refused = max(LEAST_FREE, free - 1), 0
    return best


def stall_after(steps: int) -> int:
    """Questions without a shorter plan before a search that found none gives up."""
    return max(LEAST_STALL, math.ceil(STALL_PER_STEP * steps))


def _drawn(rng: random.Random, best: Found, free: int, *, window: bool) -> frozenset[int]:
    """``free`` steps: drawn at random, or (``window``) consecutive in ``best``'s start order."""
    n = len(best.starts)
    if not window:
        return frozenset(rng.sample(range(n), free))
    order = sorted(range(n), key=lambda s: (best.starts[s], s))
    first = rng.randrange(n - free + 1)
    return frozenset(order[first : first + free])


def _ask(
    problem: Problem, grid: Grid, best: Found, freed: frozenset[int], clock: Clock
) -> tuple[Found | None, str]:
    """A plan a period shorter than ``best`` in the neighbourhood of ``freed`` (and the answer)."""
    sub, subgrid, order, kept = neighbourhood(problem, grid, best, freed)
    periods = math.ceil(best.makespan / grid.delta - 1e-6) - 1
    left = clock.remaining()
    got = solve_grid(
        sub,
        subgrid,
        objective=None,
        horizon_h=periods * grid.delta,
        time_limit_s=None if left is None else min(left, QUESTION_S),
        watch=Watch(stopped=clock.expired),
    )
    if got is None:
        return None, "too large"
    if got.choice is None or got.starts is None:
        return None, got.run.status
    choice = [0] * problem.size
    starts = [0.0] * problem.size
    for i, s in enumerate(order):
        choice[s] = kept[i][got.choice[i]]
        starts[s] = got.starts[i]
    span = max(
        t + problem.options[s][k].P for s, (k, t) in enumerate(zip(choice, starts, strict=True))
    )
    if span >= best.makespan - TOL_H:
        return None, got.run.status
    return Found(tuple(choice), tuple(starts), span, problem.cost(choice)), got.run.status


def neighbourhood(
    problem: Problem, grid: Grid, best: Found, freed: frozenset[int]
) -> tuple[Problem, Grid, list[int], list[list[int]]]:
    """The problem with every step not in ``freed`` held to ``best``'s option and order.

    Steps are renumbered in ``best``'s start order (a topological order that
    every added edge follows); returns the problem, its grid, the original step
    of each position and, per position, the original option of each of its options.
    """
    n = problem.size
    ends = [best.starts[s] + problem.options[s][best.choice[s]].P for s in range(n)]
    order = sorted(range(n), key=lambda s: (best.starts[s], s))
    where = {s: i for i, s in enumerate(order)}
    held = [s for s in order if s not in freed]
    preds: list[tuple[int, ...]] = []
    options, periods, kept = [], [], []
    for s in order:
        before = {where[i] for i in problem.preds[s]}
        if s not in freed:
            before.update(
                where[a] for a in held if where[a] < where[s] and ends[a] <= best.starts[s] + TOL_H
            )
        preds.append(tuple(sorted(before)))
        ks = list(range(len(problem.options[s]))) if s in freed else [best.choice[s]]
        options.append(tuple(problem.options[s][k] for k in ks))
        periods.append(tuple(grid.periods[s][k] for k in ks))
        kept.append(ks)
    sub = replace(
        problem,
        names=tuple(problem.names[s] for s in order),
        preds=tuple(preds),
        options=tuple(options),
    )
    return sub, Grid(grid.delta, grid.rounding, tuple(periods)), order, kept


def as_found(problem: Problem, plan: tuple[Sequence[int], Sequence[float], float]) -> Found:
    """A plan (choice, starts, makespan) as the searches' :class:`Found`."""
    choice = tuple(plan[0])
    return Found(choice, tuple(plan[1]), plan[2], problem.cost(choice))
