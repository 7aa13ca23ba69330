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

#: Table cells (``int64``) kept per rule set before the store is emptied: ~64 MB
#: (a window's entry is about eight ``H x H`` tables: its ends, least and most).
KEPT_CELLS = 8_000_000


class Overlaps:
    """Periods of ``[start, start + p)`` inside each interval ``[a, b)`` (row ``a``, column
    ``b - 1``), kept once computed: a shaving run asks for the same few hundred often."""

    def __init__(self, horizon: int) -> None:
        self.a = np.arange(horizon, dtype=np.int64)[:, None]
        self.b = np.arange(1, horizon + 1, dtype=np.int64)[None, :]
        self.width: Array = np.maximum(self.b - self.a, 0)
        self.known: dict[tuple[int, int], Array] = {}

    def __call__(self, start: int, p: int) -> Array:
        got = self.known.get((start, p))
        if got is None:
            got = np.maximum(np.minimum(start + p, self.b) - np.maximum(start, self.a), 0)
            self.known[(start, p)] = got
        return got


class Energy:
    """The energetic rule of one question: its steps' options, quotas and horizon."""

    def __init__(
        self,
        periods: Sequence[Sequence[int]],
        use: Sequence[Sequence[Sequence[int]]],
        limits: Sequence[int],
        horizon: int,
    ) -> None:
        self.periods = periods
        self.ov = Overlaps(horizon)
        # per quota: its limit, and the steps that use it with their per-option use
        self.quotas: list[tuple[int, Array, list[tuple[int, list[int]]]]] = []
        for r, limit in enumerate(limits):
            users = [(s, [u[r] for u in use[s]]) for s in range(len(periods))]
            users = [(s, us) for s, us in users if any(x > 0 for x in us)]
            if users:
                self.quotas.append((r, limit * self.ov.width, users))
        #: (quota, step, earliest start, latest starts) -> (least use, most beyond it, ends)
        self.kept: dict[tuple[int, int, int, tuple[int, ...]], tuple[Array, Array, Array]] = {}
        #: How many windows' tables are kept before the store is emptied.
        self.room = max(64, KEPT_CELLS // (8 * horizon * horizon))

    def apply(self, es: list[int], ls: list[list[int]]) -> bool | None:
        """One pass of the rule over every quota (``None``: no plan; else: changed)."""
        changed = False
        for r, capacity, users in self.quotas:
            need = {s: self._costs(r, s, us, es[s], ls[s]) for s, us in users}
            room = capacity - sum(got[0] for got in need.values())
            if (room < 0).any():
                return None
            for s, us in users:
                least, most, ends = need[s]
                if (most <= room).all():
                    continue  # every end of every window of s fits: nothing to cut
                spare = room + least
                fits: np.ndarray[Any, Any] = np.all(ends <= spare, axis=(1, 2))
                fit: list[bool] = fits.tolist()
                if not _shrink(self.periods[s], us, es, ls, s, spare, self.ov, fit):
                    continue
                changed = True
                if not _live(es[s], ls[s]):
                    return None
                # the other steps' room counts this step's new, larger least need
                fresh = self._costs(r, s, us, es[s], ls[s])
                room = room + least - fresh[0]
                need[s] = fresh
                if (room < 0).any():
                    return None
        return changed

    def _costs(
        self, r: int, s: int, use: Sequence[int], es: int, ls: Sequence[int]
    ) -> tuple[Array, Array, Array]:
        """The least step ``s`` uses of each interval over its window's ends and live
        options, the most any one of those ends uses beyond that least, and what each
        end uses (live options in order, earliest then latest start)."""
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
            got = (least, ends.max(axis=0) - least, ends)
            self.kept[key] = got
        return got


def _live(es: int, ls: Sequence[int]) -> list[int]:
    return [k for k, last in enumerate(ls) if last >= es]


def _fits(p: int, u: int, t: int, spare: Array, ov: Overlaps) -> bool:
    return u == 0 or bool((u * ov(t, p) <= spare).all())


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
