"""The mixed-integer model (cvxpy, solved by HiGHS); the math is in docs/cost-model.md.

Variables: ``x[k]`` binary (option ``k`` chosen), ``t[s] >= 0`` the start of
step ``s``, ``M`` the makespan. With ``P_s(x) = sum_k P_k x_k`` over the options
of ``s``:

- one option per step: ``sum_{k in s} x_k = 1``;
- precedence: ``t_j >= t_i + P_i(x)`` for every edge ``i -> j``;
- makespan: ``M >= t_s + P_s(x)`` for every sink, ``M <= deadline``;
- budget: ``sum_k cost_k x_k <= budget``;
- optional energy cuts per quota resource ``r`` (valid for every schedule that
  honours the quota, so the model stays a relaxation):
  ``sum_k u_kr P_k x_k <= Q_r M``;
- optional exact quotas for small problems (disjunctive pairs, see
  :func:`_disjunctive`).

Objective ``cost``: ``min sum_k cost_k x_k``; ``time``: ``min M``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from exo.compiler.costmodel import usage
from exo.compiler.highs import RunResult, Watch, run
from exo.compiler.problem import Problem, longest_paths
from exo.compiler.quotarows import scaled_quotas

if TYPE_CHECKING:  # imported where a model is built: a plan without one never loads it
    import cvxpy as cp

MilpStatus = Literal["optimal", "feasible", "infeasible", "unknown"]


@dataclass(frozen=True, slots=True)
class MilpResult:
    status: MilpStatus
    #: Option position per step, when a solution was found.
    choice: tuple[int, ...] | None
    #: The model's start times (a guide: the caller rebuilds a clean schedule).
    starts: tuple[float, ...] | None
    #: The objective value of the solution.
    value: float | None
    #: A proven lower bound on the model's optimum (``-inf`` when none is known).
    bound: float
    build_s: float
    solve_s: float


@dataclass(frozen=True, slots=True)
class _Data:
    offsets: tuple[int, ...]
    step_of: np.ndarray[Any, np.dtype[np.int64]]
    cost: np.ndarray[Any, np.dtype[np.float64]]
    p: np.ndarray[Any, np.dtype[np.float64]]
    #: usage[k, r], each quota rounded (:mod:`exo.compiler.quotarows`)
    use: np.ndarray[Any, np.dtype[np.float64]]
    #: The quotas' limits, rounded alike.
    limits: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.cost)


def _data(problem: Problem) -> _Data:
    offsets: list[int] = []
    cost: list[float] = []
    p: list[float] = []
    use: list[tuple[int, ...]] = []
    step_of: list[int] = []
    scaled, limits = scaled_quotas(problem)
    for s, opts in enumerate(problem.options):
        offsets.append(len(cost))
        for k, o in enumerate(opts):
            cost.append(o.cost)
            p.append(o.P)
            use.append(scaled[s][k])
            step_of.append(s)
    r = len(problem.resources)
    return _Data(
        tuple(offsets),
        np.array(step_of, dtype=np.int64),
        np.array(cost, dtype=np.float64),
        np.array(p, dtype=np.float64),
        np.array(use, dtype=np.float64).reshape(len(cost), r),
        limits,
    )


def _rows(
    rows: Sequence[int], cols: Sequence[int], vals: Sequence[float], shape: tuple[int, int]
) -> sp.csr_matrix:
    return sp.csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)), shape=shape)


def _pick_rows(
    d: _Data, steps: Sequence[int], values: np.ndarray[Any, np.dtype[Any]]
) -> sp.csr_matrix:
    """Row ``e`` holds ``values`` over the options of step ``steps[e]`` (zeros left out)."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    ends = (*d.offsets[1:], d.n)
    for e, s in enumerate(steps):
        for k in range(d.offsets[s], ends[s]):
            if values[k]:
                rows.append(e)
                cols.append(k)
                vals.append(float(values[k]))
    return _rows(rows, cols, vals, (len(steps), d.n))


def _duration_rows(d: _Data, steps: Sequence[int]) -> sp.csr_matrix:
    """Row ``e`` picks ``P_{steps[e]}(x)``."""
    return _pick_rows(d, steps, d.p)


def _usage_rows(d: _Data, steps: Sequence[int], r: int) -> sp.csr_matrix:
    """Row ``e`` picks the usage of resource ``r`` by step ``steps[e]``."""
    return _pick_rows(d, steps, d.use[:, r])


def _select(idx: Sequence[int], size: int) -> sp.csr_matrix:
    return _rows(range(len(idx)), idx, [1.0] * len(idx), (len(idx), size))


def horizon(problem: Problem, deadline: float | None, cap: float | None) -> float:
    """An upper bound on the makespan of some optimal schedule."""
    bounds = [b for b in (deadline, cap) if b is not None]
    if bounds:
        return min(bounds)
    # running every step alone, one after another, honours every quota
    return sum(max(o.P for o in opts) for opts in problem.options)


def ancestors(problem: Problem) -> list[set[int]]:
    """Every step's ancestors (steps are in a topological order)."""
    anc: list[set[int]] = []
    for j in range(problem.size):
        a: set[int] = set()
        for i in problem.preds[j]:
            a.add(i)
            a |= anc[i]
        anc.append(a)
    return anc


def comparable_pairs(problem: Problem) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i`` an ancestor of ``j``: they can never overlap."""
    anc = ancestors(problem)
    return {(i, j) for j in range(problem.size) for i in anc[j]}


def conflict_pairs(problem: Problem, resources: Sequence[int]) -> list[tuple[int, int]]:
    """Unordered pairs that may run at the same time and may share a binding resource."""
    comp = comparable_pairs(problem)
    uses = [
        [
            max(usage(o, problem.resources)[r] for o in opts) > 0
            for r in range(len(problem.resources))
        ]
        for opts in problem.options
    ]
    out: list[tuple[int, int]] = []
    for j in range(problem.size):
        for i in range(j):
            if (i, j) in comp:
                continue
            if any(uses[i][r] and uses[j][r] for r in resources):
                out.append((i, j))
    return out


def solve_milp(
    problem: Problem,
    *,
    objective: Literal["cost", "time"],
    deadline: float | None,
    makespan_cap: float | None = None,
    energy: Sequence[int] = (),
    exact_quota: Sequence[int] = (),
    time_limit_s: float | None = None,
    relax: bool = False,
    start: tuple[Sequence[int], Sequence[float]] | None = None,
    watch: Watch | None = None,
) -> MilpResult:
    """Build and solve the model; ``deadline`` may be tighter than the problem's.

    ``relax``: solve the LP relaxation only (``0 <= x <= 1``); its optimum is the
    bound, and there is no choice.

    ``energy``: resource positions that get energy cuts (a relaxation of the
    quota). ``exact_quota``: resource positions enforced exactly at every instant
    (disjunctive model; meant for small problems). ``start``: a plan (options and
    start times) HiGHS starts from; ``watch``: progress and stop requests.

    Without ``exact_quota`` the rows go to HiGHS as a matrix
    (:mod:`exo.compiler.milpmatrix`), the one cvxpy would make of them, without
    cvxpy; the disjunctive model is written in cvxpy.
    """
    t0 = time.perf_counter()
    shape = _shape(problem, deadline, makespan_cap)
    d = shape.data
    cuts = [c for r in energy for c in _capacity_cuts(problem, d, r, shape.head, shape.tail)]
    warm = None if start is None or relax else _warm_start(d, start)
    if not exact_quota:
        from exo.compiler.milpmatrix import matrix_model, solve_matrix

        model = matrix_model(problem, shape, cuts, objective, relax)
        del cuts  # dense rows (17 MB at 10,000 steps): not held while HiGHS runs
        got = solve_matrix(model, shape, problem.size, relax, time_limit_s, warm, watch)
    else:
        got = _solve_cvxpy(
            problem, shape, cuts, objective, exact_quota, relax, time_limit_s, warm, watch
        )
    if got is None:
        return MilpResult("unknown", None, None, None, -math.inf, time.perf_counter() - t0, 0.0)
    build = time.perf_counter() - t0 - got.solve_s
    return _relaxed_result(got, build) if relax else _result(d, problem.size, got, build)


@dataclass(frozen=True, slots=True)
class Shape:
    """What every form of the model shares: the option data, the bounds on the starts
    and the makespan, the horizon, the precedence and sink rows' matrices."""

    data: _Data
    horizon: float
    head: list[float]
    tail: list[float]
    t_lo: np.ndarray[Any, np.dtype[np.float64]]
    t_hi: np.ndarray[Any, np.dtype[np.float64]]
    m_lo: float
    #: ``diff @ t - durations @ x >= 0`` per edge (``None`` without edges).
    edges: tuple[sp.csr_matrix, sp.csr_matrix] | None
    #: ``sinks @ t + durations @ x <= M``.
    sinks: tuple[sp.csr_matrix, sp.csr_matrix]


def _shape(problem: Problem, deadline: float | None, cap: float | None) -> Shape:
    d = _data(problem)
    n_steps = problem.size
    h = horizon(problem, deadline, cap)
    fastest = [min(o.P for o in opts) for opts in problem.options]
    head, tail = longest_paths(problem, fastest)
    lo = np.array(head)
    hi = np.maximum(lo, np.array([h - fastest[s] - tail[s] for s in range(n_steps)]))
    m_lo = max((head[s] + fastest[s] for s in range(n_steps)), default=0.0)
    edges = [(i, j) for j in range(n_steps) for i in problem.preds[j]]
    diff = None
    if edges:
        diff = (
            _rows(
                [e for e in range(len(edges)) for _ in (0, 1)],
                [v for i, j in edges for v in (j, i)],
                [v for _ in edges for v in (1.0, -1.0)],
                (len(edges), n_steps),
            ),
            _duration_rows(d, [i for i, _ in edges]),
        )
    succ = problem.successors()
    sinks = [s for s in range(n_steps) if not succ[s]]
    return Shape(
        d, h, head, tail, lo, hi, m_lo, diff, (_select(sinks, n_steps), _duration_rows(d, sinks))
    )


def cvxpy_model(
    problem: Problem,
    shape: Shape,
    cuts: Sequence[Cut],
    objective: Literal["cost", "time"],
    exact_quota: Sequence[int] = (),
    relax: bool = False,
) -> tuple[cp.Problem, cp.Variable, cp.Variable]:
    """The model written in cvxpy, its ``x`` and its ``t``."""
    import cvxpy as cp

    d = shape.data
    n_steps = problem.size
    x = cp.Variable(d.n, bounds=[0.0, 1.0]) if relax else cp.Variable(d.n, boolean=True)
    t = cp.Variable(n_steps, bounds=[shape.t_lo, shape.t_hi])
    mk = cp.Variable(bounds=[shape.m_lo, math.inf])
    assign = _rows(d.step_of.tolist(), range(d.n), [1.0] * d.n, (n_steps, d.n))
    cons: list[Any] = [assign @ x == 1, mk <= shape.horizon, *_timing(shape, x, t, mk)]
    if problem.budget is not None:
        cons.append(d.cost @ x <= problem.budget)
    cons.extend(w @ x <= c * (mk - lo - hi) for w, c, lo, hi in cuts)
    if exact_quota:
        cons.extend(_disjunctive(problem, d, x, t, shape.horizon, exact_quota))
    goal = cp.Minimize(d.cost @ x if objective == "cost" else mk)
    return cp.Problem(goal, cons), x, t


def _solve_cvxpy(
    problem: Problem,
    shape: Shape,
    cuts: Sequence[Cut],
    objective: Literal["cost", "time"],
    exact_quota: Sequence[int],
    relax: bool,
    time_limit_s: float | None,
    warm: dict[int, np.ndarray[Any, np.dtype[np.float64]]] | None,
    watch: Watch | None,
) -> RunResult | None:
    """The disjunctive model, through cvxpy (``None``: HiGHS gave up)."""
    import cvxpy as cp

    prob, x, t = cvxpy_model(problem, shape, cuts, objective, exact_quota, relax)
    try:
        return run(prob, {0: x, 1: t}, time_limit_s=time_limit_s, start=warm, watch=watch)
    except (cp.error.SolverError, ValueError):
        # HiGHS gave up (numerically extreme figures): no solution and no bound,
        # the caller falls back to simple plans and reports what it can prove
        return None


def _timing(shape: Shape, x: cp.Variable, t: cp.Variable, mk: cp.Variable) -> list[Any]:
    """Precedence (``t_j >= t_i + P_i(x)`` per edge) and makespan (``M >= t_s + P_s(x)``
    per sink) rows."""
    cons: list[Any] = []
    if shape.edges is not None:
        diff, dur = shape.edges
        cons.append(diff @ t - dur @ x >= 0)
    sel, dur_s = shape.sinks
    cons.append(sel @ t + dur_s @ x <= mk)
    return cons


def _warm_start(
    d: _Data, start: tuple[Sequence[int], Sequence[float]]
) -> dict[int, np.ndarray[Any, np.dtype[np.float64]]]:
    """A plan (option positions and start times) as values of ``x`` and ``t`` for HiGHS."""
    xs = np.zeros(d.n)
    for st, k in enumerate(start[0]):
        xs[d.offsets[st] + k] = 1.0
    return {0: xs, 1: np.asarray(start[1], dtype=np.float64)}


def _relaxed_result(got: RunResult, build: float) -> MilpResult:
    """The LP relaxation's answer: its optimum is the bound, and there is no choice."""
    ok = got.status == "optimal"
    return MilpResult(
        "optimal" if ok else ("infeasible" if got.status == "infeasible" else "unknown"),
        None,
        None,
        got.value if ok else None,
        got.bound,
        build,
        got.solve_s,
    )


def _result(d: _Data, n_steps: int, got: RunResult, build: float) -> MilpResult:
    """The MILP's answer: the chosen option per step and the model's start times."""
    if got.values is None:
        status: MilpStatus = "infeasible" if got.status == "infeasible" else "unknown"
        return MilpResult(status, None, None, None, got.bound, build, got.solve_s)
    xv = got.values[0]
    ends = (*d.offsets[1:], d.n)
    choice = tuple(int(np.argmax(xv[d.offsets[s] : ends[s]])) for s in range(n_steps))
    starts = tuple(float(v) for v in got.values[1])
    status = "optimal" if got.status == "optimal" else "feasible"
    return MilpResult(status, choice, starts, got.value, got.bound, build, got.solve_s)


#: Capacity cuts "at most j of these at once" for j = 1 .. this.
CAPACITY_CLASSES = 3


#: A cut ``weights @ x <= cap * (M - lo - hi)`` (see :func:`_capacity_cuts`).
Cut = tuple[np.ndarray[Any, np.dtype[np.float64]], float, float, float]


def _capacity_cuts(
    problem: Problem,
    d: _Data,
    r: int,
    head: Sequence[float],
    tail: Sequence[float],
) -> list[Cut]:
    """Cuts that every schedule honouring quota ``r`` meets (so the model stays a relaxation).

    - energy: the usage-hours of all steps fit under the quota for the whole span
      they can run in, ``[min head, M - min tail]``: ``sum u P x <= Q (M - h - t)``;
    - capacity classes: no more than ``j`` options holding over ``Q / (j + 1)`` run
      at once, so their hours fit ``j`` times in their span:
      ``sum_{u > Q/(j+1)} P x <= j (M - h - t)``. Whole 8-GPU instances under a
      quota of 12 (``u = 8 > 6``) must run one after another, which the energy
      cut alone (``8 P <= 12 M``) does not see;
    - windows: the same for the options of steps that cannot start before ``a``
      nor end after ``M - b`` (their heads and tails by the fastest options).
    """
    q = float(d.limits[r])
    use = d.use[:, r]
    out: list[Cut] = []

    users = use > 0
    if not np.any(users):
        return out
    classes: list[tuple[np.ndarray[Any, np.dtype[np.float64]], float]] = [(use * d.p, q)]
    for j in range(1, CAPACITY_CLASSES + 1):
        heavy = use > q / (j + 1) + 1e-9
        if not np.any(heavy):
            continue
        # implied by the class below when every heavy option holds more than Q / j
        if j > 1 and np.all(use[heavy] > q / j + 1e-9):
            continue
        classes.append((np.where(heavy, d.p, 0.0), float(j)))
    hs = np.asarray(head)[d.step_of]
    ts = np.asarray(tail)[d.step_of]
    for weight, cap in classes:
        live = weight > 0
        for lo, hi in _windows(hs[live], ts[live]):
            inside = live & (hs >= lo - 1e-12) & (ts >= hi - 1e-12)
            out.append((np.where(inside, weight, 0.0), cap, lo, hi))
    return out


#: Window cuts per class: thresholds on heads and on tails (each at most this many).
WINDOW_THRESHOLDS = 6


def _windows(
    heads: np.ndarray[Any, np.dtype[np.float64]], tails: np.ndarray[Any, np.dtype[np.float64]]
) -> list[tuple[float, float]]:
    """``(a, b)``: options of steps that start after ``a`` and end ``b`` before the end.

    The whole span (smallest head and tail) and a few quantiles of each.
    """

    def levels(v: np.ndarray[Any, np.dtype[np.float64]]) -> list[float]:
        u = np.unique(v)
        if len(u) <= WINDOW_THRESHOLDS:
            return [float(a) for a in u]
        idx = np.linspace(0, len(u) - 1, WINDOW_THRESHOLDS).round().astype(int)
        return [float(u[i]) for i in np.unique(idx)]

    hl, tl = levels(heads), levels(tails)
    pairs = {(a, tl[0]) for a in hl} | {(hl[0], b) for b in tl}
    return sorted(pairs)


def _disjunctive(
    problem: Problem,
    d: _Data,
    x: cp.Variable,
    t: cp.Variable,
    h: float,
    resources: Sequence[int],
) -> list[Any]:
    """Quotas at every instant, exactly, for pairs of steps that may overlap.

    Per pair ``{i, j}``: binaries ``b_ij`` (i ends before j starts), ``b_ji``,
    ``o`` (they may overlap), exactly one of them, and ``s`` (i starts no later
    than j). Load only rises when a step starts, so the quota is checked at every
    step's start ``t_j``: its own usage plus that of every step ``i`` with
    ``o = 1`` that started no later. ``v_ij`` carries ``u_i(x)`` when ``i`` is
    counted at ``t_j`` (``o = 1`` and ``s = 1``) and may be 0 otherwise.
    """
    import cvxpy as cp

    pairs = conflict_pairs(problem, resources)
    if not pairs:
        return []
    n_pairs = len(pairs)
    n_steps = problem.size
    b1 = cp.Variable(n_pairs, boolean=True)  # i before j
    b2 = cp.Variable(n_pairs, boolean=True)  # j before i
    ov = cp.Variable(n_pairs, boolean=True)  # overlap allowed
    sv = cp.Variable(n_pairs, boolean=True)  # i starts no later than j
    ii = [i for i, _ in pairs]
    jj = [j for _, j in pairs]
    ti = _select(ii, n_steps) @ t
    tj = _select(jj, n_steps) @ t
    pi = _duration_rows(d, ii) @ x
    pj = _duration_rows(d, jj) @ x
    cons: list[Any] = [
        b1 + b2 + ov == 1,
        tj - ti - pi + h * (1 - b1) >= 0,
        ti - tj - pj + h * (1 - b2) >= 0,
        ti - tj <= h * (1 - sv),
        tj - ti <= h * sv,
    ]
    cons.extend(_transitive(pairs, sv))
    for r in resources:
        cons.extend(_load_at_starts(problem, d, x, pairs, ov, sv, r))
    return cons


def _load_at_starts(
    problem: Problem,
    d: _Data,
    x: cp.Variable,
    pairs: Sequence[tuple[int, int]],
    ov: cp.Variable,
    sv: cp.Variable,
    r: int,
) -> list[Any]:
    """Quota ``r`` at every step's start: its own usage plus every ``v`` counted there.

    Only pairs where both steps may use ``r`` get ``v_ij`` / ``v_ji`` (see
    :func:`_disjunctive`).
    """
    n_steps = problem.size
    n_pairs = len(pairs)
    ii = [i for i, _ in pairs]
    jj = [j for _, j in pairs]
    q = d.limits[r]
    ends = (*d.offsets[1:], d.n)
    cap = [float(d.use[a:b, r].max()) for a, b in zip(d.offsets, ends, strict=True)]
    rel = [e for e, (i, j) in enumerate(pairs) if cap[i] > 0 and cap[j] > 0]
    if not rel:
        return []
    ui = _usage_rows(d, [ii[e] for e in rel], r) @ x
    uj = _usage_rows(d, [jj[e] for e in rel], r) @ x
    ci = np.array([cap[ii[e]] for e in rel], dtype=np.float64)
    cj = np.array([cap[jj[e]] for e in rel], dtype=np.float64)
    ovr = _select(rel, n_pairs) @ ov
    svr = _select(rel, n_pairs) @ sv
    import cvxpy as cp

    cpa: Any = cp  # parts of cvxpy that its type hints do not declare
    v_ij = cp.Variable(len(rel), nonneg=True)  # i counted at t_j
    v_ji = cp.Variable(len(rel), nonneg=True)  # j counted at t_i
    cons: list[Any] = [
        v_ij >= ui - cpa.multiply(ci, 2 - ovr - svr),
        v_ji >= uj - cpa.multiply(cj, 1 - ovr + svr),
    ]
    # load at every step's start
    at_j = _rows([jj[e] for e in rel], range(len(rel)), [1.0] * len(rel), (n_steps, len(rel)))
    at_i = _rows([ii[e] for e in rel], range(len(rel)), [1.0] * len(rel), (n_steps, len(rel)))
    own = _usage_rows(d, range(n_steps), r) @ x
    cons.append(own + at_j @ v_ij + at_i @ v_ji <= q)
    return cons


def _transitive(pairs: Sequence[tuple[int, int]], sv: cp.Variable) -> list[Any]:
    """The start order ``s`` has no 3-cycle, hence is a total order.

    Steps that start at the same instant may take either order, but the order must
    be consistent: then the last of them counts all the others in its load. For a
    triple ``a < b < c`` of pairwise conflicting steps, ``s_ab = s_bc = 1`` forces
    ``s_ac = 1`` and ``s_ab = s_bc = 0`` forces ``s_ac = 0``.
    """
    index = {p: e for e, p in enumerate(pairs)}
    partners: dict[int, set[int]] = {}
    for i, j in pairs:
        partners.setdefault(i, set()).add(j)
    rows_up: list[tuple[int, int, int]] = []
    for a, b in pairs:
        for c in sorted(partners.get(b, ())):
            if (a, c) in index:
                rows_up.append((index[(a, b)], index[(b, c)], index[(a, c)]))
    if not rows_up:
        return []
    m = len(rows_up)
    n = len(pairs)
    pick_ab = _rows(range(m), [r[0] for r in rows_up], [1.0] * m, (m, n)) @ sv
    pick_bc = _rows(range(m), [r[1] for r in rows_up], [1.0] * m, (m, n)) @ sv
    pick_ac = _rows(range(m), [r[2] for r in rows_up], [1.0] * m, (m, n)) @ sv
    return [pick_ab + pick_bc - pick_ac <= 1, pick_ac - pick_ab - pick_bc <= 0]
