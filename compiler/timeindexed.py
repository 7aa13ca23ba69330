"""The time-indexed model: quotas held exactly on a grid of periods (cvxpy, HiGHS).

Time is cut into periods of ``delta`` hours; ``z[s, k, t] = 1`` when step ``s``
has started, in option ``k``, by period ``t`` (monotone in ``t``; its last period
says option ``k`` is chosen). This is the step-variable form of the classic
time-indexed model of resource-constrained scheduling (Pritsker et al. 1969;
disaggregated precedence after Christofides et al. 1987): its linear relaxation
counts every period's load, where a continuous-time model only sees pairs of
steps through big-M terms, and each row has two entries per option instead of
one per period of its duration.

- one option per step: ``sum_k z[s, k, last] = 1``;
- precedence ``i -> j``, per period ``t``: ``j`` can have started by ``t`` only
  if ``i`` had started by ``t - p_i`` (``sum_k z[j,k,t] <= sum_k z[i,k,t-p_ik]``);
- quota ``r``, per period ``t``: ``sum u_k (z[s,k,t] - z[s,k,t-p_k]) <= Q_r``
  (an option runs in ``t`` when it started by ``t`` but not by ``t - p``), with
  usages and limit rounded to their smallest exact form
  (:mod:`exo.compiler.quotarows`);
- cliques, per period: options that can never overlap (a quota, the same step
  or a precedence chain keeps each pair apart) run at most one at a time
  (:mod:`exo.compiler.conflicts`), which the relaxation of the quota rows alone
  does not see;
- makespan (``objective = time``): ``w[t] <= ended_s(t)`` for every sink ``s``,
  ``M = horizon - sum w``; otherwise the horizon (the deadline, or a cap on
  the makespan) bounds every end;
- budget: ``sum cost x <= budget``.

How it relates to the continuous model of DESIGN §3: it is used when every
option's ``P`` is a whole number of periods (:func:`exact_grid`). Any schedule
then maps to one on the grid, no step later and no pair newly overlapping
(start ``s`` becomes ``floor(s / delta)``: ``floor(a) + floor(b) <= floor(a +
b)`` keeps every order, and intervals that overlap pairwise share an instant),
so the grid optimum *is* the optimum, and every grid schedule is a schedule.

Windows: a step starts no earlier than its predecessors' shortest chain allows
and ends no later than the horizon minus its successors' shortest chain; for
the questions in :data:`NARROWED` they are narrowed further by energetic
reasoning, detectable precedences and shaving (:mod:`exo.compiler.windows`),
which keeps every plan within the horizon and may prove that there is none
without building a model. What one question of a problem narrowed is kept for
the next, and where windows stay open the model and the split search answer,
raced on two cores (:mod:`exo.compiler.feasibility`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from exo.compiler.conflicts import conflict_graph, quota_cliques
from exo.compiler.feasibility import decide, known_of, narrowed
from exo.compiler.highs import RunResult, Watch, run
from exo.compiler.milp import ancestors
from exo.compiler.problem import Objective, Problem
from exo.compiler.quotarows import scaled_quotas
from exo.compiler.splitting import Searched
from exo.compiler.windows import Rules, Windows, precedence_windows

if TYPE_CHECKING:  # imported where a model is built: a plan without one never loads it
    import cvxpy as cp

Rounding = Literal["exact"]

#: Most periods a grid may have.
MAX_PERIODS = 4000
#: Most start variables ``y[s, k, t]`` of a model.
MAX_STARTS = 150_000
#: HiGHS settings once a plan is known: its sub-MIP heuristics (RINS, RENS,
#: feasibility jump, reduced-cost fixing at the root) look for plans, and on
#: PSPLIB's small multi-mode instances they took most of the time while the
#: bound, what is missing, stood still (docs/benchmarks.md).
PROVING_OPTIONS: dict[str, bool] = {
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_feasibility_jump": False,
    "mip_heuristic_run_root_reduced_cost": False,
}
#: HiGHS settings when asking only whether a plan ends by the horizon (no
#: objective): no heuristics at all. Most such questions have no plan, and
#: HiGHS' depth-first dives find one where it exists; on PSPLIB ``j1036_5`` and
#: ``j1040_7`` this halved the CPU time of the proofs that none exists and
#: found the plans that do in about the same time (docs/benchmarks.md).
#: And no restart after the root: HiGHS restarts the search when presolve can
#: fix enough columns, which on these questions (windows already narrowed)
#: mostly repeats the root; without it the proofs of PSPLIB ``j1829_9`` at 35,
#: ``j1261_6`` at 26 and ``j1829_6`` at 28 took 1.1-2.2 CPU s instead of
#: 1.6-2.9, the others the same (docs/benchmarks.md).
FEASIBILITY_OPTIONS: dict[str, bool | float] = {
    **PROVING_OPTIONS,
    "mip_heuristic_effort": 0.0,
    "mip_allow_restart": False,
}
#: The questions whose windows are narrowed first (:mod:`exo.compiler.windows`): "any
#: plan by the horizon?" and the cheapest plan by it (the cost stage of
#: ``objective = time`` asks it at the best makespan, where the windows are
#: tightest). Not the makespan model: its horizon is a plan's makespan, not the
#: one asked for, and above 30 steps (where it runs) shaving is slow.
NARROWED: tuple[Objective | None, ...] = (None, "cost")
#: ``P / delta`` within this of a whole number counts as whole (relative).
WHOLE_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class Grid:
    delta: float
    rounding: Rounding
    #: Periods of every option of every step.
    periods: tuple[tuple[int, ...], ...]


def _fraction(x: float) -> Fraction | None:
    f = Fraction(x).limit_denominator(3_600_000)
    if abs(float(f) - x) > WHOLE_TOL * max(1.0, abs(x)):
        return None
    return f


def exact_grid(problem: Problem, horizon_h: float) -> Grid | None:
    """The coarsest grid every ``P`` lies on, if the horizon spans few enough periods."""
    fracs: set[Fraction] = set()
    for opts in problem.options:
        for o in opts:
            f = _fraction(o.P)
            if f is None:
                return None
            fracs.add(f)
    if not fracs:
        return None
    num = 0
    den = 1
    for f in fracs:
        den = den * f.denominator // math.gcd(den, f.denominator)
    for f in fracs:
        num = math.gcd(num, f.numerator * (den // f.denominator))
    if num == 0:
        return None
    delta = num / den
    # a grid fine enough to underflow to 0.0 (many unrelated durations) is no grid
    if delta <= 0.0 or horizon_h > MAX_PERIODS * delta:
        return None
    return Grid(
        delta,
        "exact",
        tuple(tuple(round(o.P / delta) for o in opts) for opts in problem.options),
    )


@dataclass(frozen=True, slots=True)
class Columns:
    """The step variables ``z[s, k, t]``: step ``s`` started in option ``k`` by period ``t``.

    Option ``(s, k)`` owns columns ``first[s][k] .. first[s][k] + last - es``, one
    per start period ``es[s] .. ls[s][k]``; its last column is "option ``k`` chosen".
    """

    es: tuple[int, ...]
    ls: tuple[tuple[int, ...], ...]
    first: tuple[tuple[int, ...], ...]
    n: int
    horizon: int

    def col(self, s: int, k: int, t: int) -> int | None:
        """The column of ``z[s, k, t]`` (``None``: 0 before the window); past it, the last."""
        if t < self.es[s] or self.ls[s][k] < self.es[s]:
            return None
        return self.first[s][k] + min(t, self.ls[s][k]) - self.es[s]

    def chosen(self, s: int, k: int) -> int | None:
        return self.col(s, k, self.ls[s][k])


def horizon_periods(grid: Grid, horizon_h: float) -> int:
    ratio = horizon_h / grid.delta
    return math.floor(ratio + WHOLE_TOL * max(1.0, ratio))


def columns(
    problem: Problem, grid: Grid, horizon: int, windows: Windows | None = None
) -> Columns | None:
    """Every start period an option can use within the horizon (``None``: too many).

    ``windows``: narrower windows than the precedence chains give (:mod:`exo.compiler.windows`).
    """
    n = problem.size
    if windows is None:
        windows = precedence_windows(grid.periods, problem.preds, problem.successors(), horizon)
    head = windows.es
    count = 0
    first: list[tuple[int, ...]] = []
    for s in range(n):
        firsts = []
        for last in windows.ls[s]:
            firsts.append(count)
            count += max(0, last - head[s] + 1)
        if count > MAX_STARTS:
            return None
        first.append(tuple(firsts))
    return Columns(tuple(head), windows.ls, tuple(first), count, horizon)


class _Rows:
    """Sparse rows built one at a time (``lo <= a x <= hi``)."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.hi: list[float] = []
        self.count = 0

    def add(self, terms: Sequence[tuple[int | None, float]], hi: float) -> None:
        for c, v in terms:
            if c is not None and v != 0.0:
                self.rows.append(self.count)
                self.cols.append(c)
                self.vals.append(v)
        self.hi.append(hi)
        self.count += 1

    def matrix(self, n: int) -> sp.csr_matrix:
        return sp.csr_matrix(
            (np.asarray(self.vals, dtype=np.float64), (self.rows, self.cols)),
            shape=(self.count, n),
        )


def transitive_reduction(problem: Problem) -> list[tuple[int, int]]:
    """Edges ``i -> j`` not implied by a longer path (the others add nothing)."""
    anc = ancestors(problem)
    out: list[tuple[int, int]] = []
    for j in range(problem.size):
        direct = set(problem.preds[j])
        implied: set[int] = set()
        for i in direct:
            implied |= anc[i]
        out.extend((i, j) for i in sorted(direct - implied))
    return out


def _live(cols: Columns, s: int) -> list[int]:
    return [k for k, last in enumerate(cols.ls[s]) if last >= cols.es[s]]


def _structure(problem: Problem, grid: Grid, cols: Columns) -> _Rows:
    """Monotone step variables, precedence per period and the quotas per period (``<=``)."""
    rows = _Rows()
    p = grid.periods
    for s in range(problem.size):
        for k in _live(cols, s):
            base = cols.first[s][k]
            for t in range(cols.ls[s][k] - cols.es[s]):
                rows.add(((base + t, 1.0), (base + t + 1, -1.0)), 0.0)
    for i, j in transitive_reduction(problem):
        ki, kj = _live(cols, i), _live(cols, j)
        last_j = max((cols.ls[j][k] for k in kj), default=-1)
        for t in range(cols.es[j], last_j + 1):
            need = [(cols.col(i, k, t - p[i][k]), -1.0) for k in ki]
            if all(t - p[i][k] >= cols.ls[i][k] for k in ki):
                break  # i has surely ended by t: the rest hold trivially
            rows.add([(cols.col(j, k, t), 1.0) for k in kj] + need, 0.0)
    use, limits = scaled_quotas(problem)
    for r, limit in enumerate(limits):
        _quota_rows(problem, grid, cols, [[u[r] for u in opts] for opts in use], limit, rows)
    if limits:
        live = [_live(cols, s) for s in range(problem.size)]
        for clique in quota_cliques(conflict_graph(problem, use, limits, live)):
            _clique_rows(grid, cols, clique, rows)
    return rows


def _clique_rows(grid: Grid, cols: Columns, clique: Sequence[tuple[int, int]], rows: _Rows) -> None:
    """``sum run(t) <= 1`` over options that can never overlap, where two of them can run."""
    spans = [(s, k, cols.es[s], cols.ls[s][k] + grid.periods[s][k]) for s, k in clique]
    lo = min(a for _, _, a, _ in spans)
    hi = max(b for _, _, _, b in spans)
    for t in range(lo, hi):
        here = [(s, k) for s, k, a, b in spans if a <= t < b]
        if len({s for s, _ in here}) < 2:
            continue
        terms: list[tuple[int | None, float]] = []
        for s, k in here:
            terms.append((cols.col(s, k, t), 1.0))
            terms.append((cols.col(s, k, t - grid.periods[s][k]), -1.0))
        rows.add(terms, 1.0)


def _quota_rows(
    problem: Problem,
    grid: Grid,
    cols: Columns,
    use: Sequence[Sequence[int]],
    limit: int,
    rows: _Rows,
) -> None:
    """``sum u (z[t] - z[t - p]) <= Q`` in the periods where the quota can bind.

    ``use[s][k]``: the usage of option ``k`` of step ``s`` (rounded, see
    :mod:`exo.compiler.quotarows`), ``limit`` the quota's.
    """
    users: list[tuple[int, int, float]] = []
    for s in range(problem.size):
        for k in _live(cols, s):
            u = float(use[s][k])
            if u > 0 and grid.periods[s][k] > 0:
                users.append((s, k, u))
    if not users:
        return
    peak = np.zeros((problem.size, cols.horizon + 1))
    for s, k, u in users:
        lo, hi = cols.es[s], cols.ls[s][k] + grid.periods[s][k]
        peak[s, lo:hi] = np.maximum(peak[s, lo:hi], u)
    binds = np.flatnonzero(peak.sum(axis=0) > limit + 1e-9)
    for t in binds:
        terms: list[tuple[int | None, float]] = []
        for s, k, u in users:
            p = grid.periods[s][k]
            if cols.es[s] <= t < cols.ls[s][k] + p:
                terms.append((cols.col(s, k, int(t)), u))
                terms.append((cols.col(s, k, int(t) - p), -u))
        rows.add(terms, float(limit))


@dataclass(frozen=True, slots=True)
class GridResult:
    run: RunResult
    #: Option per step and start (hours) of the solution, if any.
    choice: tuple[int, ...] | None
    starts: tuple[float, ...] | None
    #: Proven bound of the grid model, in the objective's unit (hours for ``time``).
    bound: float
    value: float | None


def solve_grid(
    problem: Problem,
    grid: Grid,
    *,
    objective: Objective | None,
    horizon_h: float,
    time_limit_s: float | None,
    start: tuple[Sequence[int], Sequence[float]] | None = None,
    watch: Watch | None = None,
    remember: bool = False,
) -> GridResult | None:
    """Solve the time-indexed model (``None`` when it would be too large).

    ``horizon_h``: every step ends by then (the deadline, or a makespan to beat).
    ``objective``: ``None`` asks only whether any plan ends by the horizon
    (HiGHS stops at the first one; ``infeasible`` proves that none does).
    ``start``: a plan (options, starts in hours) on the grid to start from.
    ``remember``: start from this problem object's earlier narrowings and keep these
    for its next question (:func:`feasibility.known_of`): the exact stage's own problem, asked again
    by the descent and the resume rounds; not a problem asked once.
    """
    horizon = horizon_periods(grid, horizon_h)
    windows = None
    if objective in NARROWED:
        windows, time_limit_s = narrowed(
            problem, grid.periods, grid.delta, horizon, time_limit_s, watch, remember
        )
        if windows is None:
            return _none_fits()
    cols = columns(problem, grid, horizon, windows)
    if cols is None:
        return None
    if any(not _live(cols, s) for s in range(problem.size)):
        return _none_fits()
    if objective is None and windows is not None:
        return _feasible(problem, grid, horizon, windows, cols, time_limit_s, watch, remember)
    return _model(problem, grid, cols, objective, time_limit_s, start, watch)


def _model(
    problem: Problem,
    grid: Grid,
    cols: Columns,
    objective: Objective | None,
    time_limit_s: float | None,
    start: tuple[Sequence[int], Sequence[float]] | None,
    watch: Watch | None,
) -> GridResult:
    """The time-indexed model on the columns, solved by HiGHS."""
    import cvxpy as cp

    z = cp.Variable(cols.n, boolean=True)
    rows = _structure(problem, grid, cols)
    pick = _Rows()
    for s in range(problem.size):
        pick.add([(cols.chosen(s, k), 1.0) for k in _live(cols, s)], 1.0)
    cons: list[Any] = [pick.matrix(cols.n) @ z == 1]
    if rows.count:
        cons.append(rows.matrix(cols.n) @ z <= np.asarray(rows.hi))
    cost = _chosen_vector(problem, cols, lambda s, k: problem.options[s][k].cost)
    if problem.budget is not None:
        cons.append(cost @ z <= problem.budget)
    variables: dict[int, cp.Variable] = {0: z}
    goal, offset = _goal(problem, grid, cols, objective, z, cost, cons, variables)
    prob = cp.Problem(goal, cons)
    warm = None if start is None else _warm(problem, grid, cols, start, objective)
    opts: Mapping[str, bool | float] | None = PROVING_OPTIONS if warm is not None else None
    if objective is None:
        opts = FEASIBILITY_OPTIONS
    got = run(prob, variables, time_limit_s=time_limit_s, start=warm, watch=watch, options=opts)
    scale = grid.delta if objective == "time" else 1.0
    bound = (got.bound + offset) * scale if math.isfinite(got.bound) else got.bound
    if got.values is None:
        return GridResult(got, None, None, bound, None)
    choice, starts = _decode(problem, cols, got.values[0])
    value = None if got.value is None else (got.value + offset) * scale
    return GridResult(got, tuple(choice), tuple(s * grid.delta for s in starts), bound, value)


def _goal(
    problem: Problem,
    grid: Grid,
    cols: Columns,
    objective: Objective | None,
    z: cp.Variable,
    cost: np.ndarray[Any, Any],
    cons: list[Any],
    variables: dict[int, cp.Variable],
) -> tuple[cp.Minimize, float]:
    """The model's objective and the offset of its value (periods, for ``time``).

    ``time`` adds the finish variables (to ``variables``) and their rows (to ``cons``).
    """
    import cvxpy as cp

    if objective == "time":
        w, sink_rows = _finish(problem, grid, cols)
        cons.append(sink_rows[0] @ z - sink_rows[1] @ w >= 0)
        variables[1] = w
        return cp.Minimize(-np.ones(cols.horizon) @ w), float(cols.horizon)  # horizon - sum(w)
    if objective == "cost":
        return cp.Minimize(cost @ z), 0.0
    return cp.Minimize(np.zeros(cols.n) @ z), 0.0  # any plan within the horizon


def _feasible(
    problem: Problem,
    grid: Grid,
    horizon: int,
    windows: Windows,
    cols: Columns,
    time_limit_s: float | None,
    watch: Watch | None,
    remember: bool,
) -> GridResult:
    """ "A plan by the horizon?" on narrowed windows that stay open: the model and the
    split search, raced on two cores or in turn on one (:func:`feasibility.decide`; the
    search's frontier kept with the problem's narrowings when ``remember``). Without the
    energetic rule (no quota, or a long horizon) only the model runs.
    """
    known = known_of(problem, grid.delta, remember)
    use, limits = scaled_quotas(problem)
    rules = Rules(grid.periods, problem.preds, problem.successors(), use, limits, horizon)
    if not rules.energy:
        return _model(problem, grid, cols, None, time_limit_s, None, watch)

    def model(limit: float | None, stop: Watch | None) -> GridResult:
        return _model(problem, grid, cols, None, limit, None, stop)

    got = decide(rules, windows, known, time_limit_s, watch, model, _answered)
    if not isinstance(got, Searched):
        return got
    if got.outcome == "none":
        return _none_fits()
    if got.plan is None:  # the time is up: no model for what is left
        unknown = RunResult("unknown", None, None, -math.inf, False, 0.0, 0.0)
        return GridResult(unknown, None, None, -math.inf, None)
    found = RunResult("optimal", None, 0.0, 0.0, False, 0.0, 0.0)  # checked period by period
    return GridResult(found, got.plan[0], tuple(t * grid.delta for t in got.plan[1]), 0.0, 0.0)


def _answered(got: GridResult) -> bool:
    return got.run.status != "unknown"


def _none_fits() -> GridResult:
    """No plan ends by the horizon: a window closed, no model needed."""
    empty = RunResult("infeasible", None, None, math.inf, False, 0.0, 0.0)
    return GridResult(empty, None, None, math.inf, None)


def _chosen_vector(problem: Problem, cols: Columns, f: Any) -> np.ndarray[Any, Any]:
    out = np.zeros(cols.n)
    for s in range(problem.size):
        for k in _live(cols, s):
            c = cols.chosen(s, k)
            assert c is not None
            out[c] = f(s, k)
    return out


def _finish(
    problem: Problem, grid: Grid, cols: Columns
) -> tuple[cp.Variable, tuple[sp.csr_matrix, sp.csr_matrix]]:
    """``w[t]``: every sink has ended by period ``t`` (``w[t] <= ended_s(t)`` per sink)."""
    import cvxpy as cp

    succ = problem.successors()
    sinks = [s for s in range(problem.size) if not succ[s]]
    h = cols.horizon
    earliest = min(min(cols.es[s] + grid.periods[s][k] for k in _live(cols, s)) for s in sinks)
    upper = np.array([1.0 if t >= earliest else 0.0 for t in range(h)])
    w = cp.Variable(h, bounds=[np.zeros(h), upper]) if h else cp.Variable(0)
    ended = _Rows()
    pick_w: list[int] = []
    for s in sinks:
        for t in range(earliest, h):
            terms = [(cols.col(s, k, t - grid.periods[s][k]), 1.0) for k in _live(cols, s)]
            ended.add(terms, 0.0)
            pick_w.append(t)
    a = ended.matrix(cols.n)
    b = sp.csr_matrix(
        (np.ones(len(pick_w)), (np.arange(len(pick_w)), pick_w)), shape=(len(pick_w), h)
    )
    return w, (a, b)


def _decode(
    problem: Problem, cols: Columns, z: np.ndarray[Any, Any]
) -> tuple[list[int], list[int]]:
    choice = [0] * problem.size
    starts = [0] * problem.size
    for s in range(problem.size):
        live = _live(cols, s)
        k = max(live, key=lambda k: z[cols.chosen(s, k)])
        choice[s] = k
        base = cols.first[s][k]
        run_len = cols.ls[s][k] - cols.es[s] + 1
        block = z[base : base + run_len]
        on = np.flatnonzero(block > 0.5)
        starts[s] = cols.es[s] + (int(on[0]) if on.size else run_len - 1)
    return choice, starts


def _warm(
    problem: Problem,
    grid: Grid,
    cols: Columns,
    plan: tuple[Sequence[int], Sequence[float]],
    objective: Objective | None,
) -> dict[int, np.ndarray[Any, np.dtype[np.float64]]] | None:
    """Start values of a plan whose starts lie on the grid within the windows."""
    choice, starts = plan
    z = np.zeros(cols.n)
    end = 0
    for s, (k, t) in enumerate(zip(choice, starts, strict=True)):
        tau = round(t / grid.delta)
        if not cols.es[s] <= tau <= cols.ls[s][k]:
            return None
        base = cols.first[s][k]
        z[base + tau - cols.es[s] : base + cols.ls[s][k] - cols.es[s] + 1] = 1.0
        end = max(end, tau + grid.periods[s][k])
    out = {0: z}
    if objective == "time":
        out[1] = np.array([1.0 if t >= end else 0.0 for t in range(cols.horizon)])
    return out
