"""Monte Carlo of a plan: under the cost model (DESIGN §3) or replaying spot traces.

Under the model each spot instance is preempted by a Poisson process of rate λ
(per running hour). With traces (``compiler/spot_traces.py``) each run picks one
trace (a zone) and a random start offset, and every spot step of the run plays
through that trace in real time: an attempt starts only while the zone has
capacity, the step's instances in the zone lose it together, and a drop ends
the attempt. Either way an instance first pays its startup ``S``, then works
through ``W = T - S`` hours; work is saved at every checkpoint (every ``c``
hours of work); a preemption loses the work since the last checkpoint and pays
``S`` again. The replicas of one instance restart together, and a step ends
when its last instance ends. On-demand instances take exactly ``T``.

With ``policy="fallback"`` every spot instance applies the deadline-aware rule
of ``compiler/fallback.py`` against its step's due time (the latest finish that
still meets the deadline, or the planned makespan without one) before every
spot attempt, and moves its remaining work to on-demand when it no longer fits.

A step starts no earlier than its planned start (so the quota holds as planned)
nor before its predecessors have ended (``release="planned"``), or as soon as
its predecessors have ended (``release="asap"``: what the runners do).

This module is pure (a seeded numpy generator, no I/O). :func:`plan_steps`
(``compiler/simsteps.py``) turns a plan (and the program and catalog it came
from) into :class:`SimStep` values; ``exoc simulate`` (``compiler/cli/simulate.py``)
prints the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from exo.compiler.attempts import Instance, TraceClock, run_attempts
from exo.compiler.simsteps import SimStep as SimStep  # re-exported: part of this API
from exo.compiler.simsteps import due_times as due_times
from exo.compiler.simsteps import plan_steps as plan_steps
from exo.compiler.spot_traces import SpotTrace, spells

Release = Literal["planned", "asap"]
Policy = Literal["none", "fallback"]
Array = np.ndarray[Any, np.dtype[np.float64]]
Bools = np.ndarray[Any, np.dtype[np.bool_]]

#: A simulated duration meets a planned one within this (relative and absolute, hours).
TOL = 1e-9
#: Bins of the makespan and cost histograms.
HIST_BINS = 40
#: A run still going after this many times the target (deadline or makespan) is unfinished.
HORIZON_FACTOR = 100.0


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean and quantiles of one figure over the runs (``inf`` when some runs never ended)."""

    mean: float
    p50: float
    p95: float

    @staticmethod
    def of(x: Array) -> Spread:
        if not x.size:
            return Spread(0.0, 0.0, 0.0)
        with np.errstate(invalid="ignore"):  # inf (runs that never ended) stays inf
            q50, q95 = np.percentile(x, [50, 95], method="higher")
        mean = float(x.mean())
        return Spread(mean, float(q50), float(q95))


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of runs per bin (``edges`` has one more value than ``counts``)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    #: Runs that never ended (not in any bin).
    beyond: int = 0

    @staticmethod
    def of(x: Array, bins: int = HIST_BINS) -> Histogram:
        finite = x[np.isfinite(x)]
        if not finite.size:
            return Histogram((0.0, 1.0), (0,), int(x.size))
        lo, hi = float(finite.min()), float(finite.max())
        counts, edges = np.histogram(finite, bins=bins, range=(lo, hi if hi > lo else lo + 1e-9))
        return Histogram(
            tuple(float(v) for v in edges),
            tuple(int(c) for c in counts),
            int(x.size - finite.size),
        )


@dataclass(frozen=True, slots=True)
class StepStats:
    name: str
    p_h: float
    #: Fraction of runs in which the step took at most its ``P``.
    hit_rate: float
    mean_duration_h: float
    mean_cost_usd: float
    expected_cost_usd: float
    spot: bool = False
    instances: int = 1
    #: The latest finish that meets the deadline (the fallback's due time).
    due_h: float = 0.0
    #: Fraction of runs in which the step ended by its due time.
    due_rate: float = 1.0
    duration_h: Spread = Spread(0.0, 0.0, 0.0)
    cost_usd: Spread = Spread(0.0, 0.0, 0.0)
    #: Mean on-demand instance-hours the fallback used.
    ondemand_h: float = 0.0
    #: Fraction of runs in which some instance of the step fell back to on-demand.
    fallback_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class SimResult:
    runs: int
    seed: int
    release: Release
    steps: tuple[StepStats, ...]
    planned_makespan_h: float
    #: Fraction of runs that ended within the planned makespan.
    makespan_hit_rate: float
    #: Fraction of runs in which every step took at most its ``P``.
    all_steps_hit_rate: float
    mean_makespan_h: float
    mean_cost_usd: float
    #: Standard error of ``mean_cost_usd``.
    cost_stderr_usd: float
    expected_cost_usd: float
    policy: Policy = "none"
    #: Labels of the traces replayed; empty under the model.
    traces: tuple[str, ...] = ()
    deadline_h: float | None = None
    #: Fraction of runs that met the deadline (None without one).
    deadline_hit_rate: float | None = None
    makespan_h: Spread = Spread(0.0, 0.0, 0.0)
    cost_usd: Spread = Spread(0.0, 0.0, 0.0)
    #: Mean on-demand instance-hours the fallback used per run.
    ondemand_h: float = 0.0
    #: Fraction of runs in which some instance fell back.
    fallback_rate: float = 0.0
    #: Fraction of runs still going after ``HORIZON_FACTOR`` times the target.
    unfinished_rate: float = 0.0
    #: The same plan with every step on on-demand instances of its type (the fallback's tier).
    ondemand_ceiling_usd: float = 0.0
    makespan_hist: Histogram | None = None
    cost_hist: Histogram | None = None

    def step(self, name: str) -> StepStats:
        return next(s for s in self.steps if s.name == name)


def instance_hours(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    *,
    startup_h: float,
    work_h: float,
    checkpoint_h: float,
    rate: float,
) -> Array:
    """Running hours of independent Poisson-preempted instances (an array of ``shape``)."""
    size = int(np.prod(shape))
    inst = Instance(startup_h, work_h, checkpoint_h, rate)
    return run_attempts(rng, inst, np.zeros(size)).spot_h.reshape(shape)


@dataclass(frozen=True, slots=True)
class _Zones:
    """Per run: the trace replayed and its offset; spell sets per (trace, level), cached."""

    traces: tuple[SpotTrace, ...]
    pick: np.ndarray[Any, np.dtype[np.int64]]
    offset: Array

    @staticmethod
    def draw(rng: np.random.Generator, traces: Sequence[SpotTrace], runs: int) -> _Zones:
        pick = rng.integers(0, len(traces), runs)
        periods = np.array([t.period_h for t in traces])
        return _Zones(tuple(traces), pick, rng.random(runs) * periods[pick])

    def clock(self, m: int) -> tuple[TraceClock, np.ndarray[Any, np.dtype[np.int64]]]:
        """The clock of a step of ``m`` instances and each (run, instance) item's spell set."""
        sets = [spells(t, j * t.peak / m) for t in self.traces for j in range(m)]
        item = self.pick[:, None] * m + np.arange(m)[None, :]
        return TraceClock.of(sets), item.ravel()


@dataclass(frozen=True, slots=True)
class _StepRun:
    finish: Array
    cost: Array
    ondemand_h: Array
    fell_back: np.ndarray[Any, np.dtype[np.bool_]]


def _run_step(
    rng: np.random.Generator,
    s: SimStep,
    start: Array,
    *,
    due_h: float | None,
    zones: _Zones | None,
    horizon_h: float,
) -> _StepRun:
    runs = start.size
    m = max(s.instances, 1)
    total_h = s.startup_h + s.work_h
    if not s.on_spot:
        hours = np.full(runs, float(m * total_h))
        return _StepRun(
            start + total_h, hours * s.price_usd_per_hour, np.zeros(runs), np.zeros(runs, bool)
        )
    trace = zones is not None
    inst = Instance(s.startup_h, s.work_h, s.checkpoint_h, 0.0 if trace else s.preemptions_per_hour)
    clock, sets, offset = None, None, None
    if zones is not None:
        clock, sets = zones.clock(m)
        offset = np.repeat(zones.offset, m)
    a = run_attempts(
        rng,
        inst,
        np.repeat(start, m),
        due_h=due_h,
        clock=clock,
        sets=sets,
        offset=offset,
        horizon_h=horizon_h,
    )
    od_price = _od_price(s)
    spot_h = a.spot_h.reshape(runs, m).sum(axis=1)
    od_h = a.ondemand_h.reshape(runs, m).sum(axis=1)
    return _StepRun(
        a.finish.reshape(runs, m).max(axis=1),
        spot_h * s.price_usd_per_hour + od_h * od_price,
        od_h,
        np.asarray(a.fell_back.reshape(runs, m).any(axis=1), dtype=bool),
    )


def simulate(
    steps: Sequence[SimStep],
    *,
    runs: int = 10_000,
    seed: int = 0,
    release: Release = "planned",
    policy: Policy = "none",
    traces: Sequence[SpotTrace] = (),
    deadline_h: float | None = None,
) -> SimResult:
    """``runs`` independent executions of the planned steps (deterministic per ``seed``)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    planned = max((s.start_h + s.p_h for s in steps), default=0.0)
    target = planned if deadline_h is None else deadline_h
    due = due_times(steps, target)
    horizon = _horizon_h(steps, traces, target)
    zones = _Zones.draw(rng, traces, runs) if traces else None
    fallback = policy == "fallback"
    out = _run_steps(rng, steps, due, runs, release, fallback, zones, horizon)
    span, cost = out.span, out.cost
    return SimResult(
        runs=runs,
        seed=seed,
        release=release,
        steps=out.stats,
        planned_makespan_h=planned,
        makespan_hit_rate=_rate(span, planned),
        all_steps_hit_rate=float(out.all_hit.mean()),
        mean_makespan_h=float(span.mean()),
        mean_cost_usd=float(cost.mean()),
        cost_stderr_usd=float(cost.std(ddof=1) / np.sqrt(runs)) if runs > 1 else 0.0,
        expected_cost_usd=sum(s.expected_cost_usd for s in steps),
        policy=policy,
        traces=tuple(t.name for t in traces),
        deadline_h=deadline_h,
        deadline_hit_rate=None if deadline_h is None else _rate(span, deadline_h),
        makespan_h=Spread.of(span),
        cost_usd=Spread.of(cost),
        ondemand_h=float(out.ondemand_h.mean()),
        fallback_rate=float(out.fell_back.mean()),
        unfinished_rate=float(np.isinf(span).mean()),
        ondemand_ceiling_usd=sum(_ondemand_cost(s) for s in steps),
        makespan_hist=Histogram.of(span),
        cost_hist=Histogram.of(cost),
    )


def _horizon_h(steps: Sequence[SimStep], traces: Sequence[SpotTrace], target: float) -> float:
    """When a run counts as stuck: well past the target or the longest step."""
    # a run may wait out a whole trace period or two for capacity; beyond, it is stuck
    longest = max((t.period_h for t in traces), default=0.0)
    horizon = HORIZON_FACTOR * max(target, max((s.p_h for s in steps), default=0.0), 1e-9)
    horizon += 2.0 * longest
    return horizon


@dataclass(frozen=True, slots=True)
class _Runs:
    """Every run of every step, per run: the makespan and totals over the steps."""

    span: Array
    cost: Array
    ondemand_h: Array
    fell_back: Bools
    all_hit: Bools
    stats: tuple[StepStats, ...]


def _run_steps(
    rng: np.random.Generator,
    steps: Sequence[SimStep],
    due: Sequence[float],
    runs: int,
    release: Release,
    fallback: bool,
    zones: _Zones | None,
    horizon: float,
) -> _Runs:
    """Run the steps in order, each from when its predecessors finish (and its start, if planned)."""
    finish: list[Array] = []
    cost = np.zeros(runs)
    od_h = np.zeros(runs)
    any_fell = np.zeros(runs, dtype=bool)
    all_hit = np.ones(runs, dtype=bool)
    stats: list[StepStats] = []
    for s, d in zip(steps, due, strict=True):
        ready = np.zeros(runs)
        for p in s.preds:
            ready = np.maximum(ready, finish[p])
        start = np.maximum(ready, s.start_h) if release == "planned" else ready
        r = _run_step(rng, s, start, due_h=d if fallback else None, zones=zones, horizon_h=horizon)
        with np.errstate(invalid="ignore"):
            duration = r.finish - start
        hit = duration <= s.p_h * (1.0 + TOL) + TOL
        all_hit &= hit
        cost += r.cost
        od_h += r.ondemand_h
        any_fell |= r.fell_back
        finish.append(r.finish)
        stats.append(_step_stats(s, d, duration, r, hit))
    span = np.zeros(runs)
    for f in finish:
        span = np.maximum(span, f)
    return _Runs(span, cost, od_h, any_fell, all_hit, tuple(stats))


def _od_price(s: SimStep) -> float:
    return s.price_usd_per_hour if s.ondemand_usd_per_hour is None else s.ondemand_usd_per_hour


def _ondemand_cost(s: SimStep) -> float:
    return max(s.instances, 1) * _od_price(s) * (s.startup_h + s.work_h)


def _rate(x: Array, bound: float) -> float:
    return float((x <= bound * (1.0 + TOL) + TOL).mean())


def _step_stats(s: SimStep, due: float, duration: Array, r: _StepRun, hit: Bools) -> StepStats:
    return StepStats(
        s.name,
        s.p_h,
        float(hit.mean()),
        float(duration.mean()),
        float(r.cost.mean()),
        s.expected_cost_usd,
        spot=s.on_spot,
        instances=s.instances,
        due_h=due,
        due_rate=_rate(r.finish, due),
        duration_h=Spread.of(duration),
        cost_usd=Spread.of(r.cost),
        ondemand_h=float(r.ondemand_h.mean()),
        fallback_rate=float(r.fell_back.mean()),
    )
