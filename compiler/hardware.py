"""Which catalog instance types a step names, and whether one can hold the step.

The part of :mod:`exo.compiler.candidates` that ``exoc check``'s warnings
(:mod:`exo.compiler.hints`) need too, without the optimizer's records: a check never
builds a family or a rejection, only asks whether an instance type fits.
:func:`hardware_misfit` is the one statement of what fits (accelerator count, vCPUs,
host memory); :func:`exo.compiler.candidates.hardware_rejection` turns its answer into
a :class:`~exo.compiler.candidates.Rejection`.
"""

from __future__ import annotations

from typing import Literal

from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import CPU_KEY, Step

#: Why an instance type cannot hold a step's replica.
MisfitKind = Literal["accelerator_count", "vcpus", "host_memory"]


def candidate_instances(step: Step, catalog: Catalog) -> list[InstanceType]:
    """Instance types offering one of the step's accelerators (or named by it), or CPU ones.

    Hardware sizes are not checked here (see :func:`hardware_misfit`).
    """
    if not step.accelerators:
        return [i for i in catalog.instances if i.accelerator is None]
    wanted = set(step.accelerators)
    return [
        i
        for i in catalog.instances
        if i.instance_type in wanted or (i.accelerator is not None and i.accelerator in wanted)
    ]


def perf_keys(inst: InstanceType) -> tuple[str, ...]:
    """Lookup order: the instance type, then its accelerator, then ``cpu`` (CPU instances)."""
    if inst.accelerator is None:
        return (inst.instance_type, CPU_KEY)
    return (inst.instance_type, inst.accelerator)


def gib(x: float) -> str:
    return f"{x:g} GiB"


def hardware_misfit(step: Step, inst: InstanceType) -> tuple[MisfitKind, str] | None:
    """Why ``inst`` cannot hold one replica of ``step`` (too few accelerators, vCPUs or
    too little memory), with the message saying so; None if it can."""
    if inst.accelerator is not None and inst.accelerator_count < step.gpus:
        return (
            "accelerator_count",
            f"{inst.instance_type} has {inst.accelerator_count} {inst.accelerator}, "
            f"the step needs gpus = {step.gpus}",
        )
    if step.cpu is not None and inst.vcpus < step.cpu:
        return (
            "vcpus",
            f"{inst.instance_type} has {inst.vcpus} vCPUs, the step needs cpu = {step.cpu}",
        )
    if step.memory_gib is not None and inst.memory_gib < step.memory_gib:
        return (
            "host_memory",
            f"{inst.instance_type} has {gib(inst.memory_gib)} of memory, "
            f"the step needs memory = {gib(step.memory_gib)}",
        )
    return None
