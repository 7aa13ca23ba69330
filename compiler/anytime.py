"""Time, stop requests and progress of one optimisation (pure: everything is passed in).

A :class:`Clock` is the wall-clock budget of one request, shared by every
solve and heuristic in it; each of them polls :meth:`Clock.expired`, which also
turns true when the caller asks to stop (``stop``: Ctrl-C in ``exoc plan``), so
that the best plan found so far comes back. :meth:`Clock.report` passes the
incumbent and the proven bound to the caller's ``progress`` callback (the
progress line of ``exoc plan`` on a terminal); the optimizer never prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a search stands: its best plan's value and the proven bound on the optimum."""

    #: What is being minimised now: ``time`` (hours) or ``cost`` (USD).
    objective: Literal["cost", "time"]
    #: Value of the best plan found (``None`` while there is none).
    best: float | None
    #: Proven lower bound on the optimum (``None`` while there is none).
    bound: float | None
    elapsed_s: float
    limit_s: float | None
    #: What the search is doing: ``relaxation``, ``exact model``, ``heuristic`` ...
    phase: str

    @property
    def gap(self) -> float | None:
        if self.best is None or self.bound is None or not math.isfinite(self.bound):
            return None
        if self.best <= 0.0:
            return 0.0
        return max(0.0, (self.best - self.bound) / self.best)


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


class Clock:
    """Wall-clock budget shared by every solve of one request (``None``: unlimited)."""

    def __init__(
        self,
        seconds: float | None,
        *,
        stop: StopFn | None = None,
        progress: ProgressFn | None = None,
        started: float | None = None,
    ) -> None:
        self.seconds = seconds
        #: When the time began (``time.perf_counter()``; by default now): ``exoc plan``
        #: passes its process's start, so the limit is the time the user waits.
        self.start = time.perf_counter() if started is None else started
        self.stop = stop
        self.progress = progress
        self._best: dict[str, float] = {}
        self._bound: dict[str, float] = {}
        #: The whole request's start and limit (progress reports count from there).
        self.origin = self.start
        self.total = seconds
        #: Seconds one solver model of this request is expected to take to build and
        #: give a first answer: work that cannot look at the clock. Set from how long
        #: building the options took (so it follows the machine's load); 0 = unknown.
        self.model_s = 0.0
        #: Seconds kept back at the end of the limit (:meth:`keep`).
        self.kept = 0.0

    def keep(self, seconds: float) -> None:
        """Keep ``seconds`` at the end of the limit for the work after the search.

        The search sees a limit that much shorter (and so do the clocks made from
        this one afterwards), so that what follows it, which cannot look at the
        clock, ends within the real one.
        """
        self.kept = max(seconds, 0.0)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        return max(self.seconds - self.kept - self.elapsed(), 0.0)

    def share(self, fraction: float) -> float | None:
        left = self.remaining()
        return None if left is None else left * fraction

    def affords(self, seconds: float) -> bool:
        """Work of about ``seconds`` that cannot look at the clock fits in what is left."""
        if self.expired():
            return False
        left = self.remaining()
        return left is None or left >= seconds

    def stopped(self) -> bool:
        """The caller asked to stop (not the time limit)."""
        return self.stop is not None and self.stop()

    def expired(self) -> bool:
        if self.stopped():
            return True
        left = self.remaining()
        return left is not None and left <= 0.0

    def child(self, seconds: float | None) -> Clock:
        """A clock for part of the work: at most ``seconds`` (and never past this one)."""
        left = self.remaining()
        if seconds is None:
            limit = left
        elif left is None:
            limit = seconds
        else:
            limit = min(seconds, left)
        sub = Clock(limit, stop=self.stop, progress=self.progress)
        sub._best, sub._bound = self._best, self._bound
        sub.origin, sub.total = self.origin, self.total
        sub.model_s = self.model_s
        return sub

    def report(
        self,
        objective: Literal["cost", "time"],
        phase: str,
        *,
        best: float | None = None,
        bound: float | None = None,
    ) -> None:
        """Tell the caller about a (possibly) better plan or bound for ``objective``."""
        if best is not None and math.isfinite(best):
            self._best[objective] = min(self._best.get(objective, math.inf), best)
        if bound is not None and math.isfinite(bound):
            self._bound[objective] = max(self._bound.get(objective, -math.inf), bound)
        if self.progress is None:
            return
        b = self._best.get(objective)
        lb = self._bound.get(objective)
        if b is not None and lb is not None:
            lb = min(lb, b)
        elapsed = time.perf_counter() - self.origin
        self.progress(Progress(objective, b, lb, elapsed, self.total, phase))
