"""Anytime local search on plans: the time left after the models is spent improving them.

Both searches keep a plan (an option per step and a priority per step), build its
schedule with the serial schedule generation scheme and forward-backward
improvement (:mod:`exo.compiler.schedule`), and accept a changed plan when it is
no worse, so that they drift across plateaus; after a run of moves without a new
best they restart from the best plan. They are seeded (the same moves in the same
order on every run): only the number of moves the clock allows differs between
runs, so results under a time limit differ only by how far the search got.

- :func:`shorten`: the shortest makespan within the budget (``objective = time``),
  or within a cap; moves change the option of a step on the critical chain or
  perturb the priorities.
- :func:`cheapen`: the cheapest plan whose schedule meets the deadline
  (``objective = cost``); moves take a cheaper option for one step and keep it
  when the rebuilt schedule still fits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from exo.compiler.anytime import Clock
from exo.compiler.problem import TOL_H, TOL_USD, Problem
from exo.compiler.schedule import critical, improve, makespan, priority_order, serial_sgs

#: Moves without a new best plan before the search restarts from the best.
PATIENCE = 60
#: Moves between two looks at the clock.
CHECK_EVERY = 4


@dataclass(frozen=True, slots=True)
class Found:
    choice: tuple[int, ...]
    starts: tuple[float, ...]
    makespan: float
    cost: float


def schedule(problem: Problem, choice: Sequence[int], priority: Sequence[float]) -> list[float]:
    """The serial schedule of ``choice`` in ``priority`` order, improved by double justification."""
    jobs = problem.jobs(choice)
    starts = serial_sgs(jobs, priority_order(jobs, priority))
    return improve(jobs, starts, rounds=2)


def _found(problem: Problem, choice: Sequence[int], starts: Sequence[float]) -> Found:
    jobs = problem.jobs(choice)
    return Found(tuple(choice), tuple(starts), makespan(jobs, starts), problem.cost(choice))


def shorten(
    problem: Problem,
    plan: Found,
    clock: Clock,
    *,
    bound: float = 0.0,
    cap: float | None = None,
    seed: int = 0,
    max_moves: int | None = None,
) -> Found:
    """A plan with a shorter makespan (or as short and cheaper), until ``bound`` or the clock.

    Plans must meet the budget and, with ``cap``, end by then. ``max_moves``: stop
    after this many moves (a deterministic amount of work).
    """
    rng = random.Random(seed)
    best = cur = plan
    stale = 0
    moves = 0
    while best.makespan > bound + TOL_H:
        moves += 1
        if max_moves is not None and moves > max_moves:
            break
        if moves % CHECK_EVERY == 0 and clock.expired():
            break
        choice = list(cur.choice)
        priority = list(cur.starts)
        if rng.random() < 0.5:
            jobs = problem.jobs(choice)
            chain = [s for s, on in enumerate(critical(jobs, cur.starts)) if on]
            s = rng.choice(chain)
            opts = problem.options[s]
            if len(opts) > 1:
                choice[s] = rng.choice([k for k in range(len(opts)) if k != choice[s]])
        else:
            span = max(cur.makespan, 1e-9)
            for s in rng.sample(range(problem.size), max(1, problem.size // 10)):
                priority[s] += rng.uniform(-0.25, 0.25) * span
        if not problem.meets_budget(problem.cost(choice)):
            continue
        got = _found(problem, choice, schedule(problem, choice, priority))
        if cap is not None and got.makespan > cap + TOL_H:
            continue
        if _key(got) <= _key(cur):
            cur = got
        if _key(got) < _key(best):
            best, stale = got, 0
            clock.report("time", "local search", best=best.makespan)
        else:
            stale += 1
            if stale >= PATIENCE:
                cur, stale = best, 0
    return best


def _key(f: Found) -> tuple[float, float]:
    return (round(f.makespan, 9), round(f.cost, 9))


def cheapen(
    problem: Problem,
    plan: Found,
    clock: Clock,
    *,
    limit: float,
    bound: float = 0.0,
    seed: int = 0,
    max_moves: int | None = None,
) -> Found:
    """A cheaper plan whose schedule still ends by ``limit``, until ``bound`` or the clock."""
    rng = random.Random(seed)
    best = plan
    order = sorted(range(problem.size), key=lambda s: -_saving(problem, best.choice, s))
    moves = 0
    while best.cost > bound + TOL_USD and order:
        moves += 1
        if max_moves is not None and moves > max_moves:
            break
        if moves % CHECK_EVERY == 0 and clock.expired():
            break
        s = order[(moves - 1) % len(order)] if rng.random() < 0.7 else rng.choice(order)
        opts = problem.options[s]
        cur = opts[best.choice[s]]
        cheaper = [k for k, o in enumerate(opts) if o.cost < cur.cost - TOL_USD]
        if not cheaper:
            order.remove(s)
            continue
        k = (
            min(cheaper, key=lambda k: (opts[k].P, opts[k].cost))
            if rng.random() < 0.5
            else (rng.choice(cheaper))
        )
        choice = list(best.choice)
        choice[s] = k
        if not problem.meets_budget(problem.cost(choice)):
            continue
        got = _found(problem, choice, schedule(problem, choice, best.starts))
        if got.makespan <= limit + TOL_H and got.cost < best.cost - TOL_USD:
            best = got
            clock.report("cost", "local search", best=best.cost)
    return best


def _saving(problem: Problem, choice: Sequence[int], s: int) -> float:
    opts = problem.options[s]
    return opts[choice[s]].cost - min(o.cost for o in opts)
