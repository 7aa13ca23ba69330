"""Cost-model figures of many candidates at once, as arrays (DESIGN §3).

:func:`exo.compiler.costmodel.make_option` is the reference: one candidate,
one call. A workflow of 10,000 steps has close to a million candidates, and a
call per candidate (then a few array operations per step) was most of the time
``exoc plan`` spent before solving. :func:`row_figures` computes ``T``, ``c``,
``k``, ``E``, ``P`` and the cost of every candidate of every step in one pass,
with the same floating-point operations in the same order as the reference (so
the figures are the same to the last bit), and says which candidates are not
options (spot that cannot be promised, figures out of range): the reference
words those rejections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exo.compiler.candidates import Family
from exo.compiler.ir import Step
from exo.compiler.preemption import Confidence, expected_hours_array, preemption_quantiles

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(slots=True)
class CandidateRows:
    """Candidates before their figures: one row per (family, instance count, tier)."""

    fam: list[int] = field(default_factory=list)
    instances: list[int] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    spot: list[bool] = field(default_factory=list)

    def add(self, fam: int, flags: Sequence[bool], counts: Sequence[tuple[int, int]]) -> None:
        """Family ``fam``'s rows: every ``(instances, replicas)`` count on every tier."""
        tiers = len(flags)
        self.fam.extend([fam] * (len(counts) * tiers))
        if tiers == 1:
            self.instances.extend([m for m, _ in counts])
            self.replicas.extend([n for _, n in counts])
        else:
            self.instances.extend([m for m, _ in counts for _ in flags])
            self.replicas.extend([n for _, n in counts for _ in flags])
        self.spot.extend(list(flags) * len(counts))

    def __len__(self) -> int:
        return len(self.fam)


@dataclass(frozen=True, slots=True)
class Figures:
    """Per row: the figures of :class:`~exo.compiler.option.Option`."""

    t: FloatArray
    e: FloatArray
    p: FloatArray
    cost: FloatArray
    #: ``c``: hours one preemption can lose (0 on demand).
    c: FloatArray
    lam: FloatArray
    price: FloatArray
    #: ``k`` (0 on demand; ``None``: spot that no ``k`` can promise).
    k: list[int | None]
    #: Rows that are options, by step, then in the order of their ``Option.key``.
    good: IntArray
    #: Rows that are rejections, in row order.
    bad: list[int]


def _family_columns(steps: Sequence[Step], fams: Sequence[Family]) -> list[FloatArray]:
    """Per family (of ``steps[i]``): θ, a duration step's hours, prices, λ, ``c``, S, W."""
    nan = math.nan
    cols: list[list[float]] = [[] for _ in range(9)]
    for step, f in zip(steps, fams, strict=True):
        ck = step.checkpoint
        spot_price = f.inst.spot_usd_per_hour
        # checkpoint_hours(): an interval, one batch, or all the work (T - S)
        if ck.kind == "interval" and ck.interval_h is not None:
            cfix, cvar = ck.interval_h, 0.0
        elif ck.kind == "batch" and f.batch_size is not None and f.throughput:
            cfix, cvar = f.batch_size / f.throughput / 3600.0, 0.0
        else:
            cfix, cvar = 0.0, 1.0
        row = (
            nan if f.throughput is None else f.throughput,
            nan if f.duration_h is None else f.duration_h,
            f.inst.ondemand_usd_per_hour,
            nan if spot_price is None else spot_price,
            f.inst.spot_preemptions_per_hour,
            cfix,
            cvar,
            step.startup_h,
            float(step.items or 0),
        )
        for col, x in zip(cols, row, strict=True):
            col.append(x)
    return [np.asarray(x, dtype=np.float64) for x in cols]


def row_figures(
    steps: Sequence[Step],
    fams: Sequence[Family],
    rows: CandidateRows,
    confidence: Confidence,
    order: tuple[Sequence[int], Sequence[int]],
    *,
    max_hours: float,
    max_usd: float,
) -> Figures:
    """The figures of every row, as :func:`~exo.compiler.costmodel.make_option` computes them.

    ``steps[i]`` is the step of family ``fams[i]``. ``order``: per family, its
    step's position and its instance type's rank; the options come out ordered
    by those, then the tier, the batch size and the replicas
    (:attr:`~exo.compiler.option.Option.key`).
    """
    theta_f, dur_f, od_f, sp_f, lam_f, cfix_f, cvar_f, s_f, w_f = _family_columns(steps, fams)
    f = np.asarray(rows.fam, dtype=np.intp)
    m = np.asarray(rows.instances, dtype=np.int64)
    n = np.asarray(rows.replicas, dtype=np.int64)
    spot = np.asarray(rows.spot, dtype=bool)
    s = s_f[f]
    with np.errstate(all="ignore"):
        theta = theta_f[f]
        # work_hours(): S + W / (n θ 3600); a duration step: S + its hours
        t = np.where(np.isnan(theta), s + dur_f[f], s + w_f[f] / (n * theta * 3600.0))
        price = np.where(spot, sp_f[f], od_f[f])
        lam = np.where(spot, lam_f[f], 0.0)
        c = np.where(spot, np.where(cvar_f[f] > 0.0, np.maximum(t - s, 0.0), cfix_f[f]), 0.0)
    e = t.copy()
    p = t.copy()
    k: list[int | None] = [0] * len(rows)
    sel = np.flatnonzero(spot & (lam > 0.0))
    unpromisable = np.zeros(len(rows), dtype=bool)
    if sel.size:
        ms = m[sel].tolist()
        miss = {mm: confidence.miss(mm) for mm in set(ms)}
        ts, cs, rs, rates = t[sel], c[sel], s[sel], lam[sel]
        got = preemption_quantiles(ts, cs + rs, rates, [miss[mm] for mm in ms])
        e[sel] = expected_hours_array(ts, rs, cs, rates)
        kk = np.asarray([-1.0 if x is None else float(x) for x in got], dtype=np.float64)
        with np.errstate(all="ignore"):
            p[sel] = np.where(kk >= 0.0, ts + kk * (cs + rs), math.nan)
        unpromisable[sel] = kk < 0.0
        for i, x in zip(sel.tolist(), got, strict=True):
            k[i] = x
    with np.errstate(all="ignore"):
        cost = np.asarray(m * price * e, dtype=np.float64)
        ok = (t <= max_hours) & (e <= max_hours) & (p <= max_hours)
        ok &= np.isfinite(cost) & (cost <= max_usd) & ~unpromisable
    good = np.flatnonzero(ok)
    step_f = np.asarray(order[0], dtype=np.int64)
    rank_f = np.asarray(order[1], dtype=np.int64)
    batch_f = np.asarray([-1 if x.batch_size is None else x.batch_size for x in fams], np.int64)
    g = f[good]
    good = good[np.lexsort((n[good], batch_f[g], spot[good], rank_f[g], step_f[g]))]
    return Figures(t, e, p, cost, c, lam, price, k, good, np.flatnonzero(~ok).tolist())
