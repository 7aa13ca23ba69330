"""The steps of a plan as the simulation and the run-time fallback read them (DESIGN §3).

:func:`plan_steps` turns a plan (and the program and catalog it came from) into
:class:`SimStep` values: each step's ``T``, ``c`` and λ from the cost model, read
from the plan's own ``P`` (no Poisson tail searched). :func:`due_times` gives
each step's latest finish that still meets a target. Neither needs numpy: the
local runner's fallback calls both when a run starts, and the Monte Carlo of
``compiler/simulate.py`` draws from their values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exo.compiler.catalog import Catalog
from exo.compiler.fallback import latest_finish
from exo.compiler.ir import Program
from exo.compiler.plan import Plan


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
    #: Price per instance-hour of the planned tier.
    price_usd_per_hour: float
    #: The planned expected cost.
    expected_cost_usd: float
    #: Whether the step is planned on spot (traces preempt spot steps only).
    spot: bool | None = None
    #: On-demand price per instance-hour of the same instance type (the fallback's tier).
    ondemand_usd_per_hour: float | None = None

    @property
    def on_spot(self) -> bool:
        return self.preemptions_per_hour > 0.0 if self.spot is None else self.spot


def due_times(steps: Sequence[SimStep], target_h: float) -> list[float]:
    """Each step's due time (``fallback.latest_finish`` over the steps' DAG and their ``P``)."""
    names = [f"{i}" for i in range(len(steps))]
    succ: dict[str, list[str]] = {n: [] for n in names}
    for i, s in enumerate(steps):
        for p in s.preds:
            succ[names[p]].append(names[i])
    due = latest_finish(
        names, {n: s.p_h for n, s in zip(names, steps, strict=True)}, succ, target_h
    )
    return [due[n] for n in names]


def plan_steps(program: Program, catalog: Catalog, plan: Plan) -> list[SimStep]:
    """The plan's steps for :func:`exo.compiler.simulate.simulate` and the runners' fallback,
    with ``T``, ``c`` and λ from the cost model (each spot option's ``k`` from the plan's ``P``)."""
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
            planned_p=sp.p_duration_h,
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
                spot=o.spot,
                ondemand_usd_per_hour=_ondemand_price(catalog, sp.instance_type, o),
            )
        )
    return out


def _ondemand_price(catalog: Catalog, instance_type: str, o: Any) -> float:
    """The on-demand price per instance-hour of the planned instance type (the fallback's tier)."""
    inst = catalog.get(instance_type)
    return float(o.price_usd_per_hour) if inst is None else inst.ondemand_usd_per_hour
