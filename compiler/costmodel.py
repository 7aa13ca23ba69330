"""Cost model v1 (DESIGN §3, normative): options, their durations and costs, and pruning.

An *option* for a step is one way to run it: an instance type, the spot flag, a
batch size and a replica count, with the figures the optimizer works with:

- ``T``: hours of work without preemptions (startup included);
- ``E``: expected hours, preemptions included (spot); ``T`` on demand;
- ``P``: hours at the workflow's confidence (the schedule uses these);
- ``cost``: expected dollars (the budget and the objective use these).

Everything here is a pure function of the step, the catalog and the confidence.
Options that cannot exist are reported as :class:`Rejection` values, so that an
infeasible plan can say *why* (memory fit, quota, no spot price, no throughput
or duration entry). :func:`prune_dominated` removes options that can never be
needed; it is exact, so the optimizer's optimum does not change.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import CPU_KEY, Quota, Step

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
    "quota",
]


@dataclass(frozen=True, slots=True)
class Option:
    """One way to run a step, with the DESIGN §3 figures (hours and USD)."""

    step: str
    instance_type: str
    #: ``None`` for a CPU instance.
    accelerator: str | None
    accelerator_count: int
    vcpus: int
    spot: bool
    #: ``None`` for duration steps and batch-independent throughput.
    batch_size: int | None
    replicas: int
    #: Price per instance-hour of the chosen tier (spot or on-demand).
    price_usd_per_hour: float
    #: Items per second per replica (throughput steps), else ``None``.
    throughput: float | None
    #: The key the throughput / duration was found under (instance type, accelerator or ``cpu``).
    perf_key: str
    #: Preemptions per hour (0 on demand).
    preemptions_per_hour: float
    #: Hours of work lost to one preemption before restart (``c``; 0 on demand).
    checkpoint_h: float
    #: Poisson quantile ``k`` of the number of preemptions (0 on demand).
    preemptions_at_confidence: int
    T: float
    E: float
    P: float
    cost: float

    @property
    def key(self) -> tuple[str, bool, int, int]:
        """A total, deterministic order of the options of one step."""
        return (
            self.instance_type,
            self.spot,
            -1 if self.batch_size is None else self.batch_size,
            self.replicas,
        )

    def label(self) -> str:
        """``g5.xlarge spot x4, batch 32``: how a person names this option."""
        tier = "spot" if self.spot else "on-demand"
        text = f"{self.instance_type} {tier} x{self.replicas}"
        if self.batch_size is not None:
            text += f", batch {self.batch_size}"
        return text


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


# --------------------------------------------------------------------------- Poisson


def poisson_cdf(k: int, mu: float) -> float:
    """P[X <= k] for X ~ Poisson(mu), summed term by term."""
    if mu <= 0.0:
        return 1.0
    total = 0.0
    if mu < 600.0:
        term = math.exp(-mu)
        for i in range(k + 1):
            if i:
                term *= mu / i
            total += term
    else:  # exp(-mu) underflows: every term from logs
        log_mu = math.log(mu)
        for i in range(k + 1):
            total += math.exp(-mu + i * log_mu - math.lgamma(i + 1))
    return min(total, 1.0)


def poisson_quantile(mu: float, confidence: float) -> int:
    """The smallest integer k with PoissonCDF(k; mu) >= confidence."""
    if mu <= 0.0 or confidence <= 0.0:
        return 0
    if mu < 600.0:
        term = math.exp(-mu)
        total = term
        k = 0
        while total < confidence:
            k += 1
            term *= mu / k
            total += term
            if term == 0.0 and total < confidence:  # float floor reached: the tail is empty
                break
        return k
    log_mu = math.log(mu)
    total = 0.0
    k = 0
    limit = mu + 60.0 * math.sqrt(mu) + 100.0  # the tail beyond is below float precision
    while True:
        total += math.exp(-mu + k * log_mu - math.lgamma(k + 1))
        if total >= confidence or k >= limit:
            return k
        k += 1


# --------------------------------------------------------------------------- formulas


def work_hours(step: Step, replicas: int, throughput: float) -> float:
    """``T = S + W / (n * θ * 3600)`` for a throughput step."""
    items = step.items or 0
    return step.startup_h + items / (replicas * throughput * 3600.0)


def checkpoint_hours(
    step: Step, batch_size: int | None, throughput: float | None, t: float
) -> float:
    """``c``: work lost to one preemption (DESIGN §3).

    ``batch``: one batch (``b / θ / 3600``); ``none``: the whole replica's work ``T``;
    an interval: that interval. A batch checkpoint without a batch size (a
    batch-independent throughput) loses the whole replica's work, like ``none``.
    """
    ck = step.checkpoint
    if ck.kind == "interval" and ck.interval_h is not None:
        return ck.interval_h
    if ck.kind == "batch" and batch_size is not None and throughput:
        return batch_size / throughput / 3600.0
    return t


def make_option(
    step: Step,
    inst: InstanceType,
    *,
    spot: bool,
    batch_size: int | None,
    replicas: int,
    throughput: float | None,
    t: float,
    perf_key: str,
    confidence: float,
) -> Option:
    """The E / P / cost figures of one option from its work hours ``t`` (DESIGN §3)."""
    if spot:
        assert inst.spot_usd_per_hour is not None
        price = inst.spot_usd_per_hour
        lam = inst.spot_preemptions_per_hour
        r = step.startup_h
        c = checkpoint_hours(step, batch_size, throughput, t)
        e = t * (1.0 + lam * (c / 2.0 + r))
        k = poisson_quantile(lam * t, confidence)
        p = t + k * (c + r)
    else:  # on-demand: nothing is lost, E = P = T
        price, lam, c, k, e, p = inst.ondemand_usd_per_hour, 0.0, 0.0, 0, t, t
    return Option(
        step=step.name,
        instance_type=inst.instance_type,
        accelerator=inst.accelerator,
        accelerator_count=inst.accelerator_count,
        vcpus=inst.vcpus,
        spot=spot,
        batch_size=batch_size,
        replicas=replicas,
        price_usd_per_hour=price,
        throughput=throughput,
        perf_key=perf_key,
        preemptions_per_hour=lam,
        checkpoint_h=c,
        preemptions_at_confidence=k,
        T=t,
        E=e,
        P=p,
        cost=replicas * price * e,
    )


# --------------------------------------------------------------------------- enumeration


def candidate_instances(step: Step, catalog: Catalog) -> list[InstanceType]:
    """Instance types offering one of the step's accelerators (or named by it), or CPU ones.

    Hardware sizes are not checked here (see :func:`explain_rejections`).
    """
    if not step.accelerators:
        return [i for i in catalog.instances if i.accelerator is None]
    wanted = set(step.accelerators)
    return [
        i
        for i in catalog.instances
        if i.instance_type in wanted or (i.accelerator is not None and i.accelerator in wanted)
    ]


def _perf_keys(inst: InstanceType) -> tuple[str, ...]:
    """Lookup order: the instance type, then its accelerator, then ``cpu`` (CPU instances)."""
    if inst.accelerator is None:
        return (inst.instance_type, CPU_KEY)
    return (inst.instance_type, inst.accelerator)


def _spot_flags(step: Step, inst: InstanceType) -> tuple[bool, ...]:
    if step.spot == "never":
        return (False,)
    has_spot = inst.spot_usd_per_hour is not None
    if step.spot == "only":
        return (True,) if has_spot else ()
    return (False, True) if has_spot else (False,)


def _gib(x: float) -> str:
    return f"{x:g} GiB"


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
            f"{_gib(need)} cannot be checked (add accelerator_memory_gib to the catalog row)",
            batch_size=batch,
        )
    gpus = step.gpus
    have = gpus * inst.accelerator_memory_gib
    if need <= have:
        return None
    what = f"batch {batch} needs " if batch is not None else "the model needs "
    detail = f"{_gib(model)} + {batch} x {_gib(per_item)} = " if batch is not None else ""
    return Rejection(
        step.name,
        inst.instance_type,
        "accelerator_memory",
        f"{what}{detail}{_gib(round(need, 6))} of accelerator memory, more than "
        f"{gpus} x {inst.accelerator} = {_gib(round(have, 6))}",
        batch_size=batch,
    )


def _hardware_rejection(step: Step, inst: InstanceType) -> Rejection | None:
    if inst.accelerator is not None and inst.accelerator_count < step.gpus:
        return Rejection(
            step.name,
            inst.instance_type,
            "accelerator_count",
            f"{inst.instance_type} has {inst.accelerator_count} {inst.accelerator}, "
            f"the step needs gpus = {step.gpus}",
        )
    if step.cpu is not None and inst.vcpus < step.cpu:
        return Rejection(
            step.name,
            inst.instance_type,
            "vcpus",
            f"{inst.instance_type} has {inst.vcpus} vCPUs, the step needs cpu = {step.cpu}",
        )
    if step.memory_gib is not None and inst.memory_gib < step.memory_gib:
        return Rejection(
            step.name,
            inst.instance_type,
            "host_memory",
            f"{inst.instance_type} has {_gib(inst.memory_gib)} of memory, "
            f"the step needs memory = {_gib(step.memory_gib)}",
        )
    return None


def _iter_candidates(
    step: Step, catalog: Catalog, confidence: float
) -> Iterator[Option | Rejection]:
    """Every option of a step, and a rejection for every candidate that is not one."""
    for inst in candidate_instances(step, catalog):
        hw = _hardware_rejection(step, inst)
        if hw is not None:
            yield hw
            continue
        flags = _spot_flags(step, inst)
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
            yield from _throughput_candidates(step, inst, flags, confidence)
        else:
            yield from _duration_candidates(step, inst, flags, confidence)


def _throughput_candidates(
    step: Step, inst: InstanceType, flags: tuple[bool, ...], confidence: float
) -> Iterator[Option | Rejection]:
    tp = step.throughput
    assert tp is not None
    known = tp.keys()
    key = next((k for k in _perf_keys(inst) if k in known), None)
    if key is None:
        yield Rejection(
            step.name,
            inst.instance_type,
            "no_performance_entry",
            f"the throughput has no entry for {' or '.join(_perf_keys(inst))}",
        )
        return
    if step.items is None:
        yield Rejection(step.name, inst.instance_type, "no_items", "the step has no item count")
        return
    batches: Sequence[int | None]
    if tp.is_batched(key):
        batches = step.batch_sizes or tuple(sorted(tp.per_batch[key]))
    else:
        batches = (None,)
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
        for n in step.replicas.values():
            t = work_hours(step, n, rate)
            for spot in flags:
                yield make_option(
                    step,
                    inst,
                    spot=spot,
                    batch_size=b,
                    replicas=n,
                    throughput=rate,
                    t=t,
                    perf_key=key,
                    confidence=confidence,
                )


def _duration_candidates(
    step: Step, inst: InstanceType, flags: tuple[bool, ...], confidence: float
) -> Iterator[Option | Rejection]:
    dur = step.duration
    hours: float | None = None
    key = ""
    if dur is not None:
        for k in _perf_keys(inst):
            if k in dur.per_key:
                hours, key = dur.per_key[k], k
                break
        else:
            if dur.default_h is not None:
                hours, key = dur.default_h, "default"
    if hours is None:
        yield Rejection(
            step.name,
            inst.instance_type,
            "no_performance_entry",
            f"the duration has no entry for {' or '.join(_perf_keys(inst))}",
        )
        return
    fit = _fit_rejection(step, inst, None)
    if fit is not None:
        yield fit
        return
    t = step.startup_h + hours
    for n in step.replicas.values():
        for spot in flags:
            yield make_option(
                step,
                inst,
                spot=spot,
                batch_size=None,
                replicas=n,
                throughput=None,
                t=t,
                perf_key=key,
                confidence=confidence,
            )


def enumerate_with_rejections(
    step: Step, catalog: Catalog, confidence: float
) -> tuple[list[Option], list[Rejection]]:
    """:func:`enumerate_options` and :func:`explain_rejections` in one pass."""
    opts: list[Option] = []
    rejected: list[Rejection] = []
    for item in _iter_candidates(step, catalog, confidence):
        if isinstance(item, Option):
            opts.append(item)
        else:
            rejected.append(item)
    opts.sort(key=lambda o: o.key)
    return opts, rejected


def enumerate_options(step: Step, catalog: Catalog, confidence: float) -> list[Option]:
    """Every option of ``step`` per DESIGN §3, in a deterministic order (quotas not applied)."""
    return enumerate_with_rejections(step, catalog, confidence)[0]


def explain_rejections(step: Step, catalog: Catalog, confidence: float) -> list[Rejection]:
    """Why candidates of ``step`` are not options (hardware, memory fit, spot, entries)."""
    return enumerate_with_rejections(step, catalog, confidence)[1]


# --------------------------------------------------------------------------- quotas


def quota_resources(quota: Quota) -> tuple[str, ...]:
    """Resource names of a quota: ``accel:TYPE`` per accelerator type, then ``cpu``."""
    names = [f"accel:{a}" for a in sorted(quota.accelerators)]
    if quota.cpu is not None:
        names.append("cpu")
    return tuple(names)


def quota_limits(quota: Quota) -> tuple[int, ...]:
    limits = [quota.accelerators[a] for a in sorted(quota.accelerators)]
    if quota.cpu is not None:
        limits.append(quota.cpu)
    return tuple(limits)


@functools.cache
def _resource_index(resources: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    cpu = resources.index("cpu") if "cpu" in resources else -1
    accel = {r.removeprefix("accel:"): i for i, r in enumerate(resources) if r != "cpu"}
    return cpu, accel


def usage(option: Option, resources: Sequence[str]) -> tuple[int, ...]:
    """What the option's running replicas hold of each resource (whole instances)."""
    cpu, accel = _resource_index(tuple(resources))
    out = [0] * len(resources)
    if cpu >= 0:
        out[cpu] = option.replicas * option.vcpus
    if option.accelerator is not None:
        a = accel.get(option.accelerator)
        if a is not None:
            out[a] = option.replicas * option.accelerator_count
    return tuple(out)


def resource_label(resource: str) -> str:
    return resource.removeprefix("accel:")


def apply_quota(options: Sequence[Option], quota: Quota) -> tuple[list[Option], list[Rejection]]:
    """Options whose replicas alone fit the quota, and a rejection for each one that doesn't."""
    resources = quota_resources(quota)
    limits = quota_limits(quota)
    if not resources:
        return list(options), []
    kept: list[Option] = []
    rejected: list[Rejection] = []
    excess: dict[tuple[str, int], tuple[str, int, int] | None] = {}
    for o in options:
        group = (o.instance_type, o.replicas)  # usage depends on nothing else
        if group not in excess:
            use = usage(o, resources)
            over = [(r, u, q) for r, u, q in zip(resources, use, limits, strict=True) if u > q]
            excess[group] = over[0] if over else None
        first = excess[group]
        if first is None:
            kept.append(o)
            continue
        r, u, q = first
        rejected.append(
            Rejection(
                o.step,
                o.instance_type,
                "quota",
                f"{o.replicas} x {o.instance_type} hold {u} {resource_label(r)}, "
                f"more than the quota of {q}",
                spot=o.spot,
                batch_size=o.batch_size,
                replicas=o.replicas,
            )
        )
    return kept, rejected


# --------------------------------------------------------------------------- pruning


def prune_dominated(options: Sequence[Option], resources: Sequence[str] = ()) -> list[Option]:
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
        ordered = sorted(options, key=lambda o: (o.cost, o.P, o.key))
        kept: list[Option] = []
        best_p = math.inf
        for o in ordered:  # cheapest first: keep what is strictly faster than all before
            if best_p > o.P:
                kept.append(o)
                best_p = o.P
        return sorted(kept, key=lambda o: o.key)
    # Options of one instance type and replica count hold the same resources: among
    # them only the (cost, P) Pareto front can survive, which is cheap to find.
    groups: dict[tuple[str, int], list[Option]] = {}
    for o in options:
        groups.setdefault((o.instance_type, o.replicas), []).append(o)
    survivors: list[Option] = []
    uses: dict[int, tuple[int, ...]] = {}
    for members in groups.values():
        u0 = usage(members[0], resources)
        for o in prune_dominated(members):
            survivors.append(o)
            uses[id(o)] = u0
    ordered = sorted(survivors, key=lambda o: (o.cost, o.P, uses[id(o)], o.key))
    # Only an option holding nothing outside ``o``'s resources can dominate ``o``:
    # fronts are kept per support (the set of resources held).
    fronts: dict[frozenset[int], list[tuple[float, tuple[int, ...], Option]]] = {}
    for o in ordered:
        u = uses[id(o)]
        support = frozenset(i for i, v in enumerate(u) if v)
        dominated = False
        for sup, front in fronts.items():
            if not sup <= support:
                continue
            # anything dominated by a dropped option is dominated by a kept one (transitivity)
            if any(
                p <= o.P and all(a <= b for a, b in zip(v, u, strict=True)) for p, v, _ in front
            ):
                dominated = True
                break
        if not dominated:
            fronts.setdefault(support, []).append((o.P, u, o))
    return sorted((o for front in fronts.values() for _, _, o in front), key=lambda o: o.key)
