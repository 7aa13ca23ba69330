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
    kept: list[Option] = []
    rejected: list[Rejection] = []
    excess: dict[tuple[str, int], tuple[ResourceKey, int, int] | None] = {}
    for o in options:
        group = (o.instance_type, o.instances)  # usage depends on nothing else
        if group not in excess:
            use = usage(o, resources)
            over = [(r, u, q) for r, u, q in zip(resources, use, limits, strict=True) if u > q]
            excess[group] = over[0] if over else None
        first = excess[group]
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
    """
    if len(options) <= 1:
        return list(options)
    if not resources:
        return [o for _, o in sorted((_key(o), o) for o in _fastest_first(options))]
    # Options of one instance type and instance count hold the same resources: among
    # them only the (cost, P) Pareto front can survive, which is cheap to find.
    groups: dict[tuple[str, int], list[Option]] = {}
    for o in options:
        groups.setdefault((o.instance_type, o.instances), []).append(o)
    ordered: list[tuple[float, float, tuple[int, ...], tuple[str, bool, int, int], Option]] = []
    for members in groups.values():
        u0 = usage(members[0], resources)
        ordered.extend((o.cost, o.P, u0, _key(o), o) for o in _fastest_first(members))
    ordered.sort(key=lambda e: e[:4])
    # Only an option holding nothing outside ``o``'s resources can dominate ``o``:
    # fronts are kept per support (the set of resources held).
    fronts: dict[frozenset[int], list[tuple[float, tuple[int, ...]]]] = {}
    supports: dict[tuple[int, ...], frozenset[int]] = {}
    kept: list[tuple[tuple[str, bool, int, int], Option]] = []
    for _, p, u, key, o in ordered:
        support = supports.get(u)
        if support is None:
            support = supports[u] = frozenset(i for i, v in enumerate(u) if v)
        if not _dominated(p, u, support, fronts):
            fronts.setdefault(support, []).append((p, u))
            kept.append((key, o))
    kept.sort(key=lambda e: e[0])
    return [o for _, o in kept]


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


def _dominated(
    p: float,
    u: tuple[int, ...],
    support: frozenset[int],
    fronts: dict[frozenset[int], list[tuple[float, tuple[int, ...]]]],
) -> bool:
    """Whether a kept option (all come before, so no dearer) is no slower and holds no more."""
    for sup, front in fronts.items():
        if not sup <= support:
            continue
        for fp, fu in front:
            # anything dominated by a dropped option is dominated by a kept one (transitivity)
            if fp <= p and (fu is u or all(a <= b for a, b in zip(fu, u, strict=True))):
                return True
    return False
