"""Spot on this machine: emulated reclaims and capacity gaps, and the deadline-aware fallback.

The local backend runs every tier as processes here, so "spot" is emulated:

- with a spot trace (``--local-spot-trace PATH``, the public format of
  ``compiler/spot_traces.py``, replayed from its first tick when the run
  starts, cyclically, ``--local-spot-time-scale`` trace seconds per real
  second) a running spot shard is killed (SIGKILL, from outside: a
  preemption) when the trace's capacity ends, and a spot shard waiting to
  (re)start waits while the trace has no capacity;
- with a rate (``--local-spot-rate``, preemptions per trace hour) each spot
  attempt is killed after a seeded exponential time (Poisson, as the cost
  model assumes; ``--local-spot-seed``).

Before every spot attempt, and while a shard waits for capacity, the
deadline-aware fallback (``--local-fallback deadline``, the default) applies
the rule of ``compiler/fallback.py`` through ``backends/runtime/fallback.py``:
when ``now + remaining + 2r + c`` no longer fits the shard's due time, the
shard's next attempts run on the on-demand tier (here: not killed, not made to
wait), for good, and the ledger records them with ``spot`` false and the
reason. Without a trace or a rate, nothing is emulated, and the rule still
moves a spot shard that something outside killed too late to finish on spot.
Due times count from the run's first ``exoc run`` (``.fallback-started`` in the
run's checkpoint root), and a move is kept beside the shard's checkpoint folder
(``<step>/shard-<i>.ondemand``, its reason), so a resumed run keeps both.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from exo.compiler.fallback import switch_time_h

from ..runtime import fallback
from ..runtime.fallback import SpotStep

if TYPE_CHECKING:  # numpy, which the trace's clock needs, loads only for a run with a trace
    from exo.compiler.attempts import TraceClock
    from exo.compiler.spot_traces import SpotTrace

#: In the run's checkpoint root: when the fallback's clock started (a resumed run keeps it).
STARTED = ".fallback-started"
#: A shard the fallback moved to on-demand, in its step's checkpoint folder (its reason inside).
_MARK = re.compile(r"^shard-(\d+)\.ondemand$")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a shard's next attempt goes (loop clock seconds)."""

    spot: bool
    #: On on-demand by the fallback: why (for the ledger).
    fallback: str | None = None
    #: The emulation reclaims the spot instance then (``None``: never).
    preempt_at: float | None = None
    #: No spot capacity now: try again then (the shard is not launched).
    wait_until: float | None = None
    #: The shard has just moved to on-demand (say so once).
    moved: bool = False


@dataclass(frozen=True, slots=True)
class SpotConfig:
    """What a run needs to emulate spot: the plan's spot steps and the options."""

    steps: Mapping[str, SpotStep]
    fallback: bool
    trace: SpotTrace | None = None
    #: Poisson preemptions per trace hour of a running spot attempt.
    rate_per_h: float | None = None
    #: Trace seconds per real second.
    time_scale: float = 1.0
    seed: int = 0

    def start(self, checkpoints: Path, now: float) -> SpotEmulation:
        """The emulation of a run whose checkpoints are under ``checkpoints``; ``now``: loop clock.

        The run's start is kept as seconds since the epoch (so a resumed run keeps
        its clock); the wall clock is read once, for both the start and now.
        """
        t = time.time()
        began = fallback.run_started(checkpoints / STARTED, now=lambda: t)
        return SpotEmulation(self, checkpoints, now - max(0.0, t - began))


@dataclass(slots=True)
class SpotEmulation:
    config: SpotConfig
    checkpoints: Path
    #: Loop clock at the run's start (the rule's time 0).
    started: float
    moved: dict[tuple[str, int], str] = field(default_factory=dict)
    #: Steps whose ``.ondemand`` marks from earlier runs have been read into ``moved``.
    marks_read: set[str] = field(default_factory=set)
    rng: random.Random = field(init=False)
    clock: TraceClock | None = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        trace = self.config.trace
        self.clock = None
        if trace is not None:
            from exo.compiler.attempts import TraceClock
            from exo.compiler.spot_traces import spells

            self.clock = TraceClock.of([spells(trace, 0.0)])

    def _capacity(self, now: float) -> tuple[float, float]:
        """Real seconds until spot capacity is there (0: now), and how long it then lasts."""
        if self.clock is None:
            return 0.0, math.inf
        import numpy as np  # loaded with the clock, in __post_init__

        scale = self.config.time_scale
        x = (now - self.started) * scale / 3600.0
        wait, until = self.clock.next_up(np.zeros(1, dtype=np.int64), np.array([x]))
        return float(wait[0]) * 3600.0 / scale, float(until[0]) * 3600.0 / scale

    def _read_marks(self, step: str) -> None:
        """The shards of ``step`` that an earlier run moved to on-demand (their marks).

        One listing per step, not a look-up per attempt: only this emulation writes marks
        while the run holds the state lock, and it keeps what it writes in ``moved``."""
        self.marks_read.add(step)
        try:
            entries = list((self.checkpoints / step).iterdir())
        except OSError:
            return
        for entry in entries:
            m = _MARK.match(entry.name)
            if m is None or (step, int(m.group(1))) in self.moved:
                continue
            try:
                why = entry.read_text(encoding="utf-8").strip()
            except OSError:  # not a readable file: not a mark
                continue
            self.moved[(step, int(m.group(1)))] = why or "moved earlier"

    def place(self, step: str, idx: int, now: float) -> Placement | None:
        """The next attempt of shard ``idx`` of ``step`` (``None``: not a spot step)."""
        st = self.config.steps.get(step)
        if st is None:
            return None
        key = (step, idx)
        if step not in self.marks_read:
            self._read_marks(step)
        if key in self.moved:
            return Placement(spot=False, fallback=self.moved[key])
        switch_at = math.inf
        if self.config.fallback:
            left = fallback.shard_remaining_h(st, self.checkpoints, idx)
            elapsed_h = (now - self.started) / 3600.0
            if fallback.must_fall_back(st, elapsed_h, left):
                why = self.moved[key] = fallback.describe(st, elapsed_h, left)
                mark = f"{self.checkpoints}/{step}/shard-{idx}.ondemand"
                with contextlib.suppress(OSError):  # in memory for this run in any case
                    Path(mark).parent.mkdir(parents=True, exist_ok=True)
                    Path(mark).write_text(why + "\n", encoding="utf-8")
                return Placement(spot=False, fallback=why, moved=True)
            due = switch_time_h(st.due_h, left, st.restart_h, st.checkpoint_h)
            switch_at = self.started + due * 3600.0 + 1e-3  # just past: the rule then says move
        wait, lasts = self._capacity(now)
        if wait > 0:
            return Placement(spot=True, wait_until=min(now + wait, switch_at))
        preempt = now + lasts
        rate = self.config.rate_per_h
        if rate:
            preempt = min(preempt, now + self.rng.expovariate(rate * self.config.time_scale / 3600))
        return Placement(spot=True, preempt_at=preempt if math.isfinite(preempt) else None)
