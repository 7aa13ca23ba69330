"""Spot instances attempt by attempt, vectorised over every run of a Monte Carlo.

Each item is one instance of one run. It starts at its step's start time and
works through ``work_h`` hours after a startup ``startup_h`` paid by every
attempt. Spot capacity comes either from the model (always there, Poisson
preemptions of rate λ per running hour, DESIGN §3) or from a trace replayed at
an offset (:class:`TraceClock`: an attempt can start only in a spell of
capacity and is preempted when the spell ends). A preemption keeps the work up
to the last checkpoint (every ``checkpoint_h`` hours of work).

With the fallback policy, before every spot attempt (and while waiting for
capacity) the item checks :func:`exo.compiler.fallback.spot_attempt_fits`; when
it no longer holds, the rest of the work runs on on-demand, for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from exo.compiler.fallback import margin_h
from exo.compiler.spot_traces import Spells

Array = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: Attempts simulated per item at most (a guard, not a model limit).
MAX_ATTEMPTS = 1_000_000


@dataclass(frozen=True, slots=True)
class TraceClock:
    """Spells of several (trace, level) pairs, searchable together.

    Spell set ``k`` is laid out at ``base[k] + [0, 3 * period[k])`` of one
    sorted axis; an item on set ``k`` at trace time ``x`` looks up
    ``base[k] + period[k] + (x mod period[k])``.
    """

    starts: Array
    ends: Array
    base: Array
    period: Array
    always_up: np.ndarray[Any, np.dtype[np.bool_]]

    @staticmethod
    def of(sets: list[Spells]) -> TraceClock:
        starts: list[Array] = []
        ends: list[Array] = []
        base = np.zeros(len(sets))
        at = 0.0
        for k, s in enumerate(sets):
            base[k] = at
            starts.append(s.starts + at)
            ends.append(s.ends + at)
            at += 3.0 * s.period_h + 1.0
        return TraceClock(
            np.concatenate(starts),
            np.concatenate(ends),
            base,
            np.array([s.period_h for s in sets]),
            np.array([s.always_up for s in sets]),
        )

    def next_up(self, sets: IntArray, x: Array) -> tuple[Array, Array]:
        """Hours from trace time ``x`` until the spell containing or following it starts, ends.

        The wait is exactly 0 when ``x`` is in a spell (relative figures, no cancellation).
        """
        period = self.period[sets]
        local = np.mod(x, period)
        key = self.base[sets] + period + local
        i = np.searchsorted(self.ends, key, side="right")
        wait = np.maximum(self.starts[i] - key, 0.0)
        until = np.where(self.always_up[sets], np.inf, self.ends[i] - key)
        return wait, until


@dataclass(frozen=True, slots=True)
class Attempts:
    """Per item: when it finished (inf: not within the horizon), hours on spot and on demand."""

    finish: Array
    spot_h: Array
    ondemand_h: Array
    #: The item moved to on-demand.
    fell_back: np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True, slots=True)
class Instance:
    """What every item of one step shares (hours)."""

    startup_h: float
    work_h: float
    #: Checkpoint interval; ``>= work_h``: nothing is saved.
    checkpoint_h: float
    #: Poisson preemptions per running hour (model mode; 0 with a trace).
    rate: float = 0.0


def run_attempts(
    rng: np.random.Generator,
    inst: Instance,
    start: Array,
    *,
    due_h: float | None = None,
    clock: TraceClock | None = None,
    sets: IntArray | None = None,
    offset: Array | None = None,
    horizon_h: float = np.inf,
) -> Attempts:
    """Simulate every item from ``start`` until it ends (or passes ``horizon_h``).

    ``due_h`` turns the fallback on (``None``: spot until done). With ``clock``,
    item ``i`` replays spell set ``sets[i]`` at trace time ``t + offset[i]``.
    """
    n = start.size
    t = start.astype(np.float64).copy()
    rem = np.full(n, float(inst.work_h), dtype=np.float64)
    out = Attempts(np.full(n, np.inf), np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool))
    finish, spot = out.finish, out.spot_h
    r, c = inst.startup_h, inst.checkpoint_h
    saves = 0.0 < c < inst.work_h
    active = np.flatnonzero(t <= horizon_h)
    for _ in range(MAX_ATTEMPTS):
        if not active.size:
            break
        ta, ra = t[active], rem[active]
        s, end = _spot_window(clock, sets, offset, active, ta)
        if due_h is not None:  # the fallback: may a spot attempt still start at s?
            stay = _fall_back(out, due_h, inst, active, ta, ra, s)
            active, ta, ra, s, end = active[stay], ta[stay], ra[stay], s[stay], end[stay]
        late = s > horizon_h
        active, ra, s, end = active[~late], ra[~late], s[~late], end[~late]
        gap = end - s
        if inst.rate > 0.0:
            gap = np.minimum(gap, rng.exponential(1.0 / inst.rate, active.size))
        need = r + ra
        done = gap >= need
        ids = active[done]
        finish[ids] = s[done] + need[done]
        spot[ids] += need[done]
        lost = ~done
        ids, g = active[lost], gap[lost]
        spot[ids] += g
        if saves:
            rem[ids] -= np.floor(np.maximum(g - r, 0.0) / c) * c
        t[ids] = s[lost] + g
        active = ids
    else:
        raise ValueError("too many preemptions to simulate (rate x duration too large)")
    return out


def _spot_window(
    clock: TraceClock | None,
    sets: IntArray | None,
    offset: Array | None,
    active: IntArray,
    ta: Array,
) -> tuple[Array, Array]:
    """When each active item's next spot attempt can start, and when its capacity ends."""
    if clock is None:
        return ta, np.full(active.size, np.inf)
    assert sets is not None and offset is not None
    o = offset[active]
    wait, until = clock.next_up(sets[active], ta + o)
    return ta + wait, ta + until


def _fall_back(
    out: Attempts, due_h: float, inst: Instance, active: IntArray, ta: Array, ra: Array, s: Array
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Move to on-demand, in ``out``, the items whose spot attempt at ``s`` no longer fits.

    Returns the mask of the items that stay on spot.
    """
    r = inst.startup_h
    switch = due_h - ra - margin_h(r, inst.checkpoint_h)
    go = s > switch
    ids = active[go]
    at = np.maximum(ta[go], switch[go])
    out.finish[ids] = at + r + ra[go]
    out.ondemand_h[ids] = r + ra[go]
    out.fell_back[ids] = True
    return ~go
