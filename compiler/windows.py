"""Start windows on a grid, narrowed by precedence and energetic reasoning.

For "is there a plan that ends by period ``H``?" (the descent of
:mod:`exo.compiler.exact`), every step ``s`` must start in a window: no earlier
than ``es[s]`` and, in option ``k``, no later than ``ls[s][k]``. The time-indexed
model (:mod:`exo.compiler.timeindexed`) has one start variable per period of
each window, so the narrower the windows, the smaller the model and the tighter
its relaxation; and when a window closes for every option of a step, no plan
ends by ``H`` and no model is needed.

Three rules narrow the windows, applied in turn until none changes anything:

- **precedence**: a step starts after each predecessor's earliest end (its
  shortest live option), and ends before each successor's latest start;
- **energetic reasoning** (Lopez, Erschler and Esquirol 1992; Baptiste, Le
  Pape and Nuijten 2001, ch. 3), per quota ``r`` with limit ``Q``: within any
  interval ``[a, b)`` of periods, each step uses at least its *minimal
  intersection* ``W_s(a, b)``, the least of ``u_k * overlap`` over its options
  ``k`` and over its starts in the window (the overlap of a fixed-length
  interval with ``[a, b)`` is least at one end of the window). If the steps
  together need more than ``Q (b - a)``, no plan fits; and option ``k`` of step
  ``s`` cannot start at ``t`` when ``u_k * overlap(t)`` plus what the other
  steps need exceeds ``Q (b - a)`` for some interval. Starts are removed only
  from the ends of a window (the windows stay intervals).
- **detectable precedences** (Vilim 2004) between two steps that can never
  run at once (every option of one with every option of the other exceeds a
  quota): one must end before the other starts, so when ``a`` cannot end by
  ``b``'s latest start, ``b`` comes first (``a`` starts after ``b``'s earliest
  end, ``b`` ends by ``a``'s latest start); when neither can come first, no
  plan fits.

The questions of one problem share what was narrowed (:class:`Known`): a
narrowing stopped by the clock goes on from where it stopped when the question
is asked again, and one horizon's windows start the next shorter one's.

Every removed start is one no plan ending by ``H`` can use, so the model on
the narrowed windows has exactly the same plans: the reasoning is a proof step,
never a heuristic. Quotas are read in their exact rounded form
(:mod:`exo.compiler.quotarows`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exo.compiler.energy import Energy

if TYPE_CHECKING:
    from exo.compiler.splitting import Frontier

#: Passes of precedence + energy before giving up on a fixpoint (each pass is cheap).
MAX_PASSES = 50
#: Largest horizon (periods) the energetic rule looks at: a table has ``H (H + 1) / 2`` cells.
MAX_ENERGY_PERIODS = 120


@dataclass(frozen=True, slots=True)
class Windows:
    """Earliest start per step; latest start per option (below ``es``: the option is out)."""

    es: tuple[int, ...]
    ls: tuple[tuple[int, ...], ...]


def precedence_windows(
    periods: Sequence[Sequence[int]],
    preds: Sequence[Sequence[int]],
    succ: Sequence[Sequence[int]],
    horizon: int,
) -> Windows:
    """Windows from the shortest chains before and after each step (steps in topological order)."""
    n = len(periods)
    shortest = [min(ps) for ps in periods]
    head = [0] * n
    for j in range(n):
        head[j] = max((head[i] + shortest[i] for i in preds[j]), default=0)
    tail = [0] * n
    for i in reversed(range(n)):
        tail[i] = max((shortest[j] + tail[j] for j in succ[i]), default=0)
    return Windows(
        tuple(head),
        tuple(tuple(horizon - p - tail[s] for p in periods[s]) for s in range(n)),
    )


@dataclass(frozen=True, slots=True)
class Narrowed:
    """What :func:`narrowing` found: the windows (``None``: no plan) and whether they
    are the fixpoint (shaving ran until it changed nothing, not stopped by the clock)."""

    windows: Windows | None
    complete: bool


def narrowing(
    periods: Sequence[Sequence[int]],
    preds: Sequence[Sequence[int]],
    succ: Sequence[Sequence[int]],
    use: Sequence[Sequence[Sequence[int]]],
    limits: Sequence[int],
    horizon: int,
    *,
    stopped: Callable[[], bool] | None = None,
    start: Windows | None = None,
) -> Narrowed:
    """The windows of every plan that ends by ``horizon`` (``None``: no such plan), and
    whether they are the fixpoint.

    ``periods[s][k]``: option ``k`` of step ``s`` in periods; ``use[s][k][r]`` its
    (rounded) usage of quota ``r``, whose limit is ``limits[r]``. The rules run to
    their fixpoint, then each window end is *shaved* (:func:`_shave`) until
    ``stopped()`` says the time is up (what was narrowed by then holds). ``start``:
    windows known to hold every plan by ``horizon`` (e.g. an earlier, unfinished
    narrowing: :class:`Known`)."""
    rules = Rules(periods, preds, succ, use, limits, horizon)
    base = precedence_windows(periods, preds, succ, horizon)
    es, ls = list(base.es), [list(x) for x in base.ls]
    if start is not None:
        es = [max(a, b) for a, b in zip(es, start.es, strict=True)]
        ls = [
            [min(a, b) for a, b in zip(x, y, strict=True)]
            for x, y in zip(ls, start.ls, strict=True)
        ]
    got = rules.propagate(es, ls)
    if got is None:
        return Narrowed(None, True)
    es, ls = got
    if not rules.energy:
        return Narrowed(Windows(tuple(es), tuple(tuple(x) for x in ls)), True)
    latch = _Latch(stopped or (lambda: False))
    shaved = _shave(rules, es, ls, latch)
    if shaved is None:
        return Narrowed(None, True)
    es, ls = shaved
    return Narrowed(Windows(tuple(es), tuple(tuple(x) for x in ls)), not latch.fired)


class _Latch:
    """A stop signal that remembers having fired (a shaving pass cut short is not a fixpoint)."""

    def __init__(self, stopped: Callable[[], bool]) -> None:
        self.stopped = stopped
        self.fired = False

    def __call__(self) -> bool:
        self.fired = self.fired or self.stopped()
        return self.fired


class Known:
    """The narrowings of one problem's questions by horizon, kept between them.

    The descent asks "a plan by ``H``?" for ``H``, ``H - 1``, ..., and an
    unanswered question is asked again in each resume round and by the cost
    stage; narrowing each from scratch repeats the same shaving, and a round
    given less time narrowed less. What is known carries over soundly:

    - a finished narrowing at ``H`` is the answer at ``H``; "no plan by ``H``"
      answers every horizon below ``H`` too;
    - any plan ending by ``h < H``, shifted ``H - h`` periods later, ends by
      ``H``: so windows at ``H`` with every latest start ``H - h`` earlier (and the
      same earliest starts) hold every plan by ``h``, a start for its narrowing.
    """

    def __init__(self) -> None:
        self.by_horizon: dict[int, Narrowed] = {}
        #: Where the split search of each horizon stopped (:mod:`exo.compiler.splitting`).
        self.splits: dict[int, Frontier] = {}
        #: The plans (choice, starts) the descent's mode search started from and found
        #: nothing shorter, with the seconds it was given (``None``: no limit):
        #: :func:`exo.compiler.exact.shorter_first`.
        self.modes_tried: dict[tuple[tuple[int, ...], tuple[float, ...]], float | None] = {}
        #: The longest the model ran at each horizon without an answer (seconds of
        #: wall time): :func:`exo.compiler.feasibility.decide` does not run it again for less.
        self.model_s: dict[int, float] = {}

    def answer(self, horizon: int) -> Narrowed | None:
        """The finished narrowing at ``horizon``, or "no plan" from a longer horizon."""
        got = self.by_horizon.get(horizon)
        if got is not None and got.complete:
            return got
        if any(h >= horizon and n.windows is None for h, n in self.by_horizon.items()):
            return Narrowed(None, True)
        return None

    def start(self, horizon: int) -> Windows | None:
        """The narrowest windows known to hold every plan by ``horizon`` (``None``: none known)."""
        longer = [h for h, n in self.by_horizon.items() if h >= horizon and n.windows is not None]
        if not longer:
            return None
        h = min(longer)
        w = self.by_horizon[h].windows
        assert w is not None
        d = h - horizon
        return Windows(w.es, tuple(tuple(x - d for x in ls) for ls in w.ls))

    def put(self, horizon: int, got: Narrowed) -> None:
        self.by_horizon[horizon] = got


class Rules:
    """The precedence and energetic rules of one question (its steps, quotas and horizon)."""

    def __init__(
        self,
        periods: Sequence[Sequence[int]],
        preds: Sequence[Sequence[int]],
        succ: Sequence[Sequence[int]],
        use: Sequence[Sequence[Sequence[int]]],
        limits: Sequence[int],
        horizon: int,
    ) -> None:
        self.periods, self.preds, self.succ = periods, preds, succ
        self.use, self.limits, self.horizon = use, limits, horizon
        self.energy = horizon <= MAX_ENERGY_PERIODS and any(limits)
        self.energetic = Energy(periods, use, limits, horizon)
        self.apart = _apart(periods, use, limits)

    def propagate(
        self, es: list[int], ls: list[list[int]]
    ) -> tuple[list[int], list[list[int]]] | None:
        """Both rules in turn until nothing changes (``None``: a window closed)."""
        for _ in range(MAX_PASSES):
            if not _precedence(self.periods, self.preds, self.succ, es, ls):
                return None
            ordered = _disjunctive(self.periods, self.apart, es, ls)
            if ordered is None:
                return None
            if not self.energy:
                if ordered:
                    continue
                break
            changed = self.energetic.apply(es, ls)
            if changed is None:
                return None
            if not changed and not ordered:
                break
        return es, ls

    def probe(
        self, es: Sequence[int], ls: Sequence[Sequence[int]], s: int, k: int, t: int
    ) -> tuple[list[int], list[list[int]]] | None:
        """The rules' fixpoint with step ``s`` started at ``t`` in ``k`` (``None``: a window closed)."""
        trial_ls = [list(x) for x in ls]
        trial_ls[s] = [t if j == k else t - 1 for j in range(len(ls[s]))]
        trial_es = list(es)
        trial_es[s] = t
        return self.propagate(trial_es, trial_ls)


#: A probe's key (step, option, start) and the windows it led to (the rules' fixpoint).
Box = tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]


class Supports:
    """Probes that left every window open, with the fixpoint each led to: a probe
    asked again is answered without the rules while its fixpoint still lies in
    the windows.

    The rules only remove starts, and each removal is monotone (narrower windows
    never let a start back in), so they reach the largest fixpoint within the
    windows they start from. A probe's fixpoint ``F`` found in windows ``W``
    holds in any ``W' within W`` that still contains ``F``: the fixpoint in
    ``W'`` lies within ``F`` (``W'`` is narrower) and ``F`` is a fixpoint in
    ``W'``, so the probe leaves every window open again, with the same
    fixpoint. Shaving asks the same probes pass after pass, and the split
    search's halves ask their node's (:mod:`exo.compiler.splitting`): most are
    answered so (docs/benchmarks.md, issue #18, seventh round). A probe that
    closed a window is not kept: shaving removes that start.
    """

    def __init__(self, inherited: dict[tuple[int, int, int], Box] | None = None) -> None:
        self.inherited = inherited or {}
        #: The probes of this node (or shaving run) that fit, kept for its halves.
        self.found: dict[tuple[int, int, int], Box] = {}

    def fits(
        self, rules: Rules, es: Sequence[int], ls: Sequence[Sequence[int]], s: int, k: int, t: int
    ) -> bool:
        key = (s, k, t)
        box = self.found.get(key) or self.inherited.get(key)
        if box is not None and _inside(box, es, ls):
            self.found[key] = box
            return True
        got = rules.probe(es, ls, s, k, t)
        if got is None:
            return False
        self.found[key] = (tuple(got[0]), tuple(tuple(x) for x in got[1]))
        return True


def _inside(box: Box, es: Sequence[int], ls: Sequence[Sequence[int]]) -> bool:
    """Whether every start of ``box`` (per step and option) lies in the windows."""
    box_es, box_ls = box
    for j, first in enumerate(box_es):
        if first < es[j]:
            return False
        for last, bound in zip(box_ls[j], ls[j], strict=True):
            if last >= first and last > bound:
                return False
    return True


def _shave(
    rules: Rules, es: list[int], ls: list[list[int]], stopped: Callable[[], bool]
) -> tuple[list[int], list[list[int]]] | None:
    """Shaving (Martin and Shmoys 1996; Caseau and Laburthe): drop a window's end
    when fixing the step there (in that option) lets the rules close a window.

    Each probe is a proof that no plan starts the step there, so the narrowed
    windows hold every plan; the rules alone see only what every start of a
    window shares, a probe sees what one start forces on the others.
    """
    changed = True
    supports = Supports()
    while changed and not stopped():
        changed = False
        for s in range(len(es)):
            moved = _shave_step(rules, es, ls, s, stopped, supports)
            if moved is None:
                return None
            changed = changed or moved
        got = rules.propagate(es, ls)
        if got is None:
            return None
        es, ls = got
    return es, ls


def shaved_once(
    rules: Rules,
    es: list[int],
    ls: list[list[int]],
    stopped: Callable[[], bool],
    supports: Supports | None = None,
) -> tuple[list[int], list[list[int]]] | None:
    """One pass of shaving over every step, then the rules (``None``: a window closed).

    What :mod:`exo.compiler.splitting` runs at each node of its search: one pass
    refuted ``j2029_9`` at 38 with as few nodes as shaving to the fixpoint and
    less CPU per node (docs/benchmarks.md).
    """
    supports = supports or Supports()
    for s in range(len(es)):
        if _shave_step(rules, es, ls, s, stopped, supports) is None:
            return None
    return rules.propagate(es, ls)


def _shave_step(
    rules: Rules,
    es: list[int],
    ls: list[list[int]],
    s: int,
    stopped: Callable[[], bool],
    supports: Supports,
) -> bool | None:
    """Shave step ``s``'s windows in place (``None``: none of its starts fits; else: changed)."""
    firsts: list[int] = []
    changed = False
    for k in _live(es[s], ls[s]):
        hi = ls[s][k]
        while hi >= es[s] and not (stopped() or supports.fits(rules, es, ls, s, k, hi)):
            hi -= 1
        lo = es[s]
        while lo <= hi and not (stopped() or supports.fits(rules, es, ls, s, k, lo)):
            lo += 1
        changed = changed or hi != ls[s][k]
        ls[s][k] = hi
        if lo <= hi:
            firsts.append(lo)
    if not firsts:
        return None
    changed = changed or min(firsts) != es[s]
    es[s] = min(firsts)
    return changed


def _live(es: int, ls: Sequence[int]) -> list[int]:
    return [k for k, last in enumerate(ls) if last >= es]


def _apart(
    periods: Sequence[Sequence[int]],
    use: Sequence[Sequence[Sequence[int]]],
    limits: Sequence[int],
) -> list[tuple[int, int]]:
    """Pairs of steps that can never run at the same time: every option of one and
    every option of the other together exceed some quota (and none takes no time)."""
    n = len(periods)

    def clash(a: int, b: int) -> bool:
        return all(
            any(x + y > q for x, y, q in zip(ua, ub, limits, strict=True))
            for ua in use[a]
            for ub in use[b]
        )

    steps = [s for s in range(n) if periods[s] and min(periods[s]) > 0 and use[s]]
    return [(a, b) for i, a in enumerate(steps) for b in steps[i + 1 :] if clash(a, b)]


def _disjunctive(
    periods: Sequence[Sequence[int]],
    apart: Sequence[tuple[int, int]],
    es: list[int],
    ls: list[list[int]],
) -> bool | None:
    """Detectable precedences (Vilim 2004) of steps that never run together: when ``a``
    cannot end before ``b``'s latest start, ``b`` runs first (``None``: neither can).

    Each step's latest live start and shortest live option are found once and again
    only after a pair moved its window."""
    changed = False
    spans: dict[int, tuple[int, int] | None] = {}
    for a, b in apart:
        got_a = spans[a] if a in spans else spans.setdefault(a, _span(periods[a], es[a], ls[a]))
        got_b = spans[b] if b in spans else spans.setdefault(b, _span(periods[b], es[b], ls[b]))
        if got_a is None or got_b is None:
            return None
        (last_a, short_a), (last_b, short_b) = got_a, got_b
        a_first = es[a] + short_a <= last_b
        b_first = es[b] + short_b <= last_a
        if not (a_first or b_first):
            return None
        if not a_first:
            moved = _after(periods, es, ls, b, a, short_b, last_a)
        elif not b_first:
            moved = _after(periods, es, ls, a, b, short_a, last_b)
        else:
            continue
        if moved:
            changed = True
            del spans[a], spans[b]
    return changed


def _span(periods: Sequence[int], es: int, ls: Sequence[int]) -> tuple[int, int] | None:
    """A window's latest live start and shortest live option (``None``: none is live)."""
    live = [k for k, last in enumerate(ls) if last >= es]
    if not live:
        return None
    return max(ls[k] for k in live), min(periods[k] for k in live)


def _after(
    periods: Sequence[Sequence[int]],
    es: list[int],
    ls: list[list[int]],
    first: int,
    then: int,
    shortest_first: int,
    last_then: int,
) -> bool:
    """``first`` ends before ``then`` starts: narrow both windows (whether either moved)."""
    changed = False
    start = es[first] + shortest_first
    if start > es[then]:
        es[then] = start
        changed = True
    for k in range(len(ls[first])):
        latest = last_then - periods[first][k]
        if latest < ls[first][k]:
            ls[first][k] = latest
            changed = True
    return changed


def _precedence(
    periods: Sequence[Sequence[int]],
    preds: Sequence[Sequence[int]],
    succ: Sequence[Sequence[int]],
    es: list[int],
    ls: list[list[int]],
) -> bool:
    """Push earliest starts forward and latest starts back along the edges (``False``: empty).

    Each step's shortest live option (forward) and latest live start (backward) is
    found once, at its turn (steps in topological order; a step read before its
    turn is looked at as it is then)."""
    n = len(periods)
    shortest: list[int | None] = [None] * n
    for j in range(n):
        for i in preds[j]:
            got = shortest[i]
            if got is None:
                got = _shortest(periods[i], es[i], ls[i])
                if got is None:
                    return False
            if es[i] + got > es[j]:
                es[j] = es[i] + got
        shortest[j] = _shortest(periods[j], es[j], ls[j])
    latest: list[int | None] = [None] * n
    for i in reversed(range(n)):
        for j in succ[i]:
            last = latest[j]
            if last is None:
                last = _latest(es[j], ls[j])
                if last is None:
                    return False
            row = ls[i]
            for k, p in enumerate(periods[i]):
                if last - p < row[k]:
                    row[k] = last - p
        latest[i] = _latest(es[i], ls[i])
    return all(x is not None for x in latest)


def _shortest(periods: Sequence[int], es: int, ls: Sequence[int]) -> int | None:
    """The shortest live option's periods (``None``: none is live)."""
    got = [p for p, last in zip(periods, ls, strict=True) if last >= es]
    return min(got) if got else None


def _latest(es: int, ls: Sequence[int]) -> int | None:
    """The latest live start (``None``: no option is live)."""
    last = max(ls)
    return last if last >= es else None
