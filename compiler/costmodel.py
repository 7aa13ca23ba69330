"""Cost model v2 (DESIGN §3, normative): options, their durations and costs, and pruning.

An *option* for a step is one way to run it: an instance type, the spot flag, a
batch size and a replica count, with the figures the optimizer works with:

- ``T``: hours of work without preemptions (startup included);
- ``E``: exact expected hours of one instance, preemptions included (spot);
  ``T`` on demand (:mod:`exo.compiler.preemption`);
- ``P``: hours at the workflow's confidence (the schedule uses these);
- ``cost``: expected dollars of the ``m`` instances (the budget and the
  objective use these).

Replicas are packed: one instance holds ``k_i`` replicas, so ``n`` replicas rent
``m = ceil(n / k_i)`` instances, which is what the price and the quotas count.
Everything here is a pure function of the step, the catalog and the
:class:`~exo.compiler.preemption.Confidence`. Candidates that are not options are
:class:`Rejection` values, so that an infeasible plan can say *why* (memory fit,
quota, no spot price, no throughput or duration entry, spot that cannot be
promised). Every loop is bounded: a replica range is walked by instance counts,
at most :data:`MAX_COUNTS` (+ a ladder) per instance type and batch size.
:func:`prune_dominated` removes options that can never be needed; it is exact.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from exo.compiler.candidates import (
    Family,
    families,
    has_spot_candidate,
)
from exo.compiler.candidates import Rejection as Rejection  # re-exported: part of this API
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import Program, Quota, Step
from exo.compiler.preemption import (
    MAX_PREEMPTIONS,
    Confidence,
    expected_hours,
    expected_hours_array,
    preemption_quantile,
    preemption_quantiles,
)

#: Instance counts per instance type and batch size enumerated one by one.
MAX_COUNTS = 256
#: Beyond that: this many consecutive counts from the first that can meet the deadline ...
DENSE_COUNTS = 192
#: ... and a geometric ladder of this many counts up to the largest.
LADDER_COUNTS = 64
#: A plan meets its deadline within this many hours (``problem.TOL_H``).
DEADLINE_TOL_H = 1e-6
#: Figures beyond these are not represented (the option is rejected as out of range).
MAX_HOURS = 1e12
MAX_USD = 1e15


class Option(NamedTuple):
    """One way to run a step, with the DESIGN §3 figures (hours and USD).

    A named tuple (immutable, hashable, cheap to build: a workflow of 1,000
    steps has about 85,000 of them).
    """

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
    #: Hours of work lost to one preemption at most (``c``; 0 on demand).
    checkpoint_h: float
    #: Preemptions during ``P`` allowed at the confidence (``k``; 0 on demand).
    preemptions_at_confidence: int
    T: float
    E: float
    P: float
    cost: float
    #: Instances rented: ``m = ceil(replicas / per_instance)``.
    instances: int = 1
    #: Replicas one instance holds (``k_i``).
    per_instance: int = 1

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
        return option_label(
            self.instance_type, self.spot, self.replicas, self.batch_size, self.instances
        )


def option_label(
    instance_type: str, spot: bool, replicas: int, batch_size: int | None, instances: int
) -> str:
    """``p4d.24xlarge spot x8 on 1 instance, batch 32`` (instances named when they differ)."""
    tier = "spot" if spot else "on-demand"
    text = f"{instance_type} {tier} x{replicas}"
    if instances != replicas:
        text += f" on {instances} instance{'s' if instances != 1 else ''}"
    if batch_size is not None:
        text += f", batch {batch_size}"
    return text


@dataclass(frozen=True, slots=True)
class Sampled:
    """Instance counts ``first..last`` of one family that were not enumerated.

    Only a replica range of more than :data:`MAX_COUNTS` instance counts is
    sampled. Every skipped option costs at least ``cost_lb`` and takes at least
    ``p_lb`` hours, which is what proves (or bounds) the optimum afterwards.
    """

    step: str
    instance_type: str
    spot: bool
    batch_size: int | None
    first: int
    last: int
    cost_lb: float
    p_lb: float


@dataclass(frozen=True, slots=True)
class Enumerated:
    """A step's options, why other candidates are not options, and what was sampled."""

    options: list[Option]
    rejections: list[Rejection]
    sampled: list[Sampled]


# --------------------------------------------------------------------------- formulas


def work_hours(step: Step, replicas: int, throughput: float) -> float:
    """``T = S + W / (n * θ * 3600)`` for a throughput step (``inf`` when it overflows)."""
    items = step.items or 0
    return step.startup_h + items / (replicas * throughput * 3600.0)


def checkpoint_hours(
    step: Step, batch_size: int | None, throughput: float | None, t: float
) -> float:
    """``c``: the work one preemption can lose (DESIGN §3).

    ``batch``: one batch (``b / θ / 3600``); an interval: that interval; ``none``:
    all the work, ``T - S``. A batch checkpoint without a batch size (a
    batch-independent throughput) has no batch to resume from and counts as ``none``.
    """
    ck = step.checkpoint
    if ck.kind == "interval" and ck.interval_h is not None:
        return ck.interval_h
    if ck.kind == "batch" and batch_size is not None and throughput:
        return batch_size / throughput / 3600.0
    return max(t - step.startup_h, 0.0)


def _too_large(t: float, e: float, p: float) -> bool:
    """Beyond :data:`MAX_HOURS` (``inf`` and ``nan`` included)."""
    return not (t <= MAX_HOURS and e <= MAX_HOURS and p <= MAX_HOURS)


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
    confidence: Confidence,
    per_instance: int = 1,
    preemptions: int | None = -1,
    expected: float | None = None,
) -> Option | Rejection:
    """The E / P / cost figures of one candidate from its work hours ``t`` (DESIGN §3).

    A spot candidate whose work cannot be promised at the confidence (no ``k <=
    10,000``) and a candidate whose figures are beyond what the model represents
    (more than 10^12 hours or $10^15) are rejections. ``preemptions``: ``k`` when
    the caller computed it already (``None``: no ``k`` exists), ``-1`` to compute it;
    ``expected``: ``E`` when the caller computed it already.
    """
    m = -(-replicas // per_instance)
    price = inst.spot_usd_per_hour if spot else inst.ondemand_usd_per_hour
    assert price is not None
    lam = inst.spot_preemptions_per_hour if spot else 0.0
    c = checkpoint_hours(step, batch_size, throughput, t) if spot else 0.0
    k = 0
    e = p = t
    if spot and lam > 0.0:
        r = step.startup_h
        got = (
            preemption_quantile(t, c + r, lam, confidence.miss(m))
            if preemptions == -1
            else preemptions
        )
        e = expected_hours(t, r, c, lam) if expected is None else expected
        if got is None:
            return _unpromisable(step, inst, batch_size, replicas, m, t, c, lam, price * m * e)
        k = got
        p = t + k * (c + r)
    cost = m * price * e
    if _too_large(t, e, p) or not math.isfinite(cost) or cost > MAX_USD:
        return Rejection(
            step.name,
            inst.instance_type,
            "out_of_range",
            f"{replicas} x {inst.instance_type} ({'spot' if spot else 'on-demand'}) would "
            f"take {p:.3g} h and cost ${cost:.3g}, beyond what the model represents "
            f"(at most {MAX_HOURS:.0e} h and ${MAX_USD:.0e})",
            spot=spot,
            batch_size=batch_size,
            replicas=replicas,
        )
    return Option(  # positional, in field order: the fast way to build a named tuple
        step.name,
        inst.instance_type,
        inst.accelerator,
        inst.accelerator_count,
        inst.vcpus,
        spot,
        batch_size,
        replicas,
        price,
        throughput,
        perf_key,
        lam,
        c,
        k,
        t,
        e,
        p,
        cost,
        m,
        per_instance,
    )


def _unpromisable(
    step: Step,
    inst: InstanceType,
    batch_size: int | None,
    replicas: int,
    instances: int,
    t: float,
    c: float,
    lam: float,
    cost: float,
) -> Rejection:
    loss = c + step.startup_h
    if lam * loss >= 1.0:
        why = (
            f"a preemption costs up to {loss:.3g} h (c + r) while preemptions come every "
            f"{1 / lam:.3g} h on average (λ = {lam:g}/h)"
        )
    else:
        why = f"more than {MAX_PREEMPTIONS:,} preemptions would be needed (λT = {lam * t:.3g})"
    fix = "checkpoint more often" if step.checkpoint.kind != "none" else "add checkpoints"
    return Rejection(
        step.name,
        inst.instance_type,
        "unpromisable",
        f"spot cannot promise {t:.3g} h of work on {instances} x {inst.instance_type}: "
        f"{why}; {fix} or use more replicas",
        spot=True,
        batch_size=batch_size,
        replicas=replicas,
        cost=cost if math.isfinite(cost) else None,
    )


# --------------------------------------------------------------------------- replica counts


def instance_counts(
    low: int, high: int, per_instance: int, *, first_useful: int | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(m, n)`` pairs to enumerate for replicas ``low..high``, and skipped ``m`` ranges.

    For ``m`` instances only the most replicas they hold, ``n = min(m k, high)``,
    can be in an optimum: fewer replicas on the same instances cost more and take
    longer. Up to :data:`MAX_COUNTS` instance counts are all enumerated; a larger
    range (a huge ``replicas`` range) keeps the smallest and the largest count,
    :data:`DENSE_COUNTS` consecutive counts from ``first_useful`` (the first
    that can meet the deadline) and a geometric ladder above them; what lies
    between is returned as skipped ranges.
    """
    m_lo = -(-low // per_instance)
    m_hi = -(-high // per_instance)

    def pair(m: int) -> tuple[int, int]:
        return m, min(m * per_instance, high)

    if m_hi - m_lo < MAX_COUNTS:
        return [pair(m) for m in range(m_lo, m_hi + 1)], []
    start = max(m_lo, min(first_useful or m_lo, m_hi))
    chosen = {m_lo, m_hi, *range(start, min(start + DENSE_COUNTS, m_hi + 1))}
    top = min(start + DENSE_COUNTS, m_hi)
    if top < m_hi:
        ratio = (m_hi / top) ** (1.0 / LADDER_COUNTS)
        chosen.update(min(m_hi, round(top * ratio**i)) for i in range(LADDER_COUNTS + 1))
    ms = sorted(chosen)
    gaps = [(a + 1, b - 1) for a, b in itertools.pairwise(ms) if b - a > 1]
    return [pair(m) for m in ms], gaps


def _first_useful(step: Step, fam: Family, high: int, deadline_h: float | None) -> int | None:
    """The fewest instances whose work hours ``T`` fit the deadline (``P >= T``)."""
    if deadline_h is None or fam.throughput is None:
        return None
    room = deadline_h + DEADLINE_TOL_H - step.startup_h
    if room <= 0.0:
        return None
    need = (step.items or 0) / (room * fam.throughput * 3600.0)
    if not math.isfinite(need) or need > high:
        return None
    return max(1, math.ceil(need / fam.per_instance))


def _sampled(
    step: Step, fam: Family, spot: bool, gap: tuple[int, int], high: int
) -> Sampled | None:
    """Lower bounds on the cost and duration of the options of a skipped range.

    ``E >= T`` and ``n <= m k``, so ``cost = m p E >= p (m S + W / (k θ 3600))``; and
    ``P >= T >= S + W / (n θ 3600)`` with ``n <= min(last k, high)``. ``None`` for a
    spot range none of whose options can be promised (``λ (c + r) >= 1`` for all).
    """
    assert fam.throughput is not None
    price = fam.inst.spot_usd_per_hour if spot else fam.inst.ondemand_usd_per_hour
    assert price is not None
    first, last = gap
    items = step.items or 0
    per_hour = fam.throughput * 3600.0
    cost_lb = price * (first * step.startup_h + items / (fam.per_instance * per_hour))
    p_lb = step.startup_h + items / (min(last * fam.per_instance, high) * per_hour)
    if spot:
        # c + r: fixed for batch / interval checkpoints; T >= p_lb without checkpoints
        loss = checkpoint_hours(step, fam.batch_size, fam.throughput, p_lb) + step.startup_h
        if fam.inst.spot_preemptions_per_hour * loss >= 1.0:
            return None
    return Sampled(
        step.name, fam.inst.instance_type, spot, fam.batch_size, first, last, cost_lb, p_lb
    )


@dataclass(frozen=True, slots=True)
class _Row:
    """One candidate before its figures: a family, a replica count, a tier."""

    fam: Family
    instances: int
    replicas: int
    spot: bool
    t: float


def _family_rows(
    step: Step, fam: Family, deadline_h: float | None, sampled: list[Sampled]
) -> list[_Row]:
    """The family's (instance count, replicas, tier) candidates; huge ranges are sampled."""
    if fam.throughput is None:  # a duration step: one replica
        assert fam.duration_h is not None
        t = step.startup_h + fam.duration_h
        return [_Row(fam, 1, 1, spot, t) for spot in fam.flags]
    high = step.replicas.max
    useful = _first_useful(step, fam, high, deadline_h)
    counts, gaps = instance_counts(step.replicas.min, high, fam.per_instance, first_useful=useful)
    for spot in fam.flags:
        for gap in gaps:
            got = _sampled(step, fam, spot, gap, high)
            if got is not None:
                sampled.append(got)
    rows: list[_Row] = []
    for m, n in counts:
        t = work_hours(step, n, fam.throughput)
        rows.extend(_Row(fam, m, n, spot, t) for spot in fam.flags)
    return rows


def _spot_figures(
    step: Step, rows: Sequence[_Row], confidence: Confidence
) -> tuple[list[int | None], list[float | None]]:
    """``k`` and ``E`` of every row (0 and ``None`` on demand), spot rows in one array each."""
    ks: list[int | None] = [0] * len(rows)
    es: list[float | None] = [None] * len(rows)
    spot = [i for i, r in enumerate(rows) if r.spot and r.fam.inst.spot_preemptions_per_hour > 0]
    if not spot:
        return ks, es
    miss: dict[int, float] = {}
    ts, cs, loss, rates, eps = [], [], [], [], []
    for i in spot:
        r = rows[i]
        c = checkpoint_hours(step, r.fam.batch_size, r.fam.throughput, r.t)
        ts.append(r.t)
        cs.append(c)
        loss.append(c + step.startup_h)
        rates.append(r.fam.inst.spot_preemptions_per_hour)
        if r.instances not in miss:
            miss[r.instances] = confidence.miss(r.instances)
        eps.append(miss[r.instances])
    got_k = preemption_quantiles(ts, loss, rates, eps)
    got_e = expected_hours_array(ts, step.startup_h, cs, rates)
    for i, k, e in zip(spot, got_k, got_e, strict=True):
        ks[i] = k
        es[i] = e
    return ks, es


def _as_confidence(confidence: Confidence | float) -> Confidence:
    return confidence if isinstance(confidence, Confidence) else Confidence(confidence, 1)


def enumerate_step(
    step: Step,
    catalog: Catalog,
    confidence: Confidence | float,
    *,
    deadline_h: float | None = None,
) -> Enumerated:
    """Every option of ``step`` (DESIGN §3), every rejected candidate, and any sampled ranges.

    ``confidence``: the workflow's :class:`Confidence` (a float is a step's share
    ``q_s`` itself). ``deadline_h`` only steers which instance counts of a huge
    replica range are enumerated one by one (see :func:`instance_counts`).
    """
    conf = _as_confidence(confidence)
    opts: list[Option] = []
    rejected: list[Rejection] = []
    sampled: list[Sampled] = []
    rows: list[_Row] = []
    for fam in families(step, catalog):
        if isinstance(fam, Rejection):
            rejected.append(fam)
        else:
            rows.extend(_family_rows(step, fam, deadline_h, sampled))
    ks, es = _spot_figures(step, rows, conf)
    for r, k, e in zip(rows, ks, es, strict=True):
        item = make_option(
            step,
            r.fam.inst,
            spot=r.spot,
            batch_size=r.fam.batch_size,
            replicas=r.replicas,
            throughput=r.fam.throughput,
            t=r.t,
            perf_key=r.fam.perf_key,
            confidence=conf,
            per_instance=r.fam.per_instance,
            preemptions=k,
            expected=e,
        )
        if isinstance(item, Option):
            opts.append(item)
        else:
            rejected.append(item)
    opts.sort(key=lambda o: o.key)
    return Enumerated(opts, rejected, sampled)


def enumerate_with_rejections(
    step: Step, catalog: Catalog, confidence: Confidence | float
) -> tuple[list[Option], list[Rejection]]:
    """:func:`enumerate_options` and :func:`explain_rejections` in one pass."""
    got = enumerate_step(step, catalog, confidence)
    return got.options, got.rejections


def enumerate_options(step: Step, catalog: Catalog, confidence: Confidence | float) -> list[Option]:
    """Every option of ``step`` per DESIGN §3, in a deterministic order (quotas not applied)."""
    return enumerate_step(step, catalog, confidence).options


def explain_rejections(
    step: Step, catalog: Catalog, confidence: Confidence | float
) -> list[Rejection]:
    """Why candidates of ``step`` are not options (hardware, memory fit, spot, entries)."""
    return enumerate_step(step, catalog, confidence).rejections


def workflow_confidence(program: Program, catalog: Catalog) -> Confidence:
    """The workflow's confidence and ``N``, its steps with a spot option (DESIGN §3)."""
    n = sum(1 for s in program.steps if has_spot_candidate(s, catalog))
    return Confidence(program.workflow.confidence, max(n, 1))


def option_for(
    step: Step,
    catalog: Catalog,
    confidence: Confidence | float,
    *,
    instance_type: str,
    spot: bool,
    batch_size: int | None,
    replicas: int,
) -> Option | Rejection | None:
    """The one candidate of ``step`` with these choices (any replica count in range).

    ``None`` when it is not a candidate at all (wrong hardware, batch or tier).
    """
    conf = _as_confidence(confidence)
    for fam in families(step, catalog):
        if (
            isinstance(fam, Rejection)
            or fam.inst.instance_type != instance_type
            or fam.batch_size != batch_size
            or spot not in fam.flags
        ):
            continue
        if fam.throughput is None:
            assert fam.duration_h is not None
            t = step.startup_h + fam.duration_h
        else:
            t = work_hours(step, replicas, fam.throughput)
        return make_option(
            step,
            fam.inst,
            spot=spot,
            batch_size=batch_size,
            replicas=replicas,
            throughput=fam.throughput,
            t=t,
            perf_key=fam.perf_key,
            confidence=conf,
            per_instance=fam.per_instance,
        )
    return None


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


def resource_label(resource: str) -> str:
    return resource.removeprefix("accel:")


def apply_quota(options: Sequence[Option], quota: Quota) -> tuple[list[Option], list[Rejection]]:
    """Options whose instances alone fit the quota, and a rejection for each one that doesn't."""
    resources = quota_resources(quota)
    limits = quota_limits(quota)
    if not resources:
        return list(options), []
    kept: list[Option] = []
    rejected: list[Rejection] = []
    excess: dict[tuple[str, int], tuple[str, int, int] | None] = {}
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
    # Options of one instance type and instance count hold the same resources: among
    # them only the (cost, P) Pareto front can survive, which is cheap to find.
    groups: dict[tuple[str, int], list[Option]] = {}
    for o in options:
        groups.setdefault((o.instance_type, o.instances), []).append(o)
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
