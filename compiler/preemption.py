"""Spot preemption math of cost model v2 (DESIGN §3, normative): ``E``, ``P`` and confidence.

An instance pays its startup ``S``, then works through ``W = T - S`` hours,
saving its work every ``c`` hours. Preemptions come as a Poisson process of
rate λ per running hour; each loses the work since the last checkpoint and
pays the restart ``r = S`` again.

- :func:`expected_hours`: the exact expected running time ``E`` of one instance,
  ``(e^{λS} - 1)/λ + (e^{λS}/λ)(j (e^{λc} - 1) + (e^{λ rho} - 1))`` with ``j = floor(W/c)``
  and ``rho = W - j c``, written with ``expm1(x)/x`` so that it is accurate for
  λ → 0 (where ``E = T``) and never overflows for the options that exist.
- :func:`preemption_quantile`: the smallest ``k >= 0`` with
  ``PoissonCDF(k; λ (T + k (c + r))) >= q``, searched from a lower bound (the
  Poisson median is at least ``μ - ln 2``) in vectorised chunks, never past
  :data:`MAX_PREEMPTIONS`; ``None`` when there is no such ``k`` (always when
  ``λ (c + r) >= 1``).
- :class:`Confidence`: the workflow's confidence split over the ``N`` steps
  with a spot option (``q_s = confidence^(1/N)``) and a step's ``m`` instances
  (``q = q_s^(1/m)``), kept as logarithms so that ``1 - q`` stays exact even
  for millions of instances.

Every function here runs in bounded time for any float input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

#: The largest preemption count the confidence rule looks at (DESIGN §3).
MAX_PREEMPTIONS = 10_000
#: Chunks in which the quantile search evaluates the Poisson tail (vectorised).
_CHUNKS = (32, 256, 2048, MAX_PREEMPTIONS + 1)
#: Below this |x|, ``expm1(x)/x`` is evaluated by its series (exact to double precision).
_SERIES = 1e-5
#: ``exp`` overflows a double above this.
_EXP_MAX = 709.0


@dataclass(frozen=True, slots=True)
class Confidence:
    """The workflow's promise, split over spot steps and their instances.

    ``confidence``: the workflow's; ``spot_steps``: ``N``, the steps of the
    workflow with at least one spot option (before unpromisable ones are dropped).
    """

    confidence: float
    spot_steps: int = 1

    @property
    def log_step(self) -> float:
        """``ln q_s = ln(confidence) / N``."""
        return math.log(self.confidence) / max(self.spot_steps, 1)

    @property
    def step(self) -> float:
        """``q_s = confidence^(1/N)``: each step's share of the promise."""
        return math.exp(self.log_step)

    def instance(self, instances: int) -> float:
        """``q = q_s^(1/m)``: what each of a step's ``m`` instances must keep."""
        return math.exp(self.log_step / max(instances, 1))

    def miss(self, instances: int) -> float:
        """``1 - q`` for ``m`` instances, without cancellation."""
        return -math.expm1(self.log_step / max(instances, 1))


def exprel(x: float) -> float:
    """``(e^x - 1) / x`` (1 at 0), accurate for small ``x``; ``inf`` on overflow."""
    if abs(x) < _SERIES:
        return 1.0 + x / 2.0 + x * x / 6.0
    if x > _EXP_MAX:
        return math.inf
    return math.expm1(x) / x


def _exp(x: float) -> float:
    return math.inf if x > _EXP_MAX else math.exp(x)


def intervals(work_h: float, checkpoint_h: float) -> tuple[int, float]:
    """``(j, rho)``: whole checkpoint intervals in the work, and the remainder."""
    if work_h <= 0.0:
        return 0, 0.0
    if not checkpoint_h > 0.0 or not math.isfinite(checkpoint_h) or checkpoint_h > work_h:
        return 0, work_h
    ratio = work_h / checkpoint_h
    if not math.isfinite(ratio):
        return 0, work_h
    j = math.floor(ratio)
    rho = max(work_h - j * checkpoint_h, 0.0)
    return j, rho


def expected_hours(t: float, startup_h: float, checkpoint_h: float, rate: float) -> float:
    """``E``: the exact expected running hours of one instance (``T`` when λ = 0).

    ``t`` is ``T`` (startup included), ``checkpoint_h`` is ``c``; ``checkpoint = none``
    passes ``c = T - S`` (one interval: ``E = (e^{λT} - 1)/λ``).
    """
    if not rate > 0.0:
        return t
    s = startup_h
    j, rho = intervals(t - s, checkpoint_h)
    # (e^{λS} - 1)/λ = S * exprel(λS);  (e^{λc} - 1)/λ = c * exprel(λc)
    head = s * exprel(rate * s)
    body = j * checkpoint_h * exprel(rate * checkpoint_h) if j else 0.0
    tail = rho * exprel(rate * rho)
    grow = _exp(rate * s)
    if math.isinf(grow) or math.isinf(body) or math.isinf(tail):
        return math.inf
    return head + grow * (body + tail)


def preemption_quantile(t: float, loss_h: float, rate: float, miss: float) -> int | None:
    """The smallest ``k >= 0`` with ``P[Poisson(λ (T + k d)) > k] <= miss``, else ``None``.

    ``loss_h`` is ``d = c + r``, the most one preemption can cost; ``miss`` is
    ``1 - q``. With at most ``k`` preemptions during ``P = T + k d`` the instance
    ends by ``P``. ``None`` when no ``k <= MAX_PREEMPTIONS`` qualifies (always when
    ``λ d >= 1``: the expected preemptions grow as fast as the allowance).
    """
    if not rate > 0.0:
        return 0
    a = rate * t
    b = rate * loss_h
    if not (math.isfinite(a) and math.isfinite(b)) or b >= 1.0 or not miss > 0.0:
        return None
    start = 0
    if miss <= 0.5:
        # CDF(k; μ) >= 1/2 needs k >= median(μ) >= μ - ln 2, with μ = a + b k.
        low = (a - math.log(2.0)) / (1.0 - b)
        if low > MAX_PREEMPTIONS + 1:
            return None
        start = max(0, math.floor(low) - 1)
    lo = start
    for size in _CHUNKS:
        if lo > MAX_PREEMPTIONS:
            break
        hi = min(lo + size, MAX_PREEMPTIONS + 1)
        ks = np.arange(lo, hi, dtype=np.float64)
        tail = special.pdtrc(ks, a + b * ks)
        hit = np.flatnonzero(tail <= miss)
        if hit.size:
            return int(lo + hit[0])
        lo = hi
    return None


def poisson_cdf(k: int, mu: float) -> float:
    """``P[X <= k]`` for ``X ~ Poisson(mu)``."""
    if mu <= 0.0:
        return 1.0
    return float(special.pdtr(k, mu))
