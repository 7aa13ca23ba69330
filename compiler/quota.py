"""Quota resources (DESIGN §3): their keys, what an option holds, and exact dominance pruning.

A workflow's quota caps accelerators by type and vCPUs at every instant. Each
capped resource has a :data:`ResourceKey`: ``accel:NAME`` for an accelerator
type, :data:`CPU_RESOURCE` for vCPUs. An option holds all the accelerators and
vCPUs of its ``m`` instances while it runs (:func:`usage`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Final, NewType

from exo.compiler.candidates import Rejection
from exo.compiler.ir import Quota
from exo.compiler.option import Option

#: A quota resource: ``accel:NAME`` (an accelerator type) or ``cpu`` (vCPUs).
ResourceKey = NewType("ResourceKey", str)
#: The vCPUs of a quota.
CPU_RESOURCE: Final = ResourceKey("cpu")
_ACCEL = "accel:"


def accelerator_resource(accelerator: str) -> ResourceKey:
    """The key of an accelerator type's quota."""
    return ResourceKey(_ACCEL + accelerator)


def accelerator_of(resource: ResourceKey) -> str | None:
    """The accelerator type a key caps (``None`` for vCPUs)."""
    return resource.removeprefix(_ACCEL) if resource.startswith(_ACCEL) else None


def resource_label(resource: ResourceKey) -> str:
    """How a person names the resource: the accelerator type, or ``cpu``."""
    return accelerator_of(resource) or resource


def quota_resources(quota: Quota) -> tuple[ResourceKey, ...]:
    """Resource keys of a quota: one per accelerator type (sorted), then ``cpu``."""
    names = [accelerator_resource(a) for a in sorted(quota.accelerators)]
    if quota.cpu is not None:
        names.append(CPU_RESOURCE)
    return tuple(names)


def quota_limits(quota: Quota) -> tuple[int, ...]:
    limits = [quota.accelerators[a] for a in sorted(quota.accelerators)]
    if quota.cpu is not None:
        limits.append(quota.cpu)
    return tuple(limits)


@functools.cache
def _resource_index(resources: tuple[ResourceKey, ...]) -> tuple[int, dict[str, int]]:
    cpu = resources.index(CPU_RESOURCE) if CPU_RESOURCE in resources else -1
    accel = {a: i for i, r in enumerate(resources) if (a := accelerator_of(r)) is not None}
    return cpu, accel


def usage(option: Option, resources: Sequence[ResourceKey]) -> tuple[int, ...]:
    """What the option's instances hold of each resource (all their accelerators and vCPUs)."""
    cpu, accel = _resource_index(tuple(resources))
    out = [0] * len(resources)
    if cpu >= 0:
        out[cpu] = option.instances * option.vcpus
    if option.accelerator is not None:
        a = accel.get(option.accelerator)
        if a is not None:
            out[a] = option.instances * option.accelerator_count
    return tuple(out)


def apply_quota(options: Sequence[Option], quota: Quota) -> tuple[list[Option], list[Rejection]]:
    """Options whose instances alone fit the quota, and a rejection for each one that doesn't."""
    resources = quota_resources(quota)
    limits = quota_limits(quota)
    if not resources:
        return list(options), []
    # usage depends on the instance type and count only: one check per group
    groups = {(o.instance_type, o.instances): o for o in options}
    excess: dict[tuple[str, int], tuple[ResourceKey, int, int] | None] = {}
    for group, o in groups.items():
        use = usage(o, resources)
        over = [(r, u, q) for r, u, q in zip(resources, use, limits, strict=True) if u > q]
        excess[group] = over[0] if over else None
    if not any(excess.values()):  # the common case: the quota holds every option
        return list(options), []
    kept: list[Option] = []
    rejected: list[Rejection] = []
    for o in options:
        first = excess[(o.instance_type, o.instances)]
        if first is None:
            kept.append(o)
            continue
        r, u, q = first
        count = f"{o.instances} instance{'s' if o.instances != 1 else ''}"
        rejected.append(
            Rejection(
                o.step,
                o.instance_type,
                "quota",
                f"{o.replicas} replicas on {count} of {o.instance_type} hold {u} "
                f"{resource_label(r)}, more than the quota of {q}",
                spot=o.spot,
                batch_size=o.batch_size,
                replicas=o.replicas,
                cost=o.cost,
            )
        )
    return kept, rejected


def prune_dominated(
    options: Sequence[Option], resources: Sequence[ResourceKey] = ()
) -> list[Option]:
    """Drop every option another option of the same step dominates (exact).

    ``a`` dominates ``b`` when ``a.cost <= b.cost``, ``a.P <= b.P`` and ``a`` holds no
    more of any quota resource than ``b``. Replacing ``b`` by ``a`` in any plan keeps
    every constraint (the interval ``[start, start + P)`` shrinks, the usage does
    not grow) and does not raise the cost or the makespan, so some optimum uses
    only undominated options. Among options with equal figures the first in
    :attr:`Option.key` order is kept. Input options must belong to one step.

    One pass in ``(cost, P, usage, key)`` order: an option is dominated exactly
    when an option kept before it holds no more and is no slower (anything a
    dropped option dominates, the kept one that dropped it dominates too).
    ``reach[u]`` is the least ``P`` kept so far among usages within ``u``, so the
    test is one look-up; options of one instance type and count share a usage.
    """
    if len(options) <= 1:
        return list(options)
    if not resources:
        return [o for _, o in sorted((_key(o), o) for o in _fastest_first(options))]
    res = tuple(resources)
    guard = _guard(len(res))
    uses: dict[tuple[str, int], int] = {}
    packed: list[int] = []
    rows: list[tuple[float, float, int, str, bool, int, int, int, int]] = []
    for i, o in enumerate(options):
        group = (o.instance_type, o.instances)  # usage depends on nothing else
        g = uses.get(group)
        if g is None:
            g = uses[group] = len(packed)
            packed.append(_pack(usage(o, res)))
        batch = -1 if o.batch_size is None else o.batch_size
        rows.append((o.cost, o.P, packed[g], o.instance_type, o.spot, batch, o.replicas, i, g))
    rows.sort()  # the position (unique) decides before options would be compared
    within: dict[int, list[int]] = {}
    reach = [math.inf] * len(packed)
    kept: list[tuple[str, bool, int, int, int]] = []
    for _, p, pu, it, spot, batch, replicas, i, g in rows:
        if reach[g] <= p:
            continue
        kept.append((it, spot, batch, replicas, i))
        more = within.get(g)
        if more is None:  # the usages that hold no less of every resource than this one
            more = within[g] = [
                j for j, pv in enumerate(packed) if ((pv | guard) - pu) & guard == guard
            ]
        for v in more:
            if reach[v] > p:
                reach[v] = p
    kept.sort()
    return [options[e[-1]] for e in kept]


#: Bits per resource when a usage is packed into one integer (the top one a guard).
_FIELD = 64


@functools.cache
def _pack(usage: tuple[int, ...]) -> int:
    """A usage as one integer, the first resource in the highest field.

    Integers then order as the tuples do, and ``u <= v`` everywhere is one
    subtraction (:func:`_guard`): no field borrows from the next, and a field's
    guard bit survives exactly when ``v`` holds at least ``u`` there.
    """
    out = 0
    for x in usage:
        if not 0 <= x < 1 << (_FIELD - 1):
            raise ValueError(f"a usage of {x} does not fit a packed field")
        out = (out << _FIELD) | x
    return out


@functools.cache
def _guard(width: int) -> int:
    """The guard bits of packed usages of ``width`` resources (see :func:`_pack`)."""
    return sum(1 << (k * _FIELD + _FIELD - 1) for k in range(width))


def _key(o: Option) -> tuple[str, bool, int, int]:
    """:attr:`Option.key`, without the property's cost (called for every option)."""
    return (o.instance_type, o.spot, -1 if o.batch_size is None else o.batch_size, o.replicas)


def _fastest_first(options: Sequence[Option]) -> list[Option]:
    """The (cost, P) Pareto front: cheapest first, each strictly faster than all before it."""
    ordered = sorted(options, key=lambda o: (o.cost, o.P, _key(o)))
    kept: list[Option] = []
    best_p = math.inf
    for o in ordered:
        if best_p > o.P:
            kept.append(o)
            best_p = o.P
    return kept
