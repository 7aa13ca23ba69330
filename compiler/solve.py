"""Solving a :class:`~exo.compiler.problem.Problem`: which model, which schedule, which bound.

- No quota can bind: the MILP alone is exact; the schedule is ASAP.
- Quotas can bind: first the MILP with energy cuts (a relaxation). If its choice
  has a quota-respecting schedule that meets the deadline (serial schedule
  generation, several priority rules), the relaxation's optimum is reached and
  the plan is optimal. Otherwise small problems (``<= SMALL_STEPS`` steps) are
  solved with the exact disjunctive model; large ones by tightening the
  deadline of the relaxation until the heuristic schedule meets the real one,
  with the first relaxation's bound as the proven bound. A stage's plan that meets
  every constraint is then improved by :mod:`exo.compiler.refine` (local search,
  the exact model, local search).
- ``objective = time`` is lexicographic: first the shortest makespan, then the
  cheapest plan whose makespan is at most that (within ``TOL_H``). Under a time
  limit, a makespan not yet proven gets back the time the cost stage leaves
  (:data:`RESUME_ROUNDS`): it resumes from its plan and bound, and a shorter
  makespan sends the cost stage round again; the whole limit is used until
  both are proven.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from exo.compiler.anytime import Clock as Clock  # re-exported: part of this API
from exo.compiler.costmodel import prune_dominated
from exo.compiler.exact import SMALL_STEPS, solve_exact, watch
from exo.compiler.ir import Objective
from exo.compiler.milp import MilpResult, solve_milp
from exo.compiler.problem import TOL_H, Problem, binding_resources, quota_shortfalls
from exo.compiler.refine import Tried
from exo.compiler.refine import best as _best
from exo.compiler.refine import from_milp as _from_milp
from exo.compiler.refine import improve as _improve
from exo.compiler.repair import Stage as _Stage
from exo.compiler.repair import accept as _accept
from exo.compiler.repair import best_schedule as best_schedule  # re-exported: tests use it
from exo.compiler.repair import fallback as _fallback
from exo.compiler.repair import fill_slack as fill_slack  # re-exported: tests use it
from exo.compiler.repair import limit_of as _limit
from exo.compiler.repair import quick as _quick
from exo.compiler.repair import repair as _repair
from exo.compiler.repair import tol as _tol
from exo.compiler.repair import traded as _traded
from exo.compiler.schedule import improve, makespan
from exo.compiler.solution import Solution as Solution  # re-exported: part of this API
from exo.compiler.solution import Status as Status
from exo.compiler.solution import pick as _pick  # noqa: F401 (tests import it from here)
from exo.compiler.solution import trivial_cost_bound as trivial_cost_bound
from exo.compiler.solution import trivial_makespan_bound as trivial_makespan_bound

#: Above this many options (after pruning), large quota problems use a slimmer model.
SLIM_OPTIONS = 40_000
#: The share of a stage's time the trade-off plan the relaxation starts from may use.
SEED_SHARE = 0.25


def _stage(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    clock: Clock,
    fraction: float,
    hint: tuple[int, ...] | None = None,
    guide: Sequence[float] | None = None,
    tried: Tried | None = None,
) -> _Stage:
    """Minimise one objective within the deadline, the budget and ``cap`` on the makespan.

    ``fraction``: the share of the clock's remaining time this stage may use;
    ``hint``: a choice known to meet every constraint (the fastest plan, when the
    cheapest among the fastest is sought); ``guide``: its starts, the order its
    schedule is rebuilt in (the priority rules alone may miss its makespan);
    ``tried``: the local searches of this solve so far (:class:`Tried`).
    """
    limit = _limit(problem, cap)
    if not clock.affords(clock.model_s):
        # no time for a solver model (its build cannot look at the clock): a quick plan
        quick = _quick(problem, objective, cap, hint, clock)
        _tell(clock, objective, quick, "quick plan")
        return quick
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    end = None if clock.remaining() is None else clock.elapsed() + (clock.share(fraction) or 0.0)
    if not binding:
        return _without_quotas(problem, objective, cap, clock, fraction)
    # a plan without a model first (a fraction of a second at 1,000 steps, never more
    # than a share of the stage's time): the relaxation starts from it
    seed_clock = clock.child(clock.share(fraction * SEED_SHARE))
    seed = _traded(problem, objective, cap, trivial_cost_bound(problem), seed_clock)
    if seed is not None:
        _tell(clock, objective, seed, "heuristic")
    relaxed, lift, model = _relaxation(problem, objective, limit, binding, clock, fraction, seed)
    if relaxed.status == "infeasible":
        return _Stage.impossible()
    clock.report(objective, "relaxation", bound=relaxed.bound)
    found = _from_milp(problem, objective, relaxed, cap, relaxed.bound, clock.expired)
    if found is not None and found.proven:
        return found
    if found is None and hint is not None:
        found = _accept(problem, objective, hint, guide, cap, relaxed.bound)
    if found is None:
        found = _repair(problem, objective, cap, clock, fraction, relaxed, binding, model, lift)
    if seed is not None:
        found = _best(objective, found, replace(seed, bound=max(seed.bound, relaxed.bound)))
    if (found is None or found.choice is None) and not clock.affords(clock.model_s):
        quick = _quick(problem, objective, cap, hint, clock)
        return replace(quick, bound=max(quick.bound, relaxed.bound))
    if found is None or found.choice is None:
        return _exact_alone(problem, objective, cap, clock, fraction, binding, relaxed.bound)
    _tell(clock, objective, found, "heuristic")
    stage_clock = clock.child(None if end is None else max(end - clock.elapsed(), 0.0))
    return _improve(problem, objective, cap, found, stage_clock, binding, tried)


def _without_quotas(
    problem: Problem, objective: Objective, cap: float | None, clock: Clock, fraction: float
) -> _Stage:
    """No quota can bind: the MILP alone is exact."""
    r = solve_milp(
        problem,
        objective=objective,
        deadline=_limit(problem, cap),
        time_limit_s=clock.share(fraction),
        watch=watch(clock, objective, "model"),
    )
    if r.status == "infeasible":
        return _Stage.impossible()
    return _from_milp(problem, objective, r, cap, r.bound) or _Stage(
        None, None, None, r.bound, False
    )


def _exact_alone(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    clock: Clock,
    fraction: float,
    binding: Sequence[int],
    relaxed_bound: float,
) -> _Stage:
    """No plan from the relaxation or its repair: the exact model without a start."""
    got = solve_exact(
        problem,
        objective=objective,
        limit=_limit(problem, cap),
        binding=binding,
        clock=clock,
        seconds=clock.share(fraction),
        plan=None,
    )
    if got is None:
        return _Stage(None, None, None, relaxed_bound, False)
    if got.result.status == "infeasible":
        return _Stage.impossible()
    bound = max(relaxed_bound, got.result.bound)
    return _from_milp(problem, objective, got.result, cap, bound) or _Stage(
        None, None, None, bound, False
    )


def _tell(clock: Clock, objective: Objective, st: _Stage, phase: str) -> None:
    clock.report(objective, phase, best=st.value, bound=st.bound)


def _relaxation(
    problem: Problem,
    objective: Objective,
    limit: float | None,
    binding: Sequence[int],
    clock: Clock,
    fraction: float,
    seed: _Stage | None = None,
) -> tuple[MilpResult, Callable[[MilpResult], MilpResult], Problem]:
    """The energy-cut relaxation: a bound, and a choice to start from.

    ``seed``: a plan that meets every constraint (so also the relaxation's), which
    HiGHS starts from (not on the slimmer model, whose options differ).
    """
    model: Problem = problem
    lift: Callable[[MilpResult], MilpResult] = _same
    lp_bound: float | None = None
    if problem.size > SMALL_STEPS and sum(len(o) for o in problem.options) > SLIM_OPTIONS:
        # Very large: the bound from the LP relaxation over every option, the plan
        # from a model over each step's (cost, P) front only (a smaller MILP).
        lp = solve_milp(
            problem,
            objective=objective,
            deadline=limit,
            energy=binding,
            relax=True,
            time_limit_s=clock.share(fraction * 0.2),
        )
        if lp.status == "infeasible":
            return lp, lift, model
        lp_bound = lp.bound
        model, lift = _slim(problem)
    share = 0.3 if problem.size <= SMALL_STEPS else 0.6
    start = None
    if seed is not None and seed.choice is not None and seed.starts is not None:
        start = (seed.choice, seed.starts) if model is problem else None
    relaxed = lift(
        solve_milp(
            model,
            objective=objective,
            deadline=limit,
            energy=binding,
            time_limit_s=clock.share(fraction * share),
            start=start,
            # its solutions are not plans (the energy rows relax the quotas), and a
            # slimmer model's bound is not one for every option
            watch=watch(clock, objective, "relaxation", plans=False, bounds=model is problem),
        )
    )
    if lp_bound is not None:
        relaxed = replace(
            relaxed, bound=lp_bound, status="feasible" if relaxed.choice else "unknown"
        )
    return relaxed, lift, model


def _same(r: MilpResult) -> MilpResult:
    return r


def _slim(problem: Problem) -> tuple[Problem, Callable[[MilpResult], MilpResult]]:
    """The problem with each step's (cost, P) Pareto front only, and the map back."""
    fronts = tuple(tuple(prune_dominated(opts)) for opts in problem.options)
    index = [{o: k for k, o in enumerate(opts)} for opts in problem.options]

    def lift(r: MilpResult) -> MilpResult:
        if r.choice is None:
            return r
        full = tuple(index[s][fronts[s][k]] for s, k in enumerate(r.choice))
        return replace(r, choice=full)

    return replace(problem, options=fronts), lift


#: The share of the time left that the cost stage gets while the makespan is unproven.
COST_SHARE = 0.5
#: Rounds in which an unproven makespan gets back the time the cost stage left.
RESUME_ROUNDS = 3
#: The share of the time left that each such round may use (the rest: a new cost stage).
RESUME_SHARE = 0.7


def solve_problem(problem: Problem, clock: Clock) -> Solution:
    """The best plan for the problem's objective, with a proven bound and gap."""
    if problem.size == 0:
        return Solution("optimal", (), (), 0.0, 0.0, 0.0, 0.0, proved_by="bound")
    if any(not opts for opts in problem.options) or quota_shortfalls(problem):
        return Solution("infeasible")
    if problem.objective == "cost":
        st = _stage(problem, "cost", None, clock, 1.0)
        if st.infeasible:
            return Solution("infeasible")
        if st.choice is None:
            st = _fallback(problem, "cost", None, max(st.bound, trivial_cost_bound(problem))) or st
        return _solution(problem, st, st, clock)
    # the cost stage gets what the makespan stage leaves, unless no choice can change the cost
    tried = Tried()
    first = _stage(
        problem, "time", None, clock, 1.0 if _cost_is_fixed(problem) else 0.6, tried=tried
    )
    if first.infeasible:
        return Solution("infeasible")
    if first.choice is None:
        bound = max(first.bound, trivial_makespan_bound(problem))
        first = _fallback(problem, "time", None, bound) or first
        if first.choice is None:
            return _solution(problem, first, first, clock)
    assert first.value is not None
    # an unproven makespan keeps a share of what is left for itself (below)
    second = _cheapest_within(problem, first, clock, 1.0 if first.proven else COST_SHARE)
    for rounds in range(RESUME_ROUNDS, 0, -1):
        # the cost stage left time and the makespan is unproven: it gets the time back,
        # if it holds the one model a round may build (the round itself looks again
        # before the model, and the cost stage after a shorter plan too)
        if first.proven or clock.remaining() is None or not clock.affords(clock.model_s):
            break
        share = RESUME_SHARE if rounds > 1 and _another_round(clock) else 1.0
        again = _resume(problem, first, clock.child(clock.share(share)), tried)
        if again.value is None or again.value >= first.value - _tol("time", first.value):
            first = replace(first, bound=again.bound, proven=again.proven)
            continue
        # a shorter makespan: the cheapest plan within it (a quick one if no time is left)
        first = again
        second = _cheapest_within(problem, first, clock, 1.0 if first.proven else COST_SHARE)
    return _solution(problem, first, second, clock)


def resume(problem: Problem, sol: Solution, clock: Clock) -> Solution:
    """A cost plan not yet proven, improved with the time ``clock`` has left.

    The optimizer keeps a share of the limit for the baselines; when they do not
    need it (not computed because the time left cannot hold them, or done early)
    it comes back here: the search goes on from the plan (the local search, the
    exact model from the plan where one fits, the local search again) until the
    clock runs out or the bound is reached. Returns ``sol`` as it is: without a
    time limit (the search is then deterministic and already done), with less
    time left than one solver model takes (:attr:`Clock.model_s`), for a plan
    already proven, and for ``objective = time`` (its makespan stage decides the gap).
    """
    if (
        problem.objective != "cost"
        or sol.status != "feasible"
        or sol.choice is None
        or sol.starts is None
        or sol.cost is None
        or clock.remaining() is None
        # a few schedules (the local search looks at the clock between them) and
        # the exact model's build cannot stop: no less time than a model takes
        or not clock.affords(clock.model_s)
    ):
        return sol
    bound = -math.inf if sol.lower_bound is None else sol.lower_bound
    found = _Stage(sol.choice, sol.starts, sol.cost, bound, False)
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    got = _improve(problem, "cost", None, found, clock, binding)
    got = replace(got, bound=max(got.bound, bound))
    if got.value is not None and got.value <= got.bound + _tol("cost", got.value):
        got = replace(got, proven=True)
    if not got.proven and got.value is not None and got.value >= sol.cost - _tol("cost", sol.cost):
        return sol
    return _solution(problem, got, got, clock)


def _cheapest_within(problem: Problem, first: _Stage, clock: Clock, fraction: float) -> _Stage:
    """The cost stage of ``objective = time``: the cheapest plan within the first's makespan."""
    assert first.value is not None and first.choice is not None
    cost = problem.cost(first.choice)
    floor = trivial_cost_bound(problem)
    if cost <= floor + _tol("cost", cost):
        # every step already runs its cheapest option: nothing among the fastest is cheaper
        return _Stage(first.choice, first.starts, cost, floor, True, trivial=True)
    cap = first.value + TOL_H
    second = _stage(problem, "cost", cap, clock, fraction, hint=first.choice, guide=first.starts)
    if second.choice is None or second.value is None:
        # the first stage's plan is within the cap, so "infeasible" is a numerical artefact
        bound = -math.inf if second.infeasible else second.bound
        second = _Stage(first.choice, first.starts, problem.cost(first.choice), bound, False)
    return second


def _another_round(clock: Clock) -> bool:
    """Whether what a resume round leaves (:data:`RESUME_SHARE`) holds another one;
    if not, it takes all that is left (else unused: PSPLIB ``j2061_7``, 6 s of 60)."""
    return clock.affords(clock.model_s / (1.0 - RESUME_SHARE))


def _resume(problem: Problem, first: _Stage, clock: Clock, tried: Tried | None = None) -> _Stage:
    """The makespan stage again, from its plan and bound, within ``clock``."""
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    got = _improve(problem, "time", None, first, clock, binding, tried)
    return replace(got, bound=max(got.bound, first.bound))


def _cost_is_fixed(problem: Problem) -> bool:
    """Every option of each step costs the same: the cheapest among the fastest is any of them."""
    return all(len({o.cost for o in opts}) == 1 for opts in problem.options)


def _solution(problem: Problem, primary: _Stage, costs: _Stage, clock: Clock) -> Solution:
    """Assemble: ``primary`` decides status and gap, ``costs`` the plan and the cost bound."""
    if costs.choice is None or costs.starts is None:
        note = (
            "the time limit was reached before any plan was found"
            if clock.expired()
            else "no plan was found, although none was proven impossible"
        )
        return Solution("infeasible", note=note)
    choice, starts = costs.choice, costs.starts
    jobs = problem.jobs(choice)
    if jobs.limits and not clock.expired():
        # the search took the first schedule within the deadline; the one reported
        # is improved (forward-backward passes never lengthen a schedule)
        starts = tuple(improve(jobs, starts, expired=clock.expired))
    cost = problem.cost(choice)
    span = makespan(jobs, starts)
    bound = max(trivial_cost_bound(problem), costs.bound)
    bound = min(bound, cost)
    proven = primary.proven and costs.proven
    trivial = primary.trivial and costs.trivial
    if problem.objective == "cost":
        gap = 0.0 if proven else _rel(cost, bound)
    elif not primary.proven:
        gap = _rel(primary.value or span, primary.bound)
    else:
        gap = 0.0 if proven else _rel(cost, bound)
    return Solution(
        "optimal" if proven else "feasible",
        tuple(choice),
        tuple(starts),
        cost,
        span,
        bound,
        gap,
        proved_by="bound" if proven and trivial else "solver",
    )


def _rel(value: float, bound: float) -> float:
    if not math.isfinite(bound):
        return 1.0
    if value <= 0.0:
        return 0.0
    return max(0.0, (value - bound) / value)
