"""The energetic rule of :mod:`exo.compiler.windows`, with what it computes per window kept.

Per quota ``r`` with limit ``Q`` and any interval ``[a, b)`` of periods, each
step uses at least its *minimal intersection*: the least of ``u_k * overlap``
over its live options ``k`` and its window's ends (Lopez, Erschler and Esquirol
1992; Baptiste, Le Pape and Nuijten 2001, ch. 3). A start of step ``s`` fits
when what it uses of every interval, on top of the others' least, stays within
``Q (b - a)``; the rule removes starts from the ends of a window that do not.

The rule runs inside every probe of shaving, and there most steps' windows are
the same from one pass to the next: what a window costs (its least use and the
most any end of it uses beyond that, both ``H x H`` tables) is kept per step and
window (:class:`Energy`), and a step whose every window end fits (checked
against that most, one comparison) is passed over without looking at each end.
The fixpoint is the same as checking every end each time (docs/benchmarks.md,
issue #18, seventh round).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.int64]]

#: Bytes of tables kept per rule set before the store is emptied: ~64 MB (a window's
#: entry is about eight tables of ``H (H + 1) / 2`` intervals: its ends, least and most).
KEPT_BYTES = 64_000_000


class Overlaps:
    """Periods of ``[start, start + p)`` inside each interval ``[a, b)``, ``a < b <= H``,
    one entry per interval (the ``H (H + 1) / 2`` of them in a flat row), kept once
    computed: a shaving run asks for the same few hundred often."""

    def __init__(self, horizon: int, dtype: type[np.signedinteger[Any]] = np.int64) -> None:
        a, b = np.triu_indices(horizon + 1, 1)
        self.a: Array = a.astype(dtype)
        self.b: Array = b.astype(dtype)
        self.width: Array = self.b - self.a
        self.known: dict[tuple[int, int], Array] = {}
        self.products: dict[tuple[int, int, int], Array] = {}

    def __call__(self, start: int, p: int) -> Array:
        got = self.known.get((start, p))
        if got is None:
            got = np.maximum(np.minimum(start + p, self.b) - np.maximum(start, self.a), 0)
            self.known[(start, p)] = got
        return got

    def used(self, start: int, p: int, u: int) -> Array:
        """``u`` times the overlaps of ``[start, start + p)`` (kept too)."""
        got = self.products.get((start, p, u))
        if got is None:
            got = u * self(start, p)
            self.products[(start, p, u)] = got
        return got


class Energy:
    """The energetic rule of one question: its steps' options, quotas and horizon.

    What the last pass saw is kept per quota (:class:`_Quota`): each step's window,
    its tables stacked, and the room they leave. A pass brings up to date only the
    steps whose windows changed since (a probe or a precedence pass moves a few),
    and finds the steps with an end that may not fit in one comparison over the
    stack. The answer depends only on the windows given: the kept state is a cache.
    """

    def __init__(
        self,
        periods: Sequence[Sequence[int]],
        use: Sequence[Sequence[Sequence[int]]],
        limits: Sequence[int],
        horizon: int,
    ) -> None:
        self.periods = periods
        self.ov = Overlaps(horizon, _dtype(use, limits, horizon))
        # per quota: its limit, and the steps that use it with their per-option use
        self.quotas: list[_Quota] = []
        for r, limit in enumerate(limits):
            users = [(s, [u[r] for u in use[s]]) for s in range(len(periods))]
            users = [(s, us) for s, us in users if any(x > 0 for x in us)]
            if users:
                self.quotas.append(_Quota(r, limit * self.ov.width, users))
        #: (quota, step, earliest start, latest starts) -> ((least use, most beyond it), ends)
        self.kept: dict[tuple[int, int, int, tuple[int, ...]], tuple[Array, Array]] = {}
        #: How many windows' tables are kept before the store is emptied.
        self.room = max(64, KEPT_BYTES // (8 * self.ov.a.nbytes))

    def apply(self, es: list[int], ls: list[list[int]]) -> bool | None:
        """One pass of the rule over every quota (``None``: no plan; else: changed)."""
        changed = False
        for q in self.quotas:
            if not self._sync(q, es, ls):
                return None
            short = q.short(0)
            j = 0
            while j < len(short):
                i = short[j]
                s, us = q.users[i]
                spare = q.room + q.lm[i, 0]
                fits: np.ndarray[Any, Any] = np.all(q.ends[i] <= spare, axis=1)
                fit: list[bool] = fits.tolist()
                if not _shrink(self.periods[s], us, es, ls, s, spare, self.ov, fit):
                    j += 1
                    continue
                changed = True
                if not _live(es[s], ls[s]):
                    return None
                # the other steps' room counts this step's new, larger least need
                self._update(q, i, es[s], ls[s])
                if (q.room < 0).any():
                    return None
                short, j = q.short(i + 1), 0
        return changed

    def _sync(self, q: _Quota, es: list[int], ls: list[list[int]]) -> bool:
        """Bring ``q``'s rows up to the windows (``False``: a window closed, or the
        steps' least use exceeds the quota somewhere)."""
        for i, (s, _) in enumerate(q.users):
            seen = q.seen[i]
            if seen is None or seen[0] != es[s] or seen[1] != ls[s]:
                if not _live(es[s], ls[s]):
                    return False
                self._update(q, i, es[s], ls[s])
        return not (q.room < 0).any()

    def _update(self, q: _Quota, i: int, es: int, ls: list[int]) -> None:
        """Row ``i`` of ``q`` for the window ``es``, ``ls`` of its step, and the room."""
        s, us = q.users[i]
        lm, ends = self._costs(q.r, s, us, es, ls)
        q.room += q.lm[i, 0]
        q.room -= lm[0]
        q.lm[i] = lm
        q.ends[i] = ends
        q.seen[i] = (es, list(ls))

    def _costs(
        self, r: int, s: int, use: Sequence[int], es: int, ls: Sequence[int]
    ) -> tuple[Array, Array]:
        """The least step ``s`` uses of each interval over its window's ends and live
        options with the most any one of those ends uses beyond that least (two rows),
        and what each end uses (live options in order, earliest then latest start)."""
        key = (r, s, es, tuple(ls))
        got = self.kept.get(key)
        if got is None:
            if len(self.kept) >= self.room:
                self.kept.clear()
            ends = np.stack(
                [
                    use[k] * self.ov(t, self.periods[s][k])
                    for k in _live(es, ls)
                    for t in (es, ls[k])
                ]
            )
            least = ends.min(axis=0)
            got = (np.stack([least, ends.max(axis=0) - least]), ends)
            self.kept[key] = got
        return got


class _Quota:
    """One quota's users, with each one's window when last seen, the tables of those
    windows stacked (one row per user) and the room they leave under the limit."""

    def __init__(self, r: int, capacity: Array, users: list[tuple[int, list[int]]]) -> None:
        self.r, self.users = r, users
        #: per user: its least use of each interval, and the most beyond it (two rows)
        self.lm: Array = np.zeros((len(users), 2, *capacity.shape), dtype=capacity.dtype)
        self.ends: list[Array] = [capacity[None]] * len(users)
        self.room: Array = capacity.copy()
        #: each user's window when its rows were filled (``None``: not yet)
        self.seen: list[tuple[int, list[int]] | None] = [None] * len(users)

    def short(self, i: int) -> list[int]:
        """The users from ``i`` on with a window end that may not fit the room."""
        over = (self.lm[i:, 1] > self.room).any(axis=1)
        got: list[int] = (np.flatnonzero(over) + i).tolist()
        return got


def _dtype(
    use: Sequence[Sequence[Sequence[int]]], limits: Sequence[int], horizon: int
) -> type[np.signedinteger[Any]]:
    """``int32`` where no table can leave its range (half the memory to go through),
    else ``int64``: a room is at least the limit's periods less every step's most use."""
    most = max((limits), default=0) + sum(
        max((max(u, default=0) for u in opts), default=0) for opts in use
    )
    return np.int32 if (most + 1) * (horizon + 1) < 2**31 else np.int64


def _live(es: int, ls: Sequence[int]) -> list[int]:
    return [k for k, last in enumerate(ls) if last >= es]


def _fits(p: int, u: int, t: int, spare: Array, ov: Overlaps) -> bool:
    return u == 0 or bool((ov.used(t, p, u) <= spare).all())


def _shrink(
    periods: Sequence[int],
    use: Sequence[int],
    es: list[int],
    ls: list[list[int]],
    s: int,
    spare: Array,
    ov: Overlaps,
    fit: Sequence[bool],
) -> bool:
    """Cut the starts at the ends of step ``s``'s windows that do not fit ``spare``.

    ``fit``: whether each end fits (live options in order, earliest then latest start)."""
    changed = False
    first: int | None = None
    for i, k in enumerate(_live(es[s], ls[s])):
        t = ls[s][k]
        if not fit[2 * i + 1]:
            t -= 1
            while t >= es[s] and not _fits(periods[k], use[k], t, spare, ov):
                t -= 1
        if t != ls[s][k]:
            ls[s][k] = t
            changed = True
        lo = es[s]
        if lo <= t and not fit[2 * i]:
            lo += 1
            while lo <= t and not _fits(periods[k], use[k], lo, spare, ov):
                lo += 1
        if lo <= t:
            first = lo if first is None else min(first, lo)
    new_es = es[s] if first is None else first
    if first is None:
        ls[s] = [es[s] - 1] * len(ls[s])
        return True
    if new_es != es[s]:
        es[s] = new_es
        changed = True
    return changed
