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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads on the first array (see _pdtrc's note): readers of a plan need none
    import numpy as np

#: The largest preemption count the confidence rule looks at (DESIGN §3).
MAX_PREEMPTIONS = 10_000
#: Below this |x|, ``expm1(x)/x`` is evaluated by its series (exact to double precision).
_SERIES = 1e-5
#: ``exp`` overflows a double above this.
_EXP_MAX = 709.0


def _pdtrc(k: Any, mu: Any) -> Any:
    """``scipy.special.pdtrc``: ``P[Poisson(mu) > k]``, element by element.

    scipy.special is imported here, on the first Poisson tail, not with this module:
    with its array-API layer it costs about as much as numpy, and ``exoc run`` of a
    plan with no spot option (or ``exoc status``, ``exoc check``) never needs it."""
    from scipy import special

    return special.pdtrc(k, mu)


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


def monotone_from(a: float, b: float) -> float:
    """A ``k_m`` from which ``F(k) = PoissonCDF(k; a + b k)`` never decreases (``0 <= b < 1``).

    ``F(k+1) - F(k) = pmf(k+1; μ) - ∫_μ^{μ+b} pmf(k+1; s) ds`` with ``μ = a + b k``, and
    ``pmf(j; μ+x) <= pmf(j; μ) e^{x (j/μ - 1)}``; so ``F(k+1) >= F(k)`` when
    ``(e^{c b} - 1)/c <= 1`` for ``c = (k+1)/μ - 1``, which holds for ``c <= c_s =
    min((1 - b)/b², 1/b)`` (``e^x <= 1 + x + x²`` for ``x <= 1``). That is
    ``k + 1 <= (1 + c_s)(a + b k)``, i.e. every ``k >= (1 - (1 + c_s) a)/((1 + c_s) b - 1)``
    (``(1 + c_s) b > 1``).
    """
    import numpy as np

    with np.errstate(all="ignore"):
        return float(_monotone_from_array(np.array([a]), np.array([b]))[0])


def _start(a: float, b: float, miss: float) -> float:
    """No ``k`` below this can qualify: CDF(k; μ) >= 1/2 needs k >= median >= μ - ln 2."""
    if miss > 0.5:
        return 0.0
    return max(0.0, math.floor((a - math.log(2.0)) / (1.0 - b)) - 1.0)


def _tail(k: float, a: float, b: float) -> float:
    return float(_pdtrc(k, a + b * k))


def _bisect(lo: float, a: float, b: float, miss: float) -> int | None:
    """The first ``k`` in ``[lo, MAX_PREEMPTIONS]`` with tail ``<= miss``; ``F`` is monotone there."""
    hi = float(MAX_PREEMPTIONS)
    if _tail(hi, a, b) > miss:
        return None
    if _tail(lo, a, b) <= miss:
        return int(lo)
    while hi - lo > 1.0:  # tail(lo) > miss >= tail(hi)
        mid = math.floor((lo + hi) / 2.0)
        if _tail(mid, a, b) <= miss:
            hi = mid
        else:
            lo = mid
    return int(hi)


def _exprel_array(
    x: np.ndarray[Any, np.dtype[np.float64]],
) -> np.ndarray[Any, np.dtype[np.float64]]:
    import numpy as np

    with np.errstate(all="ignore"):
        big = np.where(x > _EXP_MAX, np.inf, np.expm1(np.minimum(x, _EXP_MAX)) / x)
        return np.where(np.abs(x) < _SERIES, 1.0 + x / 2.0 + x * x / 6.0, big)


def expected_hours_array(
    t: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    startup_h: float | np.ndarray[Any, np.dtype[np.float64]],
    checkpoint_h: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    rate: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
) -> list[float]:
    """:func:`expected_hours` for many options (the same formula, vectorised).

    ``startup_h``: one startup for all, or one per option.
    """
    import numpy as np

    tt = np.asarray(t, dtype=np.float64)
    c = np.asarray(checkpoint_h, dtype=np.float64)
    lam = np.asarray(rate, dtype=np.float64)
    s = np.asarray(startup_h, dtype=np.float64)
    with np.errstate(all="ignore"):
        w = tt - s
        whole = (w > 0.0) & (c > 0.0) & np.isfinite(c) & (c <= w) & np.isfinite(w / c)
        j = np.where(whole, np.floor(w / np.where(whole, c, 1.0)), 0.0)
        rho = np.where(whole, np.maximum(w - j * c, 0.0), np.maximum(w, 0.0))
        head = s * _exprel_array(lam * s)
        body = np.where(j > 0.0, j * c * _exprel_array(lam * c), 0.0)
        tail = rho * _exprel_array(lam * rho)
        grow = np.where(lam * s > _EXP_MAX, np.inf, np.exp(np.minimum(lam * s, _EXP_MAX)))
        e = head + grow * (body + tail)
        e = np.where(np.isinf(grow) | np.isinf(body) | np.isinf(tail), np.inf, e)
    return [float(x) for x in np.where(lam > 0.0, e, tt)]


def preemption_quantile(t: float, loss_h: float, rate: float, miss: float) -> int | None:
    """The smallest ``k >= 0`` with ``P[Poisson(λ (T + k d)) > k] <= miss``, else ``None``.

    ``loss_h`` is ``d = c + r``, the most one preemption can cost; ``miss`` is
    ``1 - q``. With at most ``k`` preemptions during ``P = T + k d`` the instance
    ends by ``P``. ``None`` when no ``k <= MAX_PREEMPTIONS`` qualifies (always when
    ``λ d >= 1``: the expected preemptions grow as fast as the allowance).

    From the lower bound (:func:`_start`) the search scans upwards until
    :func:`monotone_from`, then bisects (the CDF no longer decreases): at most
    a few dozen Poisson tails, or one scan of 10,001 in a corner case.
    """
    if not rate > 0.0:
        return 0
    a = rate * t
    b = rate * loss_h
    if not (math.isfinite(a) and math.isfinite(b)) or b >= 1.0 or not miss > 0.0:
        return None
    import numpy as np  # only a search needs it

    lo = _start(a, b, miss)
    mono = monotone_from(a, b)
    size = 32
    while lo < min(mono, MAX_PREEMPTIONS + 1):
        hi = min(lo + size, mono, MAX_PREEMPTIONS + 1)
        ks = np.arange(lo, hi, dtype=np.float64)
        hit = np.flatnonzero(_pdtrc(ks, a + b * ks) <= miss)
        if hit.size:
            return int(lo) + int(hit[0])
        lo, size = hi, size * 8
    if lo > MAX_PREEMPTIONS:
        return None
    return _bisect(lo, a, b, miss)


#: Windows of k the vectorised search tries for all options at once, before the
#: stragglers finish one by one.
_WINDOWS = (8, 32)


def preemption_quantiles(
    t: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    loss_h: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    rate: float | Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    miss: Sequence[float],
) -> list[int | None]:
    """:func:`preemption_quantile` for many options of one instance type at once.

    Every option starts at its own lower bound; a window of the next few ``k``
    of every option is evaluated as one array (most options end there), then a
    wider one; the rest finish alone (:func:`preemption_quantile`). The first
    ``k`` of a window that qualifies is the answer, as in the scalar search.
    """
    import numpy as np

    n = len(t)
    lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), (n,))
    out: list[int | None] = [0 if not x > 0.0 else None for x in lam]
    with np.errstate(all="ignore"):
        a = lam * np.asarray(t, dtype=np.float64)
        b = lam * np.asarray(loss_h, dtype=np.float64)
        eps = np.asarray(miss, dtype=np.float64)
        ok = (lam > 0.0) & np.isfinite(a) & np.isfinite(b) & (b < 1.0) & (eps > 0.0)
        low = np.where(eps <= 0.5, np.floor((a - math.log(2.0)) / (1.0 - b)) - 1.0, 0.0)
        mono = _monotone_from_array(a, b)
    k = np.where(ok, np.maximum(low, 0.0), 0.0)
    open_ = np.flatnonzero(ok & (k <= MAX_PREEMPTIONS))
    for width in _WINDOWS:
        if open_.size == 0:
            return out
        ks = k[open_, None] + np.arange(width, dtype=np.float64)[None, :]
        hit = (_pdtrc(ks, a[open_, None] + b[open_, None] * ks) <= eps[open_, None]) & (
            ks <= MAX_PREEMPTIONS
        )
        found = hit.any(axis=1)
        first = hit.argmax(axis=1)
        for row in np.flatnonzero(found):
            i = int(open_[row])
            out[i] = int(k[i]) + int(first[row])
        k[open_] += width
        open_ = open_[~found & (k[open_] <= MAX_PREEMPTIONS)]
    # the CDF is monotone from ``mono`` on: bisect those there together, scan the rest alone
    ready = open_[k[open_] >= mono[open_]]
    for i, got in zip(ready, _bisect_all(k[ready], a[ready], b[ready], eps[ready]), strict=True):
        out[int(i)] = got
    for i in open_[k[open_] < mono[open_]]:
        j = int(i)
        out[j] = preemption_quantile(float(t[j]), float(loss_h[j]), float(lam[j]), float(eps[j]))
    return out


def _monotone_from_array(
    a: np.ndarray[Any, np.dtype[np.float64]], b: np.ndarray[Any, np.dtype[np.float64]]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """:func:`monotone_from` element by element (the formula lives here)."""
    import numpy as np

    cs = np.minimum((1.0 - b) / (b * b), 1.0 / b)
    beta = (1.0 + cs) * b
    out = np.maximum(0.0, np.ceil((1.0 - (1.0 + cs) * a) / (beta - 1.0)))
    return np.where(b > 0.0, out, 0.0)


def _bisect_all(
    lo: np.ndarray[Any, np.dtype[np.float64]],
    a: np.ndarray[Any, np.dtype[np.float64]],
    b: np.ndarray[Any, np.dtype[np.float64]],
    eps: np.ndarray[Any, np.dtype[np.float64]],
) -> list[int | None]:
    """:func:`_bisect` for many options at once (the CDF is monotone from every ``lo``)."""
    import numpy as np

    if lo.size == 0:
        return []
    hi = np.full(lo.shape, float(MAX_PREEMPTIONS))
    reach = _pdtrc(hi, a + b * hi) <= eps
    now = _pdtrc(lo, a + b * lo) <= eps
    hi = np.where(now, lo, hi)  # lo itself qualifies: the interval is closed
    lo = lo.copy()
    for _ in range(16):  # 2^14 > 10,001: the interval closes
        gap = reach & (hi - lo > 1.0)
        if not gap.any():
            break
        mid = np.floor((lo + hi) / 2.0)
        good = _pdtrc(mid, a + b * mid) <= eps
        hi = np.where(gap & good, mid, hi)
        lo = np.where(gap & ~good, mid, lo)
    return [int(h) if r or n else None for h, r, n in zip(hi, reach, now, strict=True)]


def poisson_cdf(k: int, mu: float) -> float:
    """``P[X <= k]`` for ``X ~ Poisson(mu)``."""
    if mu <= 0.0:
        return 1.0
    from scipy import special  # loaded when used: see _pdtrc

    return float(special.pdtr(k, mu))
