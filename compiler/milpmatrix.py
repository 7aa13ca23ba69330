"""The MILP of :mod:`exo.compiler.milp` in the matrix form HiGHS reads, without cvxpy.

Without exact quotas the model's rows are already sparse matrices
(:class:`~exo.compiler.milp.Shape`, the capacity cuts); cvxpy's canonicalization
only stacked them, at a cost in memory the largest models cannot spare (at
10,000 steps: cvxpy's import ~58 MB, its copies of the matrices ~60 MB, next
to HiGHS' own). Here they are stacked directly, in exactly the form cvxpy gives
HiGHS (the same columns, rows, signs, coefficients and bounds, so the same
solve: ``tests/test_milpmatrix.py`` compares the two):

- columns: in the order cvxpy meets the variables: the objective's first
  (``x`` for ``cost``, ``M`` for ``time``), then ``x``, ``M``, ``t`` as the rows
  name them;
- rows: the equalities (one option per step), then the inequalities
  ``A z <= b`` in the order they are written: ``M <= horizon``, precedence
  (``P_i(x) + t_i - t_j <= 0``), sinks (``P_s(x) + t_s - M <= 0``), the budget,
  the cuts (``w x - cap M <= -cap (lo + hi)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from exo.compiler.highs import Model, RunResult, Watch, run_model

if TYPE_CHECKING:
    from exo.compiler.milp import Cut, Shape
    from exo.compiler.problem import Problem


def columns(objective: Literal["cost", "time"], n_options: int) -> tuple[int, int, int]:
    """The first column of ``x``, the column of ``M``, the first column of ``t``."""
    if objective == "cost":
        return 0, n_options, n_options + 1
    return 1, 0, n_options + 1


Rows = tuple[sp.csc_array, "np.ndarray[Any, np.dtype[np.float64]]"]


def matrix_model(
    problem: Problem,
    shape: Shape,
    cuts: Sequence[Cut],
    objective: Literal["cost", "time"],
    relax: bool,
) -> tuple[Model, tuple[int, int, int]]:
    """The model as HiGHS reads it, and its columns (:func:`columns`)."""
    d = shape.data
    cols = columns(objective, d.n)
    x0, m, t0 = cols
    n_cols = t0 + problem.size
    a, b = _rows(problem, shape, cuts, cols, n_cols)
    col_lo = np.full(n_cols, -np.inf)
    col_hi = np.full(n_cols, np.inf)
    col_lo[x0 : x0 + d.n] = 0.0
    col_hi[x0 : x0 + d.n] = 1.0
    col_lo[m] = shape.m_lo
    col_lo[t0:] = shape.t_lo
    col_hi[t0:] = shape.t_hi
    integrality = np.zeros(n_cols, dtype=np.int32)
    if not relax:
        integrality[x0 : x0 + d.n] = 1
    c = np.zeros(n_cols)
    if objective == "cost":
        c[x0 : x0 + d.n] = d.cost
    else:
        c[m] = 1.0
    n_eq = problem.size  # the first rows: one option per step
    row_lo = np.concatenate([b[:n_eq], np.full(len(b) - n_eq, -np.inf)])
    model = Model(n_cols, len(b), a, c, col_lo, col_hi, row_lo, b, integrality)
    return model, cols


def _rows(
    problem: Problem,
    shape: Shape,
    cuts: Sequence[Cut],
    cols: tuple[int, int, int],
    n_cols: int,
) -> Rows:
    """The rows ``A z`` and their right-hand sides, in the order cvxpy writes them
    (the module's docstring): the equalities first."""
    d = shape.data
    n_steps = problem.size
    blocks: list[sp.coo_array] = []
    rhs: list[np.ndarray[Any, np.dtype[np.float64]]] = []

    def add(x_part: Any, t_part: Any, m_coef: float, b: np.ndarray[Any, Any]) -> None:
        blocks.append(_block(x_part, t_part, m_coef, len(b), cols, n_cols))
        rhs.append(np.asarray(b, dtype=np.float64))

    assign = sp.csr_array((np.ones(d.n), (d.step_of, np.arange(d.n))), shape=(n_steps, d.n))
    add(assign, None, 0.0, np.ones(n_steps))
    add(None, None, 1.0, np.array([shape.horizon]))
    if shape.edges is not None:
        diff, dur = shape.edges
        add(dur, -diff, 0.0, np.zeros(diff.shape[0]))
    sel, dur_s = shape.sinks
    add(dur_s, sel, -1.0, np.zeros(sel.shape[0]))
    if problem.budget is not None:
        add(d.cost[np.newaxis, :], None, 0.0, np.array([problem.budget]))
    for w, cap, lo, hi in cuts:
        add(w[np.newaxis, :], None, -cap, np.array([0.0 - cap * (lo + hi)]))
    a = sp.csc_array(sp.vstack(blocks, format="csc"))
    a.eliminate_zeros()
    a.sort_indices()
    return a, np.concatenate(rhs)


def _block(
    x_part: Any, t_part: Any, m_coef: float, rows: int, cols: tuple[int, int, int], n_cols: int
) -> sp.coo_array:
    """Rows ``x_part @ x + t_part @ t + m_coef M`` (each part a matrix or ``None``)."""
    x0, m, t0 = cols
    r_idx: list[np.ndarray[Any, Any]] = []
    c_idx: list[np.ndarray[Any, Any]] = []
    vals: list[np.ndarray[Any, Any]] = []
    for part, first in ((x_part, x0), (t_part, t0)):
        if part is None:
            continue
        coo = sp.coo_array(part)
        r_idx.append(coo.row.astype(np.int64))
        c_idx.append(coo.col.astype(np.int64) + first)
        vals.append(coo.data.astype(np.float64))
    if m_coef:
        r_idx.append(np.arange(rows, dtype=np.int64))
        c_idx.append(np.full(rows, m, dtype=np.int64))
        vals.append(np.full(rows, m_coef, dtype=np.float64))
    return sp.coo_array(
        (np.concatenate(vals), (np.concatenate(r_idx), np.concatenate(c_idx))),
        shape=(rows, n_cols),
    )


def solve_matrix(
    built: tuple[Model, tuple[int, int, int]],
    shape: Shape,
    n_steps: int,
    relax: bool,
    time_limit_s: float | None = None,
    start: Mapping[int, np.ndarray[Any, np.dtype[np.float64]]] | None = None,
    watch: Watch | None = None,
) -> RunResult | None:
    """The model :func:`matrix_model` built, solved on HiGHS: ``x``'s values under key
    ``0``, ``t``'s under ``1``; ``None`` when its figures are not finite (HiGHS would
    give up, as cvxpy does)."""
    model, (x0, _, t0) = built
    finite = [model.a.data, model.c, model.row_hi, model.col_lo[t0:], model.col_hi[t0:]]
    if not all(np.all(np.isfinite(v)) for v in finite) or not math.isfinite(shape.m_lo):
        return None
    spans = {0: (x0, shape.data.n), 1: (t0, n_steps)}
    try:
        return run_model(
            model, not relax, spans, time_limit_s=time_limit_s, start=start, watch=watch
        )
    except ValueError:  # as through cvxpy: HiGHS gave up on extreme figures
        return None
