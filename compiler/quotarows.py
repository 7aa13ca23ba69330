"""Quota rows in their smallest exact form, for the solver models.

A quota ``r`` says: at every instant, the usages ``u_s`` of the steps ``S``
running then sum to at most ``Q``. Writing ``u_s = d a_s + e_s`` (``0 <= e_s <
d``) for a divisor ``d``, the row ``sum_S a_s <= floor(Q / d)`` is

- implied by the quota for any ``d`` (Chvátal-Gomory rounding: ``d sum a <=
  sum u <= Q``, and ``sum a`` is a whole number), and
- equivalent to it when the remainders of all steps together fit in ``Q mod d``
  (``sum_s max_k e_sk <= Q mod d``, the maximum over each step's options):
  then ``sum a <= floor(Q / d)`` gives ``sum u <= d floor(Q / d) + sum e <= Q``.

So such a quota can be stated with the smaller coefficients ``a`` and limit
``floor(Q / d)``. The linear relaxation of the rounded row is tighter (``Q``
vCPUs of ``8``-vCPU instances allow ``Q / 8`` fractional instances; the
rounded row ``floor(Q / 8)``), and small whole coefficients are easier on
the solver than thousands of vCPUs. PSPLIB's second resource, carried on vCPUs
as ``100 q + 1`` against ``100 cap + 99``, rounds back to exactly ``sum q <=
cap`` (``d = 100``: remainders ``1`` per step, ``99`` to spare, fewer than 100
steps).

:func:`scaled_quotas` picks, per quota, the largest such ``d``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from exo.compiler.costmodel import usage
from exo.compiler.problem import Problem

#: Largest divisor tried (vCPU and accelerator quotas are far below).
MAX_DIVISOR = 10_000


def quota_divisor(usages: Sequence[Sequence[int]], limit: int) -> int:
    """The largest ``d`` whose rounded quota row is equivalent to the quota (``1``: none).

    ``usages[s]``: the usage of each option of step ``s``.
    """
    # steps with the same usages count once, with their multiplicity
    kinds = Counter(tuple(sorted(set(opts))) for opts in usages if any(opts))
    if not kinds or limit <= 0:
        return 1
    top = min(max(max(k) for k in kinds), limit, MAX_DIVISOR)
    width = max(len(k) for k in kinds)
    table = np.zeros((len(kinds), width), dtype=np.int64)
    for i, k in enumerate(kinds):
        table[i, : len(k)] = k
    weight = np.asarray(list(kinds.values()), dtype=np.int64)
    for d in range(top, 1, -1):
        if int(weight @ (table % d).max(axis=1)) <= limit % d:
            return d
    return 1


def scaled_quotas(
    problem: Problem,
) -> tuple[tuple[tuple[tuple[int, ...], ...], ...], tuple[int, ...]]:
    """Every option's usage per quota and the limits, each quota divided by its divisor.

    Returns ``(use, limits)`` with ``use[s][k][r]`` the rounded usage of option
    ``k`` of step ``s``: a schedule meets the rounded quotas exactly when it
    meets the original ones.
    """
    raw = [[usage(o, problem.resources) for o in opts] for opts in problem.options]
    divisors = [
        quota_divisor([[u[r] for u in opts] for opts in raw], limit)
        for r, limit in enumerate(problem.limits)
    ]
    use = tuple(
        tuple(tuple(v // d for v, d in zip(u, divisors, strict=True)) for u in opts) for opts in raw
    )
    limits = tuple(q // d for q, d in zip(problem.limits, divisors, strict=True))
    return use, limits
