"""The energetic rule of :mod:`exo.compiler.windows`, with what it computes per window kept.

Per quota ``r`` with limit ``Q`` and any interval ``[a, b)`` of periods, each
step uses at least its *minimal intersection*: the least of ``u_k * overlap``
over its live options ``k`` and its window's ends (Lopez, Erschler and Esquirol
1992; Baptiste, Le Pape and Nuijten 2001, ch. 3). A start of step ``s`` fits
when what it uses of every interval, on top of the others' least, stays within
``Q (b - a)``; the rule removes starts from the ends of a window that do not.

The rule runs inside every probe of shaving, and there most steps' windows are
the same from one pass to the next: what a window costs (its least use and the
most any end of it uses beyond that, per interval ``[a, b)``, ``a < b``: a flat row
of ``H (H + 1) / 2``, ``int32`` where the values fit) is kept per step and window
(:class:`Energy`); the rows of the windows last seen, every quota's together, are
kept stacked with the room they leave, and a pass brings up to date only the steps
whose windows changed. A step whose every window end fits (checked against its
most, one comparison over the stack) is passed over without looking at each end.
The fixpoint is the same as checking every end each time (docs/benchmarks.md,
issue #18, seventh and eighth rounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.int64]]

#: Bytes of tables kept per rule set: ~64 MB in two generations, the older dropped when
#: the newer is full (a window's entry is about eight tables of ``H (H + 1) / 2``
#: intervals per quota: its ends, least and most).
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

    def of(self, start: Array, p: Array) -> Array:
        """:meth:`__call__` of several starts and lengths at once (one row each)."""
        got: Array = np.maximum(np.minimum(start + p, self.b) - np.maximum(start, self.a), 0)
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

    What the last pass saw is kept (a cache: the answer depends only on the windows
    given): each step's window and its tables for every quota, stacked one row per
    step, and the room they leave under each quota. A pass brings up to date only
    the steps whose windows changed since (a probe or a precedence pass moves a
    few), all quotas at once, and finds the steps with an end that may not fit a
    quota's room in one comparison over the stack.
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
        #: the quotas some step uses, and the steps that use one of them
        self.quotas = [r for r in range(len(limits)) if any(u[r] > 0 for o in use for u in o)]
        self.steps = [
            s for s, opts in enumerate(use) if any(u[r] > 0 for u in opts for r in self.quotas)
        ]
        #: per quota, per step (of :attr:`steps`), its use in each option
        self.use = [[[u[r] for u in use[s]] for s in self.steps] for r in self.quotas]
        #: per step (of :attr:`steps`), per quota, its use in each option
        self.use_of = [
            [self.use[q][i] for q in range(len(self.quotas))] for i in range(len(self.steps))
        ]
        n, width = len(self.steps), self.ov.width
        #: per step: its least use of each interval and the most beyond it, per quota
        self.lm: Array = np.zeros((n, len(self.quotas), 2, width.size), dtype=width.dtype)
        #: per step: what each end of its window uses, per quota
        self.ends: list[Array] = [width[None, None]] * n
        self.room: Array = np.array([limits[r] * width for r in self.quotas], dtype=width.dtype)
        self.room.shape = (len(self.quotas), width.size)
        #: each step's window when its rows were filled (``None``: not yet)
        self.seen: list[tuple[int, list[int]] | None] = [None] * n
        #: (step, earliest start, latest starts) -> (its rows of :attr:`lm`, its ends)
        self.kept: dict[tuple[int, int, tuple[int, ...]], tuple[Array, Array]] = {}
        #: the generation before :attr:`kept`: what it holds moves back when asked for
        self.older: dict[tuple[int, int, tuple[int, ...]], tuple[Array, Array]] = {}
        #: How many windows' tables a generation holds before the older one is dropped.
        self.room_kept = max(32, KEPT_BYTES // (16 * len(self.quotas) * self.ov.a.nbytes + 1))

    def apply(self, es: list[int], ls: list[list[int]]) -> bool | None:
        """One pass of the rule over every quota (``None``: no plan; else: changed)."""
        if not self.quotas:
            return False
        if not self._sync(es, ls):
            return None
        changed = False
        for q in range(len(self.quotas)):
            short = self._short(q, 0)
            j = 0
            while j < len(short):
                i = short[j]
                s, us = self.steps[i], self.use[q][i]
                spare = self.room[q] + self.lm[i, q, 0]
                fits: np.ndarray[Any, Any] = np.all(self.ends[i][q] <= spare, axis=1)
                fit: list[bool] = fits.tolist()
                if not _shrink(self.periods[s], us, es, ls, s, spare, self.ov, fit):
                    j += 1
                    continue
                changed = True
                if not _live(es[s], ls[s]):
                    return None
                # the other steps' room counts this step's new, larger least need
                self._update(i, es[s], ls[s])
                if (self.room[q] < 0).any():
                    return None
                short, j = self._short(q, i + 1), 0
        return changed

    def _short(self, q: int, i: int) -> list[int]:
        """The steps from ``i`` on with a window end that may not fit quota ``q``'s room."""
        over = (self.lm[i:, q, 1] > self.room[q]).any(axis=1)
        got: list[int] = (np.flatnonzero(over) + i).tolist()
        return got

    def _sync(self, es: list[int], ls: list[list[int]]) -> bool:
        """Bring the rows up to the windows (``False``: a window closed, or the steps'
        least use exceeds a quota somewhere)."""
        for i, s in enumerate(self.steps):
            seen = self.seen[i]
            if seen is None or seen[0] != es[s] or seen[1] != ls[s]:
                if not _live(es[s], ls[s]):
                    return False
                self._update(i, es[s], ls[s])
        return not (self.room < 0).any()

    def _update(self, i: int, es: int, ls: list[int]) -> None:
        """Row ``i`` for the window ``es``, ``ls`` of its step, and the rooms."""
        lm, ends = self._costs(i, es, ls)
        self.room += self.lm[i, :, 0]
        self.room -= lm[:, 0]
        self.lm[i] = lm
        self.ends[i] = ends
        self.seen[i] = (es, list(ls))

    def _costs(self, i: int, es: int, ls: Sequence[int]) -> tuple[Array, Array]:
        """Per quota, the least step ``i`` uses of each interval over its window's
        ends and live options with the most any one of those ends uses beyond that
        least (two rows), and what each end uses (live options in order, earliest
        then latest start)."""
        s = self.steps[i]
        key = (s, es, tuple(ls))
        got = self.kept.get(key)
        if got is None:
            got = self.older.pop(key, None)
            if got is None:
                got = self._tables(i, es, ls)
            if len(self.kept) >= self.room_kept:
                self.older, self.kept = self.kept, {}
            self.kept[key] = got
        return got

    def _tables(self, i: int, es: int, ls: Sequence[int]) -> tuple[Array, Array]:
        """What :meth:`_costs` keeps, computed: every end of every live option at once."""
        p = self.periods[self.steps[i]]
        live = _live(es, ls)
        dtype = self.ov.a.dtype
        starts = np.array([t for k in live for t in (es, ls[k])], dtype=dtype)
        lasting = np.array([p[k] for k in live for _ in (0, 1)], dtype=dtype)
        uses = np.array([[us[k] for k in live for _ in (0, 1)] for us in self.use_of[i]], dtype)
        ov = self.ov.of(starts[:, None], lasting[:, None])
        ends = uses[:, :, None] * ov[None]
        lm = np.empty((len(self.quotas), 2, ov.shape[1]), dtype=dtype)
        np.min(ends, axis=1, out=lm[:, 0])
        np.max(ends, axis=1, out=lm[:, 1])
        lm[:, 1] -= lm[:, 0]
        return lm, ends


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
