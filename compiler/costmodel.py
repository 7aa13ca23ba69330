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
at most :data:`MAX_COUNTS` (+ a ladder) per instance type and batch size
(:mod:`exo.compiler.replicacounts`, with the bounds on the counts not walked).
:func:`prune_dominated` removes options that can never be needed; it is exact.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from exo.compiler.candidates import (
    Family,
    families,
    has_spot_candidate,
)
from exo.compiler.candidates import Rejection as Rejection  # re-exported: part of this API
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import Program, Step
from exo.compiler.option import Option as Option  # re-exported: part of this API
from exo.compiler.option import option_label as option_label
from exo.compiler.preemption import (
    MAX_PREEMPTIONS,
    Confidence,
    expected_hours,
    preemption_quantile,
)
from exo.compiler.quota import (  # re-exported: part of this API
    CPU_RESOURCE as CPU_RESOURCE,
)
from exo.compiler.quota import (
    ResourceKey as ResourceKey,
)
from exo.compiler.quota import (
    apply_quota as apply_quota,
)
from exo.compiler.quota import (
    prune_dominated as prune_dominated,
)
from exo.compiler.quota import (
    quota_limits as quota_limits,
)
from exo.compiler.quota import (
    quota_resources as quota_resources,
)
from exo.compiler.quota import (
    resource_label as resource_label,
)
from exo.compiler.quota import (
    usage as usage,
)
from exo.compiler.replicacounts import (  # re-exported: part of this API
    MAX_COUNTS as MAX_COUNTS,
)
from exo.compiler.replicacounts import (
    Sampled as Sampled,
)
from exo.compiler.replicacounts import (
    checkpoint_hours as checkpoint_hours,
)
from exo.compiler.replicacounts import family_counts, unbuilt_bound
from exo.compiler.replicacounts import (
    instance_counts as instance_counts,
)
from exo.compiler.replicacounts import (
    work_hours as work_hours,
)

if TYPE_CHECKING:  # numpy, under the arrays, loads when options are enumerated (not to read a plan)
    from exo.compiler.optionrows import CandidateRows, Figures

#: Steps whose candidates are computed in one pass of arrays (bounds their memory).
STEPS_AT_ONCE = 500
#: Figures beyond these are not represented (the option is rejected as out of range).
MAX_HOURS = 1e12
MAX_USD = 1e15


@dataclass(frozen=True, slots=True)
class Enumerated:
    """A step's options, why other candidates are not options, and what was sampled."""

    options: list[Option]
    rejections: list[Rejection]
    sampled: list[Sampled]
    #: Spot options not built (the time limit): one bound per family, all its counts.
    unbuilt: list[Sampled] = field(default_factory=list)


#: Called before each batch of steps with its first step's position and its size:
#: whether the batch's spot options are built (``False``: on demand only, and a bound
#: per family on the spot options not built). :mod:`exo.compiler.buildclock` decides.
SpotGate = Callable[[int, int], bool]


# --------------------------------------------------------------------------- formulas


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
        got, e, p = _spot_hours(step, t, c, lam, m, confidence, preemptions, expected)
        if got is None:
            return _unpromisable(step, inst, batch_size, replicas, m, t, c, lam, price * m * e)
        k = got
    cost = m * price * e
    if _too_large(t, e, p) or not math.isfinite(cost) or cost > MAX_USD:
        return _out_of_range(step, inst, spot, batch_size, replicas, p, cost)
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


def _spot_hours(
    step: Step,
    t: float,
    c: float,
    lam: float,
    instances: int,
    confidence: Confidence,
    preemptions: int | None,
    expected: float | None,
) -> tuple[int | None, float, float]:
    """``k``, ``E`` and ``P = T + k (c + r)`` of a preemptible candidate (DESIGN §3).

    ``k`` is ``None`` when none exists (then ``P`` is meaningless). ``k`` and ``E``
    are the caller's when it computed them already (``preemptions != -1``,
    ``expected`` given).
    """
    r = step.startup_h
    got = (
        preemption_quantile(t, c + r, lam, confidence.miss(instances))
        if preemptions == -1
        else preemptions
    )
    e = expected_hours(t, r, c, lam) if expected is None else expected
    if got is None:
        return None, e, t
    return got, e, t + got * (c + r)


def _out_of_range(
    step: Step,
    inst: InstanceType,
    spot: bool,
    batch_size: int | None,
    replicas: int,
    p: float,
    cost: float,
) -> Rejection:
    """A candidate whose figures are beyond what the model represents."""
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


def _assemble(
    steps: Sequence[Step],
    fams: Sequence[Family],
    owner: Sequence[int],
    rows: CandidateRows,
    fig: Figures,
) -> list[list[Option]]:
    """The rows that are options, as :class:`Option` values, per step (field order).

    Figures that :func:`make_option` shares are shared here too (the price and λ
    of the instance type; ``E = P = T`` and ``c = 0`` on demand): a million
    options hold a million fewer floats each time.
    """
    new = tuple.__new__
    per_fam = _family_fields(steps, fams, owner)
    out: list[list[Option]] = [[] for _ in steps]
    good = fig.good
    columns = zip(
        good.tolist(),
        fig.c[good].tolist(),
        fig.t[good].tolist(),
        fig.e[good].tolist(),
        fig.p[good].tolist(),
        fig.cost[good].tolist(),
        strict=True,
    )
    fam, spot, replicas, instances, ks = rows.fam, rows.spot, rows.replicas, rows.instances, fig.k
    zero = 0.0
    # equal work hours (the spot and on-demand options of one count) and checkpoint
    # losses (one per family) share one float: a few dozen MB at 10,000 steps
    same: dict[float, float] = {}
    for i, c, t, e, p, cost in columns:
        s, name, it, acc, count, vcpus, batch, theta, key, per, od, sp, lam = per_fam[fam[i]]
        if t > 0.0:  # (0.0 and -0.0 are equal keys with different bits)
            t = same.setdefault(t, t)
        if not spot[i]:
            sp, lam, c, e, p = od, zero, zero, t, t
        elif not lam > 0.0:
            e = p = t
        elif c > 0.0:
            c = same.setdefault(c, c)
        row = (name, it, acc, count, vcpus, spot[i], batch, replicas[i], sp, theta, key, lam)
        out[s].append(new(Option, (*row, c, ks[i], t, e, p, cost, instances[i], per)))
    return out


def _family_fields(
    steps: Sequence[Step], fams: Sequence[Family], owner: Sequence[int]
) -> list[tuple[Any, ...]]:
    """Per family: its step's index, then the fields its options take from it."""
    return [
        (
            owner[i],
            steps[owner[i]].name,
            f.inst.instance_type,
            f.inst.accelerator,
            f.inst.accelerator_count,
            f.inst.vcpus,
            f.batch_size,
            f.throughput,
            f.perf_key,
            f.per_instance,
            f.inst.ondemand_usd_per_hour,
            f.inst.spot_usd_per_hour,
            f.inst.spot_preemptions_per_hour,
        )
        for i, f in enumerate(fams)
    ]


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
    return enumerate_steps([step], catalog, confidence, deadline_h=deadline_h)[0]


def enumerate_steps(
    steps: Sequence[Step],
    catalog: Catalog,
    confidence: Confidence | float,
    *,
    deadline_h: float | None = None,
    spot: SpotGate | None = None,
) -> list[Enumerated]:
    """:func:`enumerate_step` of every step, the figures of all their candidates at once.

    The figures come from arrays (:mod:`exo.compiler.optionrows`), with the same
    floating-point operations as :func:`make_option`, which stays the reference
    and words the rejections. ``spot``: asked before each batch of steps whether
    its spot options are built (default: always); where not, a family that also
    runs on demand gets a bound on its spot options instead (``unbuilt``), and a
    spot-only family is built as usual.
    """
    conf = _as_confidence(confidence)
    out: list[Enumerated] = []
    # close to a million acyclic tuples at 10,000 steps: the cyclic collector would
    # traverse them again and again (half the CPU of the build). Paused meanwhile.
    paused = gc.isenabled()
    gc.disable()
    try:
        for lo in range(0, len(steps), STEPS_AT_ONCE):
            some = steps[lo : lo + STEPS_AT_ONCE]
            full = spot is None or spot(lo, len(some))
            out.extend(_enumerate_some(some, catalog, conf, deadline_h, with_spot=full))
    finally:
        if paused:
            gc.enable()
    return out


def _enumerate_some(
    steps: Sequence[Step],
    catalog: Catalog,
    conf: Confidence,
    deadline_h: float | None,
    *,
    with_spot: bool = True,
) -> list[Enumerated]:
    """:func:`enumerate_steps` of a few hundred steps (one pass of arrays)."""
    from exo.compiler.optionrows import CandidateRows, row_figures

    rejected: list[list[Rejection]] = [[] for _ in steps]
    sampled: list[list[Sampled]] = [[] for _ in steps]
    unbuilt: list[list[Sampled]] = [[] for _ in steps]
    fams: list[Family] = []
    owner: list[int] = []
    rows = CandidateRows()
    for s, step in enumerate(steps):
        for fam in families(step, catalog):
            if isinstance(fam, Rejection):
                rejected[s].append(fam)
                continue
            if not with_spot and fam.flags == (False, True):
                bound = unbuilt_bound(step, fam)
                if bound is not None:
                    unbuilt[s].append(bound)
                fam = replace(fam, flags=(False,))
            rows.add(len(fams), fam.flags, family_counts(step, fam, deadline_h, sampled[s]))
            fams.append(fam)
            owner.append(s)
    if not fams:
        return [Enumerated([], rejected[s], sampled[s], unbuilt[s]) for s in range(len(steps))]
    names = {n: r for r, n in enumerate(sorted({f.inst.instance_type for f in fams}))}
    rank = [names[f.inst.instance_type] for f in fams]
    of_fam = [steps[o] for o in owner]
    fig = row_figures(of_fam, fams, rows, conf, (owner, rank), max_hours=MAX_HOURS, max_usd=MAX_USD)
    opts = _assemble(steps, fams, owner, rows, fig)
    for i in fig.bad:
        f = rows.fam[i]
        fam, s = fams[f], owner[f]
        item = make_option(
            steps[s],
            fam.inst,
            spot=rows.spot[i],
            batch_size=fam.batch_size,
            replicas=rows.replicas[i],
            throughput=fam.throughput,
            t=float(fig.t[i]),
            perf_key=fam.perf_key,
            confidence=conf,
            per_instance=fam.per_instance,
            preemptions=fig.k[i],
            expected=float(fig.e[i]),
        )
        if isinstance(item, Option):  # never expected: the arrays said it was out of range
            opts[s].append(item)
            opts[s].sort(key=lambda o: o.key)
        else:
            rejected[s].append(item)
    return [Enumerated(opts[s], rejected[s], sampled[s], unbuilt[s]) for s in range(len(steps))]


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
    planned_p: float | None = None,
) -> Option | Rejection | None:
    """The one candidate of ``step`` with these choices (any replica count in range).

    ``None`` when it is not a candidate at all (wrong hardware, batch or tier).
    ``planned_p``: the plan's ``P`` of this choice (``p_duration_h``): a spot
    option's ``k`` is then read from it (``P = T + k (c + r)``) instead of searched
    for, which spares the Poisson tail (and scipy's import) to the run-time readers
    of a plan.
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
        k = -1 if planned_p is None or not spot else _planned_k(step, fam, t, planned_p)
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
            preemptions=k,
        )
    return None


def _planned_k(step: Step, fam: Family, t: float, planned_p: float) -> int:
    """``k`` of a spot option from its planned ``P = T + k (c + r)`` (0 when ``c + r``
    is 0, where ``k`` changes nothing)."""
    unit = checkpoint_hours(step, fam.batch_size, fam.throughput, t) + step.startup_h
    return max(0, round((planned_p - t) / unit)) if unit > 0.0 else 0
