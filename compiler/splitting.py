"""Refuting "a plan by ``H``?" by splitting windows: a small constraint-programming search.

When the narrowing of :mod:`exo.compiler.windows` leaves the windows of a
question open, the question may still have no plan: the rules see only what
every start of a window shares. HiGHS then has to refute the time-indexed model
by its own branching, which on PSPLIB's 20-step multi-mode instances one period
below the optimum took more than a 60 s run gives it (``j2029_9`` at 38:
1,158 nodes, two thirds of the tree, in 42 s; docs/benchmarks.md).

This search branches on the windows instead. A node is a set of windows; it
is *refuted* when the rules, then one pass of shaving (each window end fixed
in turn, the rules run again), close a window. An open node is split in two:
the step with the widest window, weighed by how heavy the step is
(:func:`split`), either starts in the first half of it or in the second
(``ls <= mid`` or ``es > mid``), and a step whose window is one period wide
has its options split in two. A node's shaving answers the probes its parent
answered again without the rules while their fixpoints still lie in its
windows (:class:`windows.Supports`). Every plan of a node lies in one of
its two halves, and the rules and shaving remove only starts that no plan can
use, so when every node is refuted no plan ends by ``H``: a proof, as sound as
the narrowing it is built on.

A node whose every window is one start in one option and that the rules leave
open is a plan when the energetic rule ran (the interval of each period then
checks that period's load exactly); it is checked once more, period by period
(:func:`is_plan`), and handed back. Otherwise the search stops there and leaves
the question to the model. The open nodes are kept (:class:`Frontier`): a question asked again (a resume
round) goes on from where the search stopped. Depth first, the later half
first pushed, so the search is deterministic; only how far it gets depends on
the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from exo.compiler.highs import Watch, share_of
from exo.compiler.windows import Box, Known, Narrowed, Rules, Supports, Windows, shaved_once

#: The share of the time a question has left (after narrowing and the model's
#: first slice) that the split search takes: all of it. A model run after a search
#: stopped by the clock starts afresh with seconds left and never answered on PSPLIB
#: j20 (``j2029_9``: 2.9 of a 60 s run's CPU s spent so; docs/benchmarks.md).
SPLIT_SHARE = 1.0

#: What a search found: every node refuted (no plan), a plan, a node that is one
#: start per step and not a plan (the rules without energy: the model's to answer),
#: or stopped by the clock.
Outcome = Literal["none", "plan", "leaf", "stopped"]


@dataclass(frozen=True, slots=True)
class Frontier:
    """The nodes a split search has still to refute (the next one last), and how many
    nodes it has looked at so far."""

    open: tuple[Windows, ...]
    nodes: int = 0


@dataclass(frozen=True, slots=True)
class Searched:
    outcome: Outcome
    frontier: Frontier
    #: The plan (option and start period per step) when ``outcome`` is ``"plan"``.
    plan: tuple[tuple[int, ...], tuple[int, ...]] | None = None


def ask(
    rules: Rules,
    windows: Windows,
    known: Known,
    time_limit_s: float | None,
    watch: Watch | None,
) -> tuple[Searched, float | None]:
    """The split search of a question whose narrowed ``windows`` are open, and the
    time limit it leaves the model.

    It gets :data:`SPLIT_SHARE` of ``time_limit_s``; where it stops is kept in
    ``known`` (the problem's narrowings) and the next ask of the horizon goes on
    from there. "No plan" is kept as the narrowing's answer, which answers every
    shorter horizon too. Without the energetic rule (no quota, or a horizon over
    :data:`windows.MAX_ENERGY_PERIODS`) shaving does nothing: the model answers.
    """
    horizon = rules.horizon
    if not rules.energy:  # shaving does nothing without it: the model's to answer
        return Searched("leaf", Frontier((windows,))), time_limit_s
    t0 = time.perf_counter()
    stopped = share_of(watch, time_limit_s, SPLIT_SHARE)

    was = known.splits.get(horizon)
    # resumed: each open node within what the narrowing knows now (it may have gone on)
    start = Frontier((windows,)) if was is None else _within(was, windows)
    got = split_search(rules, start, stopped)
    known.splits[horizon] = got.frontier
    if got.outcome == "none":
        known.put(horizon, Narrowed(None, True))
    if time_limit_s is not None:
        time_limit_s = max(time_limit_s - (time.perf_counter() - t0), 0.0)
    return got, time_limit_s


def split_search(rules: Rules, frontier: Frontier, stopped: Callable[[], bool]) -> Searched:
    """Refute every node of ``frontier`` (depth first) until ``stopped()`` says the time is up.

    ``rules``: the question's (its steps, quotas and horizon); a node's windows must
    hold every plan of the part of the question it stands for.
    """
    # each node with its parent's probes that fit (:class:`windows.Supports`)
    none: dict[tuple[int, int, int], Box] = {}
    stack = [(node, none) for node in frontier.open]
    nodes = frontier.nodes
    heavy = heaviness(rules)
    while stack:
        if stopped():
            return Searched("stopped", _frontier(stack, nodes))
        node, inherited = stack.pop()
        nodes += 1
        es, ls = list(node.es), [list(x) for x in node.ls]
        got = rules.propagate(es, ls)
        supports = Supports(inherited)
        if got is not None:
            # shaving cut short by the clock still holds every plan: the node is
            # split all the same, so each call makes progress however short
            got = shaved_once(rules, *got, stopped, supports)
        if got is None:
            continue  # refuted
        halves = split(Windows(tuple(got[0]), tuple(tuple(x) for x in got[1])), heavy)
        if halves is None:
            stack.append((node, inherited))
            plan = _plan(got[0], got[1])
            if is_plan(rules, *plan):
                return Searched("plan", _frontier(stack, nodes), plan)
            return Searched("leaf", _frontier(stack, nodes))
        stack.extend((half, supports.found) for half in reversed(halves))
    return Searched("none", Frontier((), nodes))


def _frontier(stack: list[tuple[Windows, dict[tuple[int, int, int], Box]]], nodes: int) -> Frontier:
    return Frontier(tuple(node for node, _ in stack), nodes)


def split(w: Windows, heavy: Sequence[float] | None = None) -> tuple[Windows, Windows] | None:
    """The two halves of ``w`` at the step whose window is widest, weighed by how
    heavy the step is (``None``: one start per step, nothing to split).

    The step chosen has the largest ``(width + 1) * heavy[s]`` (:func:`heaviness`:
    an option's periods times the sum of its shares of the quotas' limits, the
    most of the step's options; without ``heavy``, the widest window). Halving a
    wide window of a heavy step narrows the most where the energetic rule acts:
    ``j2061_7`` at 37, 103 nodes to refute it against 211 for the widest window
    alone (151 with the largest share instead of the sum); ``j2029_9`` at 38: 21
    against 39 (234 for options first in the order of the earliest starts);
    ``j1829_9`` at 35: 13 against 27 (docs/benchmarks.md, issue #18, sixth and
    seventh rounds).
    """
    best: tuple[float, int, int] | None = None  # (-weight, -width, step)
    for s, (first, lasts) in enumerate(zip(w.es, w.ls, strict=True)):
        live = [k for k, last in enumerate(lasts) if last >= first]
        width = max(lasts[k] for k in live) - first
        if width > 0 or len(live) > 1:
            key = (-(width + 1) * (1.0 if heavy is None else heavy[s]), -width, s)
            if best is None or key < best:
                best = key
    if best is None:
        return None
    s = best[2]
    first, lasts = w.es[s], w.ls[s]
    live = [k for k, last in enumerate(lasts) if last >= first]
    last = max(lasts[k] for k in live)
    if last == first:  # one start: split the options
        some = set(live[: len(live) // 2])
        a = tuple(x if k in some else first - 1 for k, x in enumerate(lasts))
        b = tuple(x if k not in some else first - 1 for k, x in enumerate(lasts))
        return _with(w, s, first, a), _with(w, s, first, b)
    mid = (first + last) // 2
    return _with(w, s, first, tuple(min(x, mid) for x in lasts)), _with(w, s, mid + 1, lasts)


def heaviness(rules: Rules) -> tuple[float, ...]:
    """Per step, the most any option takes of the quotas: its periods times the sum
    of its shares of each quota's limit."""
    limits = [max(1, q) for q in rules.limits]

    def most(periods: Sequence[int], uses: Sequence[Sequence[int]]) -> float:
        shares = [
            p * sum(u / q for u, q in zip(us, limits, strict=True))
            for p, us in zip(periods, uses, strict=True)
        ]
        return max(shares, default=0.0)

    return tuple(most(p, u) for p, u in zip(rules.periods, rules.use, strict=True))


def _within(frontier: Frontier, w: Windows) -> Frontier:
    """Each node of ``frontier`` cut to ``w`` (both hold every plan of the node)."""
    nodes = tuple(
        Windows(
            tuple(max(a, b) for a, b in zip(n.es, w.es, strict=True)),
            tuple(
                tuple(min(a, b) for a, b in zip(x, y, strict=True))
                for x, y in zip(n.ls, w.ls, strict=True)
            ),
        )
        for n in frontier.open
    )
    return Frontier(nodes, frontier.nodes)


def _with(w: Windows, s: int, first: int, lasts: tuple[int, ...]) -> Windows:
    es = list(w.es)
    es[s] = first
    ls = list(w.ls)
    ls[s] = lasts
    return Windows(tuple(es), tuple(ls))


def _plan(es: list[int], ls: list[list[int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The option and start of each step of windows one start wide."""
    choice = tuple(
        next(k for k, x in enumerate(last) if x >= e) for e, last in zip(es, ls, strict=True)
    )
    return choice, tuple(es)


def is_plan(rules: Rules, choice: tuple[int, ...], starts: tuple[int, ...]) -> bool:
    """Whether options and starts keep every edge and every quota in every period, by ``H``."""
    p = [rules.periods[s][k] for s, k in enumerate(choice)]
    if any(t < 0 or t + d > rules.horizon for t, d in zip(starts, p, strict=True)):
        return False
    for j, before in enumerate(rules.preds):
        if any(starts[i] + p[i] > starts[j] for i in before):
            return False
    for r, limit in enumerate(rules.limits):
        load = [0] * rules.horizon
        for s, k in enumerate(choice):
            for t in range(starts[s], starts[s] + p[s]):
                load[t] += rules.use[s][k][r]
        if max(load, default=0) > limit:
            return False
    return True
