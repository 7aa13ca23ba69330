"""Replica ranges (DESIGN §3): which instance counts become options, and bounds on the rest.

For ``m`` instances only the most replicas they hold can be in an optimum, so a
replica range is walked by instance counts. A range of more than
:data:`MAX_COUNTS` counts (a huge ``replicas`` range) is sampled: the counts
near the first that can meet the deadline and a geometric ladder above them
are options; each range in between gets a :class:`Sampled` value with lower
bounds on the cost and the duration of every option it holds, which is what
keeps the optimizer's proven bound true. The same bounds stand in for the spot
options a time limit left unbuilt (:func:`unbuilt_bound`). The work hours
``T`` and the checkpoint loss ``c`` of a candidate (the formulas those bounds
and :func:`exo.compiler.costmodel.make_option` share) are here too.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

from exo.compiler.candidates import Family
from exo.compiler.ir import Step

#: Instance counts per instance type and batch size enumerated one by one.
MAX_COUNTS = 256
#: Beyond that: this many consecutive counts from the first that can meet the deadline ...
DENSE_COUNTS = 192
#: ... and a geometric ladder of this many counts up to the largest.
LADDER_COUNTS = 64
#: A plan meets its deadline within this many hours (``problem.TOL_H``).
DEADLINE_TOL_H = 1e-6


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
        pairs = [(m, m * per_instance) for m in range(m_lo, m_hi)]
        return [*pairs, pair(m_hi)], []
    start = max(m_lo, min(first_useful or m_lo, m_hi))
    chosen = {m_lo, m_hi, *range(start, min(start + DENSE_COUNTS, m_hi + 1))}
    top = min(start + DENSE_COUNTS, m_hi)
    if top < m_hi:
        ratio = (m_hi / top) ** (1.0 / LADDER_COUNTS)
        chosen.update(min(m_hi, round(top * ratio**i)) for i in range(LADDER_COUNTS + 1))
    ms = sorted(chosen)
    gaps = [(a + 1, b - 1) for a, b in itertools.pairwise(ms) if b - a > 1]
    return [pair(m) for m in ms], gaps


@functools.lru_cache(maxsize=4096)
def _counts_once(
    low: int, high: int, per_instance: int, first_useful: int | None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """:func:`instance_counts`, once per distinct range (families share them; read only)."""
    return instance_counts(low, high, per_instance, first_useful=first_useful)


def first_useful_count(step: Step, fam: Family, high: int, deadline_h: float | None) -> int | None:
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


def sampled_bound(
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


def family_counts(
    step: Step, fam: Family, deadline_h: float | None, sampled: list[Sampled]
) -> list[tuple[int, int]]:
    """The family's ``(instances, replicas)`` candidates; huge ranges are sampled."""
    if fam.throughput is None:  # a duration step: one replica
        return [(1, 1)]
    high = step.replicas.max
    useful = first_useful_count(step, fam, high, deadline_h)
    counts, gaps = _counts_once(step.replicas.min, high, fam.per_instance, useful)
    for spot in fam.flags:
        for gap in gaps:
            got = sampled_bound(step, fam, spot, gap, high)
            if got is not None:
                sampled.append(got)
    return counts


def unbuilt_bound(step: Step, fam: Family) -> Sampled | None:
    """Lower bounds on every spot option of ``fam``, for a family whose were not built.

    Every instance count of the family, as :func:`_sampled` bounds a skipped range
    (``None``: none of them can be promised); a duration step's one option costs at
    least ``price x T`` and takes at least ``T`` (``E >= T``, ``P >= T``).
    """
    if fam.throughput is None:
        assert fam.duration_h is not None and fam.inst.spot_usd_per_hour is not None
        t = step.startup_h + fam.duration_h
        price = fam.inst.spot_usd_per_hour
        return Sampled(step.name, fam.inst.instance_type, True, None, 1, 1, price * t, t)
    high = step.replicas.max
    counts = (-(-step.replicas.min // fam.per_instance), -(-high // fam.per_instance))
    return sampled_bound(step, fam, True, counts, high)
