"""Schedules: start times for chosen options under precedence and concurrent quotas.

A step with duration ``P`` started at ``s`` runs in the half-open interval
``[s, s + P)``; a successor may start at ``s + P``. A quota is a concurrent
limit: at every instant, the usage of the running steps is at most the limit.

:func:`serial_sgs` is the serial schedule generation scheme: steps are taken in
a precedence-feasible priority order and each starts at the earliest time at
which its predecessors are done and the quota has room for its whole interval.
Without quotas it is the ASAP (critical path) schedule. Given the order of the
start times of *any* feasible schedule it returns a schedule in which no step
starts later (each step fits where it was, because every step placed before it
ends no later than it did), which is how exact solver schedules are cleaned up.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exo.compiler.toposort import kahn_order

#: Two times closer than this (hours) are equal when checking a schedule (3.6 µs).
TIME_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Jobs:
    """Scheduling input, indexed by step position (a topological order)."""

    durations: tuple[float, ...]
    #: Predecessor positions of each step.
    preds: tuple[tuple[int, ...], ...]
    #: Usage of each quota resource, per step.
    usages: tuple[tuple[int, ...], ...] = ()
    limits: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return len(self.durations)

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.durations]
        for j, ps in enumerate(self.preds):
            for i in ps:
                succ[i].append(j)
        return succ


def priority_order(jobs: Jobs, priority: Sequence[float]) -> list[int]:
    """A precedence-feasible order: lowest priority value first among ready steps.

    Ties are broken by position, so the order is deterministic.
    """
    order = kahn_order(jobs.successors(), [len(ps) for ps in jobs.preds], priority)
    if len(order) != jobs.size:
        raise ValueError("the precedence graph has a cycle")
    return order


def asap(jobs: Jobs) -> list[float]:
    """Earliest starts ignoring quotas (positions must be a topological order)."""
    starts = [0.0] * jobs.size
    for j in range(jobs.size):
        s = 0.0
        for i in jobs.preds[j]:
            f = starts[i] + jobs.durations[i]
            if f > s:
                s = f
        starts[j] = s
    return starts


class _Profile:
    """Usage over time as a step function: ``levels[i]`` holds on ``[times[i], times[i+1])``.

    numpy arrays, so that finding room is vectorised over the segments: large
    schedules have thousands of them.
    """

    def __init__(self, limits: tuple[int, ...]) -> None:
        self.limits = np.asarray(limits, dtype=np.int64)
        # segments live at the front of buffers with room to grow: a new boundary
        # shifts only the segments after it (schedules grow mostly at their end),
        # where ``np.insert`` copied the whole profile for each one
        self._times = np.zeros(64, dtype=np.float64)
        self._levels = np.zeros((64, len(limits)), dtype=np.int64)
        self._n = 1

    @property
    def times(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self._times[: self._n]

    @property
    def levels(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        return self._levels[: self._n]

    def earliest(self, est: float, duration: float, use: tuple[int, ...]) -> float:
        """The earliest start >= est with room for ``use`` during ``[start, start + duration)``.

        Segments are examined in chunks of growing size from ``est`` on, so a step
        that fits soon after ``est`` costs little however long the profile is.
        """
        times = self.times
        n = len(times)
        k = int(np.searchsorted(times, est, side="right")) - 1
        free = self.limits - np.asarray(use, dtype=np.int64)
        t = est
        lo = k
        size = 64
        while True:
            hi = min(n, lo + size)
            bad = np.flatnonzero(np.any(self.levels[lo:hi] > free, axis=1)) + lo
            if bad.size:
                # the start tried before each full segment: ``t``, then the end of each
                # full segment before it (later ends are later); the first whose
                # interval ends by the next full segment's start is the answer
                if int(bad[-1]) + 1 >= n:  # the last, empty, segment: ``use`` alone is too big
                    ends = np.append(times[bad[:-1] + 1], np.inf)
                else:
                    ends = times[bad + 1]
                tried = np.maximum(np.concatenate(([t], ends[:-1])), t)
                fits = np.flatnonzero(times[bad] >= tried + duration)
                if fits.size:
                    return float(tried[fits[0]])
                if not np.isfinite(ends[-1]):
                    raise ValueError("a step holds more than the quota on its own")
                t = max(t, float(ends[-1]))
            if hi >= n or times[hi - 1] >= t + duration:
                if hi >= n and bad.size and int(bad[-1]) + 1 >= n:
                    raise ValueError("a step holds more than the quota on its own")
                return t
            lo = hi
            size *= 4

    def _split(self, x: float) -> int:
        n = self._n
        idx = int(np.searchsorted(self._times[:n], x, side="left"))
        if idx < n and self._times[idx] == x:
            return idx
        if n == len(self._times):  # full: double the room (amortised O(1) per boundary)
            self._times = np.concatenate([self._times, np.zeros(n, dtype=np.float64)])
            self._levels = np.concatenate([self._levels, np.zeros_like(self._levels)])
        self._times[idx + 1 : n + 1] = self._times[idx:n]
        self._levels[idx + 1 : n + 1] = self._levels[idx:n]
        self._times[idx] = x
        self._levels[idx] = self._levels[idx - 1]
        self._n = n + 1
        return idx

    def has_room(self, start: float, duration: float, use: tuple[int, ...]) -> bool:
        """Whether ``use`` fits on top of the profile during ``[start, start + duration)``."""
        if duration <= 0.0 or not any(use):
            return True
        a = int(np.searchsorted(self.times, start, side="right")) - 1
        b = int(np.searchsorted(self.times, start + duration, side="left"))
        free = self.limits - np.asarray(use, dtype=np.int64)
        return not bool(np.any(self.levels[max(a, 0) : max(b, a + 1)] > free))

    def add(self, start: float, duration: float, use: tuple[int, ...]) -> None:
        if duration <= 0.0 or not any(use):
            return
        a = self._split(start)
        b = self._split(start + duration)
        self._levels[a:b] += np.asarray(use, dtype=np.int64)


class _SmallProfile:
    """The same step function in plain lists: faster than numpy for a few hundred segments."""

    def __init__(self, limits: tuple[int, ...]) -> None:
        self.limits = limits
        self.times: list[float] = [0.0]
        self.levels: list[list[int]] = [[0] * len(limits)]

    def _full(self, i: int, use: tuple[int, ...]) -> bool:
        return any(lv + u > q for lv, u, q in zip(self.levels[i], use, self.limits, strict=True))

    def earliest(self, est: float, duration: float, use: tuple[int, ...]) -> float:
        times = self.times
        i = bisect.bisect_right(times, est) - 1
        t = est
        n = len(times)
        while True:
            end = t + duration
            j = i
            clash = -1
            while j < n and (j == i or times[j] < end):
                if self._full(j, use):
                    clash = j
                    break
                j += 1
            if clash < 0:
                return t
            if clash + 1 >= n:
                raise ValueError("a step holds more than the quota on its own")
            # skip the run of full segments
            k = clash + 1
            while k < n and self._full(k, use):
                k += 1
            if k >= n:
                raise ValueError("a step holds more than the quota on its own")
            t = times[k]
            i = k

    def _split(self, x: float) -> int:
        idx = bisect.bisect_left(self.times, x)
        if idx < len(self.times) and self.times[idx] == x:
            return idx
        self.times.insert(idx, x)
        self.levels.insert(idx, list(self.levels[idx - 1]))
        return idx

    def has_room(self, start: float, duration: float, use: tuple[int, ...]) -> bool:
        if duration <= 0.0 or not any(use):
            return True
        a = max(bisect.bisect_right(self.times, start) - 1, 0)
        b = bisect.bisect_left(self.times, start + duration)
        return not any(self._full(i, use) for i in range(a, max(b, a + 1)))

    def add(self, start: float, duration: float, use: tuple[int, ...]) -> None:
        if duration <= 0.0 or not any(use):
            return
        a = self._split(start)
        b = self._split(start + duration)
        for i in range(a, b):
            lv = self.levels[i]
            for r, u in enumerate(use):
                lv[r] += u


#: Up to this many steps, schedules use plain lists (numpy's per-call cost dominates there).
SMALL_PROFILE = 400


def _profile(jobs: Jobs) -> _Profile | _SmallProfile:
    return _SmallProfile(jobs.limits) if jobs.size <= SMALL_PROFILE else _Profile(jobs.limits)


#: Steps placed between two looks at the clock in a schedule pass that may stop early.
CLOCK_EVERY = 128


def serial_sgs(jobs: Jobs, order: Sequence[int]) -> list[float]:
    """Start times from the serial schedule generation scheme over ``order``."""
    got = serial_sgs_within(jobs, order, None)
    assert got is not None  # without a clock the pass always ends
    return got


def serial_sgs_within(
    jobs: Jobs, order: Sequence[int], expired: Callable[[], bool] | None
) -> list[float] | None:
    """:func:`serial_sgs`, or ``None`` as soon as ``expired()`` turns true during the pass
    (a pass over 10,000 steps takes seconds: the passes that improve a schedule
    already found are abandoned when the time is up, not finished past it)."""
    if not jobs.limits:
        return asap(jobs)
    profile = _profile(jobs)
    starts: list[float | None] = [None] * jobs.size
    for n, j in enumerate(order):
        if expired is not None and n % CLOCK_EVERY == CLOCK_EVERY - 1 and expired():
            return None
        est = 0.0
        for i in jobs.preds[j]:
            si = starts[i]
            if si is None:
                raise ValueError("order is not precedence-feasible")
            f = si + jobs.durations[i]
            if f > est:
                est = f
        use = jobs.usages[j]
        t = profile.earliest(est, jobs.durations[j], use)
        starts[j] = t
        profile.add(t, jobs.durations[j], use)
    return [s if s is not None else 0.0 for s in starts]


def profile_of(jobs: Jobs, starts: Sequence[float]) -> _Profile | _SmallProfile:
    """The usage profile of a schedule (every step on ``[start, start + duration)``)."""
    profile = _profile(jobs)
    for j in range(jobs.size):
        profile.add(starts[j], jobs.durations[j], jobs.usages[j])
    return profile


def makespan(jobs: Jobs, starts: Sequence[float]) -> float:
    return max((s + d for s, d in zip(starts, jobs.durations, strict=True)), default=0.0)


def tails(jobs: Jobs) -> list[float]:
    """Longest path from each step's start to the end (its duration included)."""
    succ = jobs.successors()
    out = [0.0] * jobs.size
    for i in reversed(range(jobs.size)):
        out[i] = jobs.durations[i] + max((out[j] for j in succ[i]), default=0.0)
    return out


def critical(jobs: Jobs, starts: Sequence[float]) -> list[bool]:
    """Steps on a chain that sets the makespan (precedence or a wait for quota)."""
    n = jobs.size
    finish = [s + d for s, d in zip(starts, jobs.durations, strict=True)]
    span = max(finish, default=0.0)
    eps = TIME_EPS * max(1.0, span)
    mark = [False] * n
    stack = [i for i in range(n) if finish[i] >= span - eps]
    while stack:
        j = stack.pop()
        if mark[j]:
            continue
        mark[j] = True
        if starts[j] <= eps:
            continue
        tight = [i for i in jobs.preds[j] if finish[i] >= starts[j] - eps]
        if not tight:  # waited for quota: whatever ended right then held it up
            tight = [i for i in range(n) if i != j and abs(finish[i] - starts[j]) <= eps]
        stack.extend(tight)
    return mark


def violations(jobs: Jobs, starts: Sequence[float], deadline: float | None = None) -> list[str]:
    """Everything wrong with a schedule (precedence, deadline, quota at every instant)."""
    out: list[str] = []
    span = makespan(jobs, starts)
    eps = TIME_EPS * max(1.0, span)
    for j, ps in enumerate(jobs.preds):
        if starts[j] < -eps:
            out.append(f"step {j} starts before 0")
        for i in ps:
            if starts[j] < starts[i] + jobs.durations[i] - eps:
                out.append(f"step {j} starts before its predecessor {i} ends")
    if deadline is not None and span > deadline + eps:
        out.append(f"makespan {span} exceeds the deadline {deadline}")
    if jobs.limits:
        # usage only rises at a start, so checking every start checks every instant:
        # load(t) = usage of the steps started by t minus that of the steps ended by t
        st = np.asarray(starts, dtype=np.float64)
        en = st + np.asarray(jobs.durations, dtype=np.float64)
        use = np.asarray(jobs.usages, dtype=np.int64).reshape(jobs.size, len(jobs.limits))
        at = np.unique(st)
        by_start = np.argsort(st, kind="stable")
        by_end = np.argsort(en, kind="stable")
        started = np.vstack([np.zeros((1, use.shape[1]), np.int64), np.cumsum(use[by_start], 0)])
        ended = np.vstack([np.zeros((1, use.shape[1]), np.int64), np.cumsum(use[by_end], 0)])
        n_started = np.searchsorted(st[by_start], at + eps, side="right")
        n_ended = np.searchsorted(en[by_end], at + eps, side="right")
        load = started[n_started] - ended[n_ended]
        for r, q in enumerate(jobs.limits):
            for i in np.flatnonzero(load[:, r] > q).tolist():
                out.append(f"resource {r} holds {int(load[i, r])} > {q} at t={float(at[i])}")
    return out


def reversed_jobs(jobs: Jobs) -> Jobs:
    """The same jobs on the reversed DAG (successors become predecessors)."""
    return Jobs(
        jobs.durations,
        tuple(tuple(s) for s in jobs.successors()),
        jobs.usages,
        jobs.limits,
    )


def improve(
    jobs: Jobs,
    starts: Sequence[float],
    rounds: int = 4,
    expired: Callable[[], bool] | None = None,
) -> list[float]:
    """Forward-backward improvement (double justification) of a quota schedule.

    A backward pass schedules the steps as late as possible in order of their
    finish times, on the reversed DAG; a forward pass then schedules them as
    early as possible in order of those late starts. Neither pass can lengthen
    the schedule (each keeps every step where the previous schedule allowed it),
    and together they often close gaps the first schedule left. ``expired``: a
    clock looked at during each pass; a pass cut short leaves the best schedule
    so far.
    """
    best = list(starts)
    if not jobs.limits:
        return best
    best_span = makespan(jobs, best)
    rev = reversed_jobs(jobs)
    for _ in range(rounds):
        if expired is not None and expired():
            break
        finish = [s + d for s, d in zip(best, jobs.durations, strict=True)]
        late = serial_sgs_within(rev, priority_order(rev, [-f for f in finish]), expired)
        if late is None:
            break
        span = makespan(rev, late)
        back = [span - r - d for r, d in zip(late, jobs.durations, strict=True)]
        fwd = serial_sgs_within(jobs, priority_order(jobs, back), expired)
        if fwd is None:
            break
        fwd_span = makespan(jobs, fwd)
        if fwd_span < best_span - 1e-12:
            best, best_span = fwd, fwd_span
        else:
            break
    return best
