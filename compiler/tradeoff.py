"""The time-cost trade-off on the precedence graph: a cheap plan that meets a deadline.

Without quotas, the cheapest plan within a deadline is the discrete time-cost
trade-off problem of project scheduling: each step has options (a duration
``P`` and a cost) and the longest path must end by the deadline. This module
finds a good plan for it without a solver model, in a fraction of a second at
1,000 steps, for the search to start from (a first plan under a tight time
limit, a warm start for the relaxation):

1. :func:`crash` starts from a choice (usually every step's cheapest option)
   and, while the longest path is longer than the limit, upgrades one step on
   the critical subgraph (the steps with the least float) to the faster option
   with the lowest extra cost per hour saved, that rate divided by the share of
   the critical paths that run through the step (a step every critical path
   shares shortens them all at once; one of two parallel branches shortens
   half of them).
2. :func:`relax` gives back what crashing bought and no longer needs: step by
   step (largest possible saving first) the cheapest option that fits in the
   step's float.

3. :func:`unload`, where a quota binds: while the work on a resource (its
   resource-hours) exceeds what the quota holds by the deadline (times a
   utilisation below 1 that the caller lowers round by round), the move with
   the lowest extra cost per resource-hour taken off the overloaded resources,
   among the options that fit in the step's float and overload no other.

The caller schedules the result under the quotas
(:func:`exo.compiler.repair.traded`): packing the work over time is the
schedule's business, this module only sees totals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from exo.compiler.problem import TOL_H, TOL_USD, Problem, longest_paths
from exo.compiler.quota import usage

#: Crashing moves between two looks at the clock.
CHECK_EVERY = 8


def crash(
    problem: Problem,
    choice: Sequence[int],
    limit: float,
    expired: Callable[[], bool] | None = None,
) -> list[int] | None:
    """``choice`` with steps upgraded until its longest path ends by ``limit``.

    ``None`` when no faster option is left on a critical path that is still too
    long, or the clock ran out first.
    """
    current = list(choice)
    succ = problem.successors()
    moves = 0
    while True:
        durations = [problem.options[s][k].P for s, k in enumerate(current)]
        head, tail = longest_paths(problem, durations, succ)
        slack = [limit - (h + p + t) for h, p, t in zip(head, durations, tail, strict=True)]
        worst = min(slack, default=0.0)
        if worst >= -TOL_H:
            return current
        moves += 1
        if moves % CHECK_EVERY == 0 and expired is not None and expired():
            return None
        share = _path_shares(problem, succ, head, durations, slack, worst)
        move = _cheapest_move(problem, current, share)
        if move is None:
            return None
        current[move[0]] = move[1]


def _path_shares(
    problem: Problem,
    succ: Sequence[Sequence[int]],
    head: Sequence[float],
    durations: Sequence[float],
    slack: Sequence[float],
    worst: float,
) -> dict[int, float]:
    """Per critical step: the share of the critical (longest) paths that run through it.

    The critical subgraph is the steps with the least float and the edges
    between them with no gap (``head[i] + P[i] = head[j]``); the paths through a
    step are those reaching it from a source times those leaving it for a sink.
    """
    eps = 1e-9 * max(1.0, abs(worst), max(head, default=0.0))
    crit = [sl <= worst + eps for sl in slack]

    def tight(i: int, j: int) -> bool:
        return crit[i] and crit[j] and abs(head[i] + durations[i] - head[j]) <= eps

    n = problem.size
    into = [0.0] * n
    for j in range(n):
        if crit[j]:
            into[j] = sum(into[i] for i in problem.preds[j] if tight(i, j)) or 1.0
    out = [0.0] * n
    total = 0.0
    for i in reversed(range(n)):
        if crit[i]:
            nxt = [j for j in succ[i] if tight(i, j)]
            out[i] = sum(out[j] for j in nxt) or 1.0
            if not nxt:  # a critical path ends here
                total += into[i]
    total = max(total, 1.0)
    return {s: into[s] * out[s] / total for s in range(n) if crit[s]}


def _cheapest_move(
    problem: Problem, current: Sequence[int], share: dict[int, float]
) -> tuple[int, int] | None:
    """The (step, option) with the lowest extra cost per critical hour saved."""
    best: tuple[float, float, int, int] | None = None
    for s, part in share.items():
        opts = problem.options[s]
        cur = opts[current[s]]
        for k, o in enumerate(opts):
            if o.P < cur.P - 1e-12:
                rate = (o.cost - cur.cost) / (cur.P - o.P) / max(part, 1e-12)
                key = (rate, o.P, s, k)
                if best is None or key < best:
                    best = key
    return None if best is None else (best[2], best[3])


def relax(
    problem: Problem,
    choice: Sequence[int],
    limit: float,
    expired: Callable[[], bool] | None = None,
) -> list[int]:
    """``choice`` with each step moved to the cheapest option its float still holds.

    Steps in order of the saving at stake (largest first); the longest paths are
    recomputed after every change, so the result still ends by ``limit``.
    """
    current = list(choice)
    cheapest = [min(o.cost for o in opts) for opts in problem.options]
    order = sorted(
        range(problem.size),
        key=lambda s: (cheapest[s] - problem.options[s][current[s]].cost, s),
    )
    durations = [problem.options[s][k].P for s, k in enumerate(current)]
    succ = problem.successors()
    head, tail = longest_paths(problem, durations, succ)
    for s in order:
        opts = problem.options[s]
        cur = opts[current[s]]
        if cur.cost <= cheapest[s] + TOL_USD:
            break
        room = limit - head[s] - tail[s]
        fits = [k for k, o in enumerate(opts) if o.cost < cur.cost - TOL_USD and room >= o.P]
        if not fits:
            continue
        current[s] = min(fits, key=lambda k: (opts[k].cost, opts[k].P, k))
        durations[s] = opts[current[s]].P
        if expired is not None and expired():
            break
        head, tail = longest_paths(problem, durations, succ)
    return current


def within_limit(
    problem: Problem,
    choice: Sequence[int],
    limit: float,
    expired: Callable[[], bool] | None = None,
) -> list[int] | None:
    """:func:`crash` then :func:`relax`: a cheap choice whose longest path ends by ``limit``."""
    crashed = crash(problem, choice, limit, expired)
    if crashed is None:
        return None
    return relax(problem, crashed, limit, expired)


def unload(
    problem: Problem,
    choice: Sequence[int],
    limit: float,
    utilisation: float,
    expired: Callable[[], bool] | None = None,
) -> list[int] | None:
    """``choice`` with work moved off every quota whose resource-hours exceed its share.

    A resource holds at most ``quota x limit x utilisation`` resource-hours. Each
    move takes the (step, option) with the lowest extra cost per resource-hour
    saved on the overloaded resources (each counted as a share of its capacity),
    that fits in the step's float and overloads no other resource. ``None`` when
    no such move is left, or the clock ran out first.
    """
    current = list(choice)
    caps = [q * limit * utilisation for q in problem.limits]
    work = _Work(problem)
    held = [0.0] * len(caps)
    for s, k in enumerate(current):
        for r, e in enumerate(work.of(s, k)):
            held[r] += e
    durations = [problem.options[s][k].P for s, k in enumerate(current)]
    succ = problem.successors()
    head, tail = longest_paths(problem, durations, succ)
    moves = 0
    while True:
        over = [r for r, (h, c) in enumerate(zip(held, caps, strict=True)) if h > c + 1e-9]
        if not over:
            return current
        moves += 1
        if moves % CHECK_EVERY == 0 and expired is not None and expired():
            return None
        move = _unloading_move(problem, work, current, over, held, caps, head, tail, limit)
        if move is None:
            return None
        s, k = move
        for r, (a, b) in enumerate(zip(work.of(s, current[s]), work.of(s, k), strict=True)):
            held[r] += b - a
        current[s] = k
        durations[s] = problem.options[s][k].P
        head, tail = longest_paths(problem, durations, succ)


class _Work:
    """Resource-hours of each (step, option), computed when first asked for."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._of: dict[tuple[int, int], tuple[float, ...]] = {}

    def of(self, s: int, k: int) -> tuple[float, ...]:
        got = self._of.get((s, k))
        if got is None:
            o = self.problem.options[s][k]
            got = tuple(u * o.P for u in usage(o, self.problem.resources))
            self._of[s, k] = got
        return got


def _unloading_move(
    problem: Problem,
    work: _Work,
    current: Sequence[int],
    over: Sequence[int],
    held: Sequence[float],
    caps: Sequence[float],
    head: Sequence[float],
    tail: Sequence[float],
    limit: float,
) -> tuple[int, int] | None:
    """The (step, option) with the lowest extra cost per share of overload removed."""
    best: tuple[float, float, int, int] | None = None
    for s, opts in enumerate(problem.options):
        mine = work.of(s, current[s])
        if all(mine[r] <= 0.0 for r in over):
            continue
        cur = opts[current[s]]
        room = limit - head[s] - tail[s]
        for k, o in enumerate(opts):
            if k == current[s] or room < o.P:
                continue
            theirs = work.of(s, k)
            saved = sum((mine[r] - theirs[r]) / caps[r] for r in over)
            if saved <= 1e-12:
                continue
            if any(
                held[r] + theirs[r] - mine[r] > caps[r] + 1e-9
                for r in range(len(caps))
                if r not in over and theirs[r] > mine[r]
            ):
                continue
            key = ((o.cost - cur.cost) / saved, o.P, s, k)
            if best is None or key < best:
                best = key
    return None if best is None else (best[2], best[3])
