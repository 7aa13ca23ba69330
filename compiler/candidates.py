"""Candidates of a step (DESIGN §3): the instance types and batch sizes it may run on.

A *family* is one instance type and one batch size (none for duration steps and
batch-independent throughput) with the tiers the step allows on it; the options
of a family differ only in replicas and tier (:mod:`exo.compiler.costmodel`).
:func:`families` walks the catalog once per step and yields, for every candidate
that cannot run the step, a :class:`Rejection` saying why: too few accelerators,
vCPUs or memory, the batch does not fit in accelerator memory, no spot price, no
throughput or duration entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.hardware import candidate_instances, gib, hardware_misfit, perf_keys
from exo.compiler.ir import Step

#: Why a candidate does not become an option.
RejectionKind = Literal[
    "accelerator_count",
    "vcpus",
    "host_memory",
    "accelerator_memory",
    "accelerator_memory_unknown",
    "no_performance_entry",
    "no_spot_price",
    "no_items",
    "unpromisable",
    "out_of_range",
    "quota",
]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A candidate that is not an option, and why (for explanations)."""

    step: str
    instance_type: str
    kind: RejectionKind
    message: str
    spot: bool | None = None
    batch_size: int | None = None
    replicas: int | None = None
    #: Expected cost the candidate would have had (spot options that cannot be promised).
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class Family:
    """Options that differ only in replicas and tier: one instance type and batch size."""

    inst: InstanceType
    flags: tuple[bool, ...]
    batch_size: int | None
    #: Items per second per replica; ``None`` for duration steps.
    throughput: float | None
    #: Hours of work of a duration step (startup excluded).
    duration_h: float | None
    perf_key: str
    per_instance: int


def replicas_per_instance(step: Step, inst: InstanceType) -> int:
    """``k_i``: replicas one instance holds.

    GPU steps: ``floor(accelerator_count / gpus)`` (DESIGN §3), and no more than
    the instance's vCPUs and memory hold when the step sets ``cpu`` / ``memory``
    per replica. CPU steps: 1.
    """
    if inst.accelerator is None or step.gpus <= 0:
        return 1
    k = inst.accelerator_count // step.gpus
    if step.cpu:
        k = min(k, inst.vcpus // step.cpu)
    if step.memory_gib:
        k = min(k, int(inst.memory_gib // step.memory_gib))
    return max(k, 1)


def spot_flags(step: Step, inst: InstanceType) -> tuple[bool, ...]:
    if step.spot == "never":
        return (False,)
    has_spot = inst.spot_usd_per_hour is not None
    if step.spot == "only":
        return (True,) if has_spot else ()
    return (False, True) if has_spot else (False,)


def _fit_rejection(step: Step, inst: InstanceType, batch: int | None) -> Rejection | None:
    """``model_memory + b * memory_per_item <= gpus * accel_memory`` (GPU instances only)."""
    if inst.accelerator is None:
        return None
    model = step.model_memory_gib or 0.0
    per_item = step.memory_per_item_gib or 0.0
    if model == 0.0 and per_item == 0.0:
        return None
    need = model + (batch or 0) * per_item
    if inst.accelerator_memory_gib is None:
        return Rejection(
            step.name,
            inst.instance_type,
            "accelerator_memory_unknown",
            f"the memory of {inst.accelerator} is unknown, so the fit of "
            f"{gib(need)} cannot be checked (add accelerator_memory_gib to the catalog row)",
            batch_size=batch,
        )
    gpus = step.gpus
    have = gpus * inst.accelerator_memory_gib
    if need <= have:
        return None
    what = f"batch {batch} needs " if batch is not None else "the model needs "
    detail = f"{gib(model)} + {batch} x {gib(per_item)} = " if batch is not None else ""
    return Rejection(
        step.name,
        inst.instance_type,
        "accelerator_memory",
        f"{what}{detail}{gib(round(need, 6))} of accelerator memory, more than "
        f"{gpus} x {inst.accelerator} = {gib(round(have, 6))}",
        batch_size=batch,
    )


def hardware_rejection(step: Step, inst: InstanceType) -> Rejection | None:
    misfit = hardware_misfit(step, inst)
    if misfit is None:
        return None
    kind, message = misfit
    return Rejection(step.name, inst.instance_type, kind, message)


def families(step: Step, catalog: Catalog) -> Iterator[Family | Rejection]:
    """Each (instance type, batch size) the step may run on, or why a candidate may not."""
    for inst in candidate_instances(step, catalog):
        hw = hardware_rejection(step, inst)
        if hw is not None:
            yield hw
            continue
        flags = spot_flags(step, inst)
        if not flags:
            yield Rejection(
                step.name,
                inst.instance_type,
                "no_spot_price",
                f"{inst.instance_type} has no spot price and the step sets spot = only",
                spot=True,
            )
            continue
        if step.throughput is not None:
            yield from _throughput_families(step, inst, flags)
        else:
            yield from _duration_families(step, inst, flags)


def _no_entry(step: Step, inst: InstanceType, what: str) -> Rejection:
    return Rejection(
        step.name,
        inst.instance_type,
        "no_performance_entry",
        f"the {what} has no entry for {' or '.join(perf_keys(inst))}",
    )


def _throughput_families(
    step: Step, inst: InstanceType, flags: tuple[bool, ...]
) -> Iterator[Family | Rejection]:
    tp = step.throughput
    assert tp is not None
    known = tp.keys()
    key = next((k for k in perf_keys(inst) if k in known), None)
    if key is None:
        yield _no_entry(step, inst, "throughput")
        return
    if step.items is None:
        yield Rejection(step.name, inst.instance_type, "no_items", "the step has no item count")
        return
    batches: Sequence[int | None]
    if tp.is_batched(key):
        batches = step.batch_sizes or tuple(sorted(tp.per_batch[key]))
    else:
        batches = (None,)
    per = replicas_per_instance(step, inst)
    for b in batches:
        rate = tp.rate(key, b)
        if rate is None or rate <= 0.0:
            yield Rejection(
                step.name,
                inst.instance_type,
                "no_performance_entry",
                f"the throughput of {key} has no entry for batch {b}",
                batch_size=b,
            )
            continue
        fit = _fit_rejection(step, inst, b)
        if fit is not None:
            yield fit
            continue
        yield Family(inst, flags, b, rate, None, key, per)


def _duration_families(
    step: Step, inst: InstanceType, flags: tuple[bool, ...]
) -> Iterator[Family | Rejection]:
    dur = step.duration
    hours: float | None = None
    key = ""
    if dur is not None:
        for k in perf_keys(inst):
            if k in dur.per_key:
                hours, key = dur.per_key[k], k
                break
        else:
            if dur.default_h is not None:
                hours, key = dur.default_h, "default"
    if hours is None:
        yield _no_entry(step, inst, "duration")
        return
    fit = _fit_rejection(step, inst, None)
    if fit is not None:
        yield fit
        return
    yield Family(inst, flags, None, None, hours, key, 1)


def has_spot_candidate(step: Step, catalog: Catalog) -> bool:
    """Whether the step has a spot option before unpromisable ones are dropped (counts in N)."""
    return any(isinstance(f, Family) and True in f.flags for f in families(step, catalog))
