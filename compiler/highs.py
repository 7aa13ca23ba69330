"""Running a cvxpy model on HiGHS with what cvxpy's own interface lacks.

The models are written in cvxpy (:mod:`exo.compiler.milp`,
:mod:`exo.compiler.timeindexed`); cvxpy reduces them to the matrix form HiGHS
reads (``get_problem_data``), and :func:`run` hands that to ``highspy`` itself,
so that a solve can

- start from a known plan (``setSolution``: HiGHS completes and checks it, and
  prunes with it from the first node),
- report its incumbent and bound while it runs (a progress line), and
- stop early when the caller asks (Ctrl-C, a shared clock), returning the best
  solution found so far with its proven bound.

Objectives must be linear without a constant term (the bound HiGHS reports is
then the model's own).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # imported where a model is solved: a plan without one never loads it
    import cvxpy as cp

RunStatus = Literal["optimal", "feasible", "infeasible", "unknown"]

#: HiGHS settings: prove optimality to the cent's millionth, keep constraints tight.
HIGHS_OPTIONS: dict[str, Any] = {
    "mip_rel_gap": 1e-9,
    "mip_abs_gap": 1e-7,
    "mip_feasibility_tolerance": 1e-9,
    "primal_feasibility_tolerance": 1e-9,
    "random_seed": 0,
}


@functools.cache
def quiet_highs() -> None:
    """HiGHS prints a banner on stdout when the process creates its first solver.

    ``exoc plan --format json`` owns stdout, so the first solver is created here
    with the C-level stdout pointed at /dev/null; later ones print nothing.
    """
    import highspy

    hs: Any = highspy
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), 1)
            hs.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True, slots=True)
class RunResult:
    status: RunStatus
    #: Values of the requested variables (by cvxpy variable), when a solution exists.
    values: dict[int, np.ndarray[Any, np.dtype[np.float64]]] | None
    #: Objective value of the solution.
    value: float | None
    #: Proven lower bound on the model's optimum (``-inf`` unknown, ``inf`` infeasible).
    bound: float
    #: Whether the run stopped because :attr:`Watch.stopped` said so.
    interrupted: bool
    build_s: float
    solve_s: float


@dataclass(slots=True)
class Watch:
    """What a running solve checks and tells: a stop request and its progress.

    ``stopped()`` is polled by HiGHS' interrupt callback (every few hundred
    microseconds of search); ``progress(primal, dual)`` gets the incumbent's
    objective (``inf`` while there is none) and the proven bound.
    """

    stopped: Callable[[], bool]
    progress: Callable[[float, float], None] | None = None
    #: Seconds between two progress reports.
    every_s: float = 0.5


def share_of(watch: Watch | None, time_limit_s: float | None, share: float) -> Callable[[], bool]:
    """A stop signal for a part of a question: the watch says stop, or ``share`` of
    ``time_limit_s`` (from now) is spent (no limit: only the watch)."""
    end = None if time_limit_s is None else time.perf_counter() + share * time_limit_s

    def stopped() -> bool:
        if watch is not None and watch.stopped():
            return True
        return end is not None and time.perf_counter() >= end

    return stopped


def run(
    prob: cp.Problem,
    variables: Mapping[int, cp.Variable],
    *,
    time_limit_s: float | None = None,
    start: Mapping[int, np.ndarray[Any, np.dtype[np.float64]]] | None = None,
    watch: Watch | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Solve ``prob`` on HiGHS; ``variables`` are those whose values come back.

    ``start``: values of some variables of a known solution (keys as in
    ``variables``); HiGHS fills in the others and uses it if it is feasible.
    """
    import cvxpy as cp

    t0 = time.perf_counter()
    data, _, _ = prob.get_problem_data(cp.HIGHS)
    cols: dict[int, int] = data["param_prob"].var_id_to_col
    model, is_mip = _matrix(data)
    spans = {key: (cols[var.id], var.size) for key, var in variables.items()}
    got = run_model(
        model, is_mip, spans, time_limit_s=time_limit_s, start=start, watch=watch, options=options
    )
    return replace(got, build_s=time.perf_counter() - t0 - got.solve_s)


def run_model(
    model: Model,
    is_mip: bool,
    spans: Mapping[int, tuple[int, int]],
    *,
    time_limit_s: float | None = None,
    start: Mapping[int, np.ndarray[Any, np.dtype[np.float64]]] | None = None,
    watch: Watch | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Solve a model in matrix form on HiGHS (what :func:`run` does once cvxpy made it).

    ``spans``: the columns ``(first, size)`` of each block of variables whose
    values come back (and whose ``start`` values are set), by key.
    """
    t0 = time.perf_counter()
    quiet_highs()
    h = _solver(model, options, time_limit_s)
    if start:
        _set_start(h, spans, start)
    interrupted = [False]
    if watch is not None and is_mip:
        _subscribe(h, watch, interrupted)
    t1 = time.perf_counter()
    h.run()
    if start and is_mip and not interrupted[0] and _mismatch(h, model.c):
        # HiGHS 1.16 can report a better objective than the solution it hands
        # back when a start was set (seen when presolve solves the model): the
        # model is solved again without the start, in the time that is left
        left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - t1)
        h = _solver(model, options, left)
        if watch is not None:
            _subscribe(h, watch, interrupted)
        h.run()
    t2 = time.perf_counter()
    return _result(h, spans, is_mip, interrupted[0], t1 - t0, t2 - t1)


@dataclass(frozen=True, slots=True)
class Model:
    """The matrix form HiGHS reads (``row_lo <= A x <= row_hi``, ``col_lo <= x <= col_hi``)."""

    n_cols: int
    n_rows: int
    a: Any
    c: np.ndarray[Any, np.dtype[np.float64]]
    col_lo: np.ndarray[Any, np.dtype[np.float64]]
    col_hi: np.ndarray[Any, np.dtype[np.float64]]
    row_lo: np.ndarray[Any, np.dtype[np.float64]]
    row_hi: np.ndarray[Any, np.dtype[np.float64]]
    integrality: np.ndarray[Any, np.dtype[np.int32]]


def _matrix(data: Mapping[str, Any]) -> tuple[Model, bool]:
    """cvxpy's HiGHS problem data in matrix form, and whether any column is integer."""
    a = data["A"].tocsc()
    n_rows, n_cols = a.shape
    dims = data["dims"]
    n_eq = int(dims.zero)
    b = np.asarray(data["b"], dtype=np.float64)
    row_lo = np.concatenate([b[:n_eq], np.full(n_rows - n_eq, -np.inf)])
    lb = data["lower_bounds"]
    ub = data["upper_bounds"]
    col_lo = np.full(n_cols, -np.inf) if lb is None else np.asarray(lb, dtype=np.float64).copy()
    col_hi = np.full(n_cols, np.inf) if ub is None else np.asarray(ub, dtype=np.float64).copy()
    bools = np.asarray(data["bool_vars_idx"], dtype=np.int64)
    ints = np.asarray(data["int_vars_idx"], dtype=np.int64)
    if bools.size:
        col_lo[bools] = np.maximum(col_lo[bools], 0.0)
        col_hi[bools] = np.minimum(col_hi[bools], 1.0)
    integrality = np.zeros(n_cols, dtype=np.int32)
    integrality[bools] = 1
    integrality[ints] = 1
    is_mip = bool(bools.size or ints.size)
    model = Model(
        n_cols,
        n_rows,
        a,
        np.asarray(data["c"], dtype=np.float64),
        col_lo,
        col_hi,
        row_lo,
        b,
        integrality,
    )
    return model, is_mip


def _solver(model: Model, options: Mapping[str, Any] | None, time_limit_s: float | None) -> Any:
    import highspy

    hs: Any = highspy
    h = hs.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in {**HIGHS_OPTIONS, **(options or {})}.items():
        h.setOptionValue(key, value)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", max(float(time_limit_s), 0.01))
    inf = h.inf
    h.passModel(
        model.n_cols,
        model.n_rows,
        model.a.nnz,
        1,  # column-wise
        1,  # minimise
        0.0,
        model.c,
        np.where(np.isfinite(model.col_lo), model.col_lo, -inf),
        np.where(np.isfinite(model.col_hi), model.col_hi, inf),
        np.where(np.isfinite(model.row_lo), model.row_lo, -inf),
        model.row_hi,
        model.a.indptr.astype(np.int32),
        model.a.indices.astype(np.int32),
        model.a.data.astype(np.float64),
        model.integrality,
    )
    return h


def _set_start(
    h: Any,
    spans: Mapping[int, tuple[int, int]],
    start: Mapping[int, np.ndarray[Any, np.dtype[np.float64]]],
) -> None:
    idx: list[np.ndarray[Any, Any]] = []
    val: list[np.ndarray[Any, Any]] = []
    for which, values in start.items():
        first, size = spans[which]
        idx.append(np.arange(first, first + size, dtype=np.int32))
        val.append(np.asarray(values, dtype=np.float64).ravel())
    ii = np.concatenate(idx)
    h.setSolution(len(ii), ii, np.concatenate(val))


def _mismatch(h: Any, c: np.ndarray[Any, np.dtype[np.float64]]) -> bool:
    """The solution handed back does not have the objective value HiGHS reports."""
    info = h.getInfo()
    if int(info.primal_solution_status) != 2:
        return False
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    got = float(c @ x)
    said = float(info.objective_function_value)
    return abs(got - said) > 1e-6 * max(1.0, abs(said))


def _subscribe(h: Any, watch: Watch, interrupted: list[bool]) -> None:
    last = [time.perf_counter()]

    def on_interrupt(e: Any) -> None:
        out = e.data_out
        now = time.perf_counter()
        if watch.progress is not None and now - last[0] >= watch.every_s:
            last[0] = now
            watch.progress(float(out.mip_primal_bound), float(out.mip_dual_bound))
        if watch.stopped():
            interrupted[0] = True
            e.interrupt()

    h.cbMipInterrupt += on_interrupt


def _result(
    h: Any,
    spans: Mapping[int, tuple[int, int]],
    is_mip: bool,
    interrupted: bool,
    build_s: float,
    solve_s: float,
) -> RunResult:
    import highspy

    hs: Any = highspy
    status_name = h.getModelStatus().name
    info = h.getInfo()
    has_solution = int(info.primal_solution_status) == 2
    if is_mip:
        bound = float(info.mip_dual_bound)
        if not math.isfinite(bound) and bound > 0:
            bound = math.inf
    else:
        bound = float(info.objective_function_value) if status_name == "kOptimal" else -math.inf
    status: RunStatus
    if status_name == "kOptimal":
        status = "optimal"
    elif status_name in ("kInfeasible",):
        return RunResult("infeasible", None, None, math.inf, interrupted, build_s, solve_s)
    elif has_solution:
        status = "feasible"
    else:
        status = "unknown"
    if not math.isfinite(bound) or math.isnan(bound):
        bound = -math.inf
    if not has_solution:
        return RunResult(status, None, None, bound, interrupted, build_s, solve_s)
    col = np.asarray(h.getSolution().col_value, dtype=np.float64)
    values = {}
    for key, (first, size) in spans.items():
        values[key] = col[first : first + size]
    value = float(info.objective_function_value)
    if status == "optimal":
        bound = min(bound, value) if math.isfinite(bound) else value
    del hs
    return RunResult(status, values, value, bound, interrupted, build_s, solve_s)
