"""Monte Carlo of a plan under the cost model's own assumptions (DESIGN §3).

Each spot instance is preempted by a Poisson process of rate λ (per running
hour). An instance first pays its startup ``S``, then works through ``W = T - S``
hours of work; work is saved at every checkpoint (every ``c`` hours of work);
a preemption loses the work since the last checkpoint and pays ``S`` again.
The replicas of one instance restart together, and a step ends when its last
instance ends. On-demand instances take exactly ``T``.

A step starts no earlier than its planned start (so the quota holds as planned)
nor before its predecessors have ended (``release="planned"``), or as soon as
its predecessors have ended (``release="asap"``: what a dependency-driven
scheduler does). Either way, if every step ends within its ``P`` the plan ends
within its makespan.

This module is pure (a seeded numpy generator, no I/O): the tests use it to
check that plans keep their promises, the benchmarks to measure them, and a
later ``exoc simulate`` can build on it. :func:`plan_steps` turns a plan (and
the program and catalog it came from) into :class:`SimStep` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from exo.compiler.catalog import Catalog
from exo.compiler.ir import Program
from exo.compiler.plan import Plan

Release = Literal["planned", "asap"]
Array = np.ndarray[Any, np.dtype[np.float64]]

#: A simulated duration meets a planned one within this (relative and absolute, hours).
TOL = 1e-9
#: Preemption events simulated per instance at most (a guard, not a model limit).
MAX_EVENTS = 1_000_000


@dataclass(frozen=True, slots=True)
class SimStep:
    """One planned step, as the simulation needs it (hours and USD)."""

    name: str
    #: Positions of the predecessors in the list of steps (a topological order).
    preds: tuple[int, ...]
    start_h: float
    #: The planned duration at confidence (``P``).
    p_h: float
    #: Instances rented (each holds one or more replicas, preempted together).
    instances: int
    #: Startup per (re)start: ``S`` (= the restart cost ``r``).
    startup_h: float
    #: Work per instance after the startup: ``T - S``.
    work_h: float
    #: Hours of work between checkpoints (``>= work_h``: nothing is saved).
    checkpoint_h: float
    #: Preemptions per running hour (0 on demand).
    preemptions_per_hour: float
    price_usd_per_hour: float
    #: The planned expected cost.
    expected_cost_usd: float


@dataclass(frozen=True, slots=True)
class StepStats:
    name: str
    p_h: float
    #: Fraction of runs in which the step took at most its ``P``.
    hit_rate: float
    mean_duration_h: float
    mean_cost_usd: float
    expected_cost_usd: float


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
    """Running hours of independent instances (an array of ``shape``).

    Event by event: the time to the next preemption is exponential; if it comes
    after the restart and the remaining work, the instance ends; otherwise the
    work up to the last checkpoint passed is kept and the instance restarts.
    """
    need0 = startup_h + work_h
    if rate <= 0.0 or need0 <= 0.0:
        return np.full(shape, need0, dtype=np.float64)
    size = int(np.prod(shape))
    total = np.zeros(size, dtype=np.float64)
    saved = np.zeros(size, dtype=np.float64)
    active = np.arange(size)
    step = checkpoint_h if 0.0 < checkpoint_h < work_h else 0.0
    events = 0
    while active.size:
        events += 1
        if events > MAX_EVENTS:
            raise ValueError("too many preemptions to simulate (rate x duration too large)")
        gap = rng.exponential(1.0 / rate, active.size)
        need = startup_h + (work_h - saved[active])
        done = gap >= need
        total[active[done]] += need[done]
        lost = active[~done]
        g = gap[~done]
        total[lost] += g
        if step > 0.0:
            progress = np.maximum(g - startup_h, 0.0)
            saved[lost] += np.floor(progress / step) * step
        active = lost
    return total.reshape(shape)


def simulate(
    steps: Sequence[SimStep],
    *,
    runs: int = 10_000,
    seed: int = 0,
    release: Release = "planned",
) -> SimResult:
    """``runs`` independent executions of the planned steps (deterministic per ``seed``)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    finish: list[Array] = []
    cost = np.zeros(runs, dtype=np.float64)
    all_hit = np.ones(runs, dtype=bool)
    stats: list[StepStats] = []
    for s in steps:
        ready = np.zeros(runs, dtype=np.float64)
        for p in s.preds:
            ready = np.maximum(ready, finish[p])
        start = np.maximum(ready, s.start_h) if release == "planned" else ready
        hours = instance_hours(
            rng,
            (runs, max(s.instances, 1)),
            startup_h=s.startup_h,
            work_h=s.work_h,
            checkpoint_h=s.checkpoint_h,
            rate=s.preemptions_per_hour,
        )
        duration = hours.max(axis=1)
        step_cost = hours.sum(axis=1) * s.price_usd_per_hour
        hit = duration <= s.p_h * (1.0 + TOL) + TOL
        all_hit &= hit
        cost += step_cost
        finish.append(start + duration)
        stats.append(
            StepStats(
                s.name,
                s.p_h,
                float(hit.mean()),
                float(duration.mean()),
                float(step_cost.mean()),
                s.expected_cost_usd,
            )
        )
    planned = max((s.start_h + s.p_h for s in steps), default=0.0)
    span = np.zeros(runs, dtype=np.float64)
    for f in finish:
        span = np.maximum(span, f)
    return SimResult(
        runs=runs,
        seed=seed,
        release=release,
        steps=tuple(stats),
        planned_makespan_h=planned,
        makespan_hit_rate=float((span <= planned * (1.0 + TOL) + TOL).mean()),
        all_steps_hit_rate=float(all_hit.mean()),
        mean_makespan_h=float(span.mean()),
        mean_cost_usd=float(cost.mean()),
        cost_stderr_usd=float(cost.std(ddof=1) / np.sqrt(runs)) if runs > 1 else 0.0,
        expected_cost_usd=sum(s.expected_cost_usd for s in steps),
    )


def plan_steps(program: Program, catalog: Catalog, plan: Plan) -> list[SimStep]:
    """The plan's steps for :func:`simulate`, with ``T``, ``c`` and λ from the cost model."""
    from exo.compiler.costmodel import Option, option_for, workflow_confidence

    conf = workflow_confidence(program, catalog)
    order = {s.name: i for i, s in enumerate(plan.steps)}
    out: list[SimStep] = []
    for sp in plan.steps:
        step = program.step(sp.name)
        o = option_for(
            step,
            catalog,
            conf,
            instance_type=sp.instance_type,
            spot=sp.spot,
            batch_size=sp.batch_size,
            replicas=sp.replicas,
        )
        if not isinstance(o, Option):
            raise ValueError(f"step {sp.name!r}: the planned option is not an option of the model")
        work = o.T - step.startup_h
        out.append(
            SimStep(
                name=sp.name,
                preds=tuple(sorted(order[p] for p in step.predecessors() if p in order)),
                start_h=sp.start_h,
                p_h=sp.p_duration_h,
                instances=o.instances,
                startup_h=step.startup_h,
                work_h=work,
                checkpoint_h=o.checkpoint_h if o.spot else work,
                preemptions_per_hour=o.preemptions_per_hour if o.spot else 0.0,
                price_usd_per_hour=o.price_usd_per_hour,
                expected_cost_usd=sp.expected_cost_usd,
            )
        )
    return out
