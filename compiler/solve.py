"""Solving a :class:`~exo.compiler.problem.Problem`: which model, which schedule, which bound.

- No quota can bind: the MILP alone is exact; the schedule is ASAP.
- Quotas can bind: first the MILP with energy cuts (a relaxation). If its choice
  has a quota-respecting schedule that meets the deadline (serial schedule
  generation, several priority rules), the relaxation's optimum is reached and
  the plan is optimal. Otherwise small problems (``<= SMALL_STEPS`` steps) are
  solved with the exact disjunctive model; large ones by tightening the
  deadline of the relaxation until the heuristic schedule meets the real one,
  with the first relaxation's bound as the proven bound.
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
from dataclasses import dataclass, replace

from exo.compiler.anytime import Clock as Clock  # re-exported: part of this API
from exo.compiler.costmodel import prune_dominated, usage
from exo.compiler.exact import SMALL_STEPS, solve_exact, watch, whole_periods
from exo.compiler.heuristics import Found, cheapen, shorten
from exo.compiler.ir import Objective
from exo.compiler.milp import MilpResult, solve_milp
from exo.compiler.problem import (
    TOL_H,
    TOL_USD,
    Problem,
    binding_resources,
    quota_shortfalls,
)
from exo.compiler.schedule import (
    Jobs,
    asap,
    critical,
    improve,
    makespan,
    priority_order,
    profile_of,
    serial_sgs,
    tails,
)
from exo.compiler.solution import Solution as Solution  # re-exported: part of this API
from exo.compiler.solution import Status as Status
from exo.compiler.solution import pick as _pick
from exo.compiler.solution import trivial_cost_bound as trivial_cost_bound
from exo.compiler.solution import trivial_makespan_bound as trivial_makespan_bound

#: Above this many options (after pruning), large quota problems use a slimmer model.
SLIM_OPTIONS = 40_000
#: Tightening rounds of the large-problem quota heuristic.
REPAIR_ROUNDS = 6


@dataclass(frozen=True, slots=True)
class _Stage:
    """One objective solved: a plan (if any), its value and a proven bound."""

    choice: tuple[int, ...] | None
    starts: tuple[float, ...] | None
    value: float | None
    bound: float
    proven: bool
    infeasible: bool = False
    #: Proven by the trivial bound alone (no solver model).
    trivial: bool = False

    @staticmethod
    def impossible() -> _Stage:
        return _Stage(None, None, None, math.inf, True, infeasible=True)


def _value(
    problem: Problem, objective: Objective, choice: Sequence[int], starts: Sequence[float]
) -> float:
    if objective == "cost":
        return problem.cost(choice)
    return makespan(problem.jobs(choice), starts)


def _limit(problem: Problem, cap: float | None) -> float | None:
    bounds = [b for b in (problem.deadline, cap) if b is not None]
    return min(bounds) if bounds else None


def best_schedule(
    problem: Problem,
    choice: Sequence[int],
    guide: Sequence[float] | None = None,
    enough: float | None = None,
    expired: Callable[[], bool] | None = None,
) -> tuple[float, ...]:
    """The shortest of several serial-SGS schedules of ``choice`` (deterministic).

    ``enough``: a makespan that is good enough (the deadline, when the objective
    is cost): the first schedule that reaches it is returned as it is.
    """
    jobs = problem.jobs(choice)
    if not jobs.limits:
        return tuple(asap(jobs))
    rules: list[Sequence[float]] = []
    if guide is not None:
        rules.append(guide)
    tl = tails(jobs)
    rules.append([-v for v in tl])  # longest remaining path first (latest start time)
    rules.append([float(i) for i in range(jobs.size)])  # declaration / topological order
    best: tuple[float, ...] | None = None
    best_ms = math.inf
    for rule in rules:
        if best is not None and expired is not None and expired():
            break
        starts = serial_sgs(jobs, priority_order(jobs, rule))
        if enough is not None and makespan(jobs, starts) <= enough + TOL_H:
            return tuple(starts)
        starts = improve(jobs, starts, expired=expired)
        ms = makespan(jobs, starts)
        if ms < best_ms - 1e-12:
            best, best_ms = tuple(starts), ms
        if enough is not None and ms <= enough + TOL_H:
            break
    assert best is not None
    return best


def _enough(problem: Problem, objective: Objective, cap: float | None) -> float | None:
    """For the cost objective any schedule within the limit will do; for time, the best."""
    return _limit(problem, cap) if objective == "cost" else None


def _within(problem: Problem, jobs: Jobs, starts: Sequence[float], cap: float | None) -> bool:
    limit = _limit(problem, cap)
    return limit is None or makespan(jobs, starts) <= limit + TOL_H


def _from_milp(
    problem: Problem,
    objective: Objective,
    r: MilpResult,
    cap: float | None,
    bound: float,
    expired: Callable[[], bool] | None = None,
) -> _Stage | None:
    """A stage from a MILP solution if its (clean) schedule meets the limits."""
    if r.choice is None:
        return None
    starts = best_schedule(problem, r.choice, r.starts, _enough(problem, objective, cap), expired)
    jobs = problem.jobs(r.choice)
    if not _within(problem, jobs, starts, cap):
        return None
    if not problem.meets_budget(problem.cost(r.choice)):
        return None
    value = _value(problem, objective, r.choice, starts)
    proven = r.status == "optimal" and value <= bound + _tol(objective, value)
    return _Stage(r.choice, starts, value, bound, proven)


def _tol(objective: Objective, value: float) -> float:
    base = TOL_USD if objective == "cost" else TOL_H
    return base + 1e-9 * abs(value)


def _stage(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    clock: Clock,
    fraction: float,
    hint: tuple[int, ...] | None = None,
) -> _Stage:
    """Minimise one objective within the deadline, the budget and ``cap`` on the makespan.

    ``fraction``: the share of the clock's remaining time this stage may use;
    ``hint``: a choice known to meet every constraint (the fastest plan, when the
    cheapest among the fastest is sought).
    """
    limit = _limit(problem, cap)
    if not clock.affords(clock.model_s):
        # no time for a solver model (its build cannot look at the clock): a quick plan
        return _quick(problem, objective, cap, hint, clock)
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    end = None if clock.remaining() is None else clock.elapsed() + (clock.share(fraction) or 0.0)
    if not binding:
        r = solve_milp(
            problem,
            objective=objective,
            deadline=limit,
            time_limit_s=clock.share(fraction),
            watch=watch(clock, objective, "model"),
        )
        if r.status == "infeasible":
            return _Stage.impossible()
        return _from_milp(problem, objective, r, cap, r.bound) or _Stage(
            None, None, None, r.bound, False
        )
    relaxed, lift, model = _relaxation(problem, objective, limit, binding, clock, fraction)
    if relaxed.status == "infeasible":
        return _Stage.impossible()
    clock.report(objective, "relaxation", bound=relaxed.bound)
    found = _from_milp(problem, objective, relaxed, cap, relaxed.bound, clock.expired)
    if found is not None and found.proven:
        return found
    if found is None and hint is not None:
        found = _accept(problem, objective, hint, None, cap, relaxed.bound)
    if found is None:
        found = _repair(problem, objective, cap, clock, fraction, relaxed, binding, model, lift)
    if (found is None or found.choice is None) and not clock.affords(clock.model_s):
        quick = _quick(problem, objective, cap, hint, clock)
        return replace(quick, bound=max(quick.bound, relaxed.bound))
    if found is None or found.choice is None:
        got = solve_exact(
            problem,
            objective=objective,
            limit=limit,
            binding=binding,
            clock=clock,
            seconds=clock.share(fraction),
            plan=None,
        )
        if got is None:
            return _Stage(None, None, None, relaxed.bound, False)
        if got.result.status == "infeasible":
            return _Stage.impossible()
        bound = max(relaxed.bound, got.result.bound)
        return _from_milp(problem, objective, got.result, cap, bound) or _Stage(
            None, None, None, bound, False
        )
    _tell(clock, objective, found, "heuristic")
    stage_clock = clock.child(None if end is None else max(end - clock.elapsed(), 0.0))
    return _improve(problem, objective, cap, found, stage_clock, binding)


def _improve(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    found: _Stage,
    stage_clock: Clock,
    binding: Sequence[int],
) -> _Stage:
    """From a plan that meets every constraint: local search, the exact model, local search.

    Each uses what the ones before it left of ``stage_clock``.
    """
    limit = _limit(problem, cap)
    # the moves are a fixed amount of work, but under load they must leave the
    # exact model its time (PSPLIB j108_7: 25 s of moves, then no exact model)
    first = stage_clock.child(stage_clock.share(PRE_SEARCH_SHARE))
    found = _search(problem, objective, cap, found, first, moves=_moves(problem))
    if found.proven or not stage_clock.affords(stage_clock.model_s):
        return found
    assert found.choice is not None and found.starts is not None and found.value is not None
    span = makespan(problem.jobs(found.choice), found.starts)
    got = solve_exact(
        problem,
        objective=objective,
        limit=limit,
        binding=binding,
        clock=stage_clock,
        seconds=stage_clock.share(0.85),
        plan=(found.choice, found.starts, span),
    )
    if got is not None:
        if got.result.status == "infeasible":
            # the plan in hand meets every constraint: the model has no better one
            return replace(found, proven=True, bound=found.value)
        bound = max(found.bound, got.result.bound)
        if objective == "time" and got.period is not None:
            bound = whole_periods(bound, got.period)
        better = _from_milp(problem, objective, got.result, cap, bound)
        found = _best(objective, found, better)
        found = replace(found, bound=max(found.bound, bound))
        if got.result.status == "optimal" and better is not None and better.proven:
            return found
        if found.value is not None and found.value <= found.bound + _tol(objective, found.value):
            return replace(found, proven=True)
    if stage_clock.expired():
        return found
    if stage_clock.remaining() is None:
        return found  # no time limit: the deterministic search above was all
    return _search(problem, objective, cap, found, stage_clock, moves=None)


#: The share of a stage's time the local search before the exact model may use.
PRE_SEARCH_SHARE = 0.2


def _moves(problem: Problem) -> int:
    """Local-search moves before the exact model: a deterministic amount of work.

    Each move schedules every step a few times, so the moves shrink as steps grow.
    """
    return max(20, min(500, 10_000 // max(problem.size, 1)))


def _tell(clock: Clock, objective: Objective, st: _Stage, phase: str) -> None:
    clock.report(objective, phase, best=st.value, bound=st.bound)


def _search(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    st: _Stage,
    clock: Clock,
    *,
    moves: int | None,
) -> _Stage:
    """Local search from ``st``: ``moves`` moves (deterministic), or until the clock says."""
    if st.choice is None or st.starts is None or st.value is None or st.proven:
        return st
    budget = clock
    plan = Found(
        st.choice,
        st.starts,
        makespan(problem.jobs(st.choice), st.starts),
        problem.cost(st.choice),
    )
    limit = _limit(problem, cap)
    if objective == "time":
        got = shorten(problem, plan, budget, bound=st.bound, cap=limit, max_moves=moves)
        value = got.makespan
    else:
        assert limit is not None
        got = cheapen(problem, plan, budget, limit=limit, bound=st.bound, max_moves=moves)
        value = got.cost
    if value >= st.value - _tol(objective, st.value):
        return st
    proven = value <= st.bound + _tol(objective, value)
    return _Stage(got.choice, got.starts, value, st.bound, proven)


def _relaxation(
    problem: Problem,
    objective: Objective,
    limit: float | None,
    binding: Sequence[int],
    clock: Clock,
    fraction: float,
) -> tuple[MilpResult, Callable[[MilpResult], MilpResult], Problem]:
    """The energy-cut relaxation: a bound, and a choice to start from."""
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
    relaxed = lift(
        solve_milp(
            model,
            objective=objective,
            deadline=limit,
            energy=binding,
            time_limit_s=clock.share(fraction * share),
            watch=watch(clock, objective, "relaxation"),
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


def _best(objective: Objective, a: _Stage | None, b: _Stage | None) -> _Stage:
    """The better of two results; both bounds are valid, so the larger one is kept.

    Values equal within the tolerance count as equal (two schedules of one choice
    may differ in the last bits) and then a proven result is preferred.
    """
    got = [s for s in (a, b) if s is not None]
    bound = max((s.bound for s in got), default=-math.inf)
    cands = [s for s in got if s.value is not None]
    if not cands:
        return _Stage(None, None, None, bound, False)
    low = min(s.value for s in cands if s.value is not None)
    tied = [s for s in cands if s.value is not None and s.value <= low + _tol(objective, low)]
    pick = next((s for s in tied if s.proven), tied[0])
    assert pick.value is not None
    proven = any(s.proven for s in tied) or pick.value <= bound + _tol(objective, pick.value)
    return _Stage(pick.choice, pick.starts, pick.value, bound, proven)


def _repair(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    clock: Clock,
    fraction: float,
    relaxed: MilpResult,
    binding: Sequence[int],
    model: Problem,
    lift: Callable[[MilpResult], MilpResult],
) -> _Stage | None:
    """Large problems with quotas: plans whose quota-respecting schedule meets the limit.

    1. The relaxation's choice, if its schedule fits.
    2. Crashing: upgrade the steps on the critical chain of the schedule to faster
       options until it fits (cheap: one schedule per round).
    3. Tightening: solve the energy-cut relaxation again with its deadline lowered
       by how much the last schedule overshot, until the schedule fits.
    4. The fastest option everywhere.

    The bound stays the first relaxation's (a bound for the real problem); the
    cheapest plan found wins.
    """
    limit = _limit(problem, cap)
    bound = relaxed.bound
    if relaxed.choice is not None:
        first = _accept(
            problem, objective, relaxed.choice, relaxed.starts, cap, bound, clock.expired
        )
        if first is not None or limit is None:
            return first
    if limit is None:
        return None
    found: list[_Stage] = []
    if relaxed.choice is not None:
        crashed = _crash(problem, objective, relaxed.choice, cap, bound, clock)
        if crashed is not None:
            found.append(crashed)
    target = limit
    r = relaxed
    for _ in range(REPAIR_ROUNDS):
        if r.choice is None or not clock.affords(clock.model_s):
            break
        jobs = problem.jobs(r.choice)
        over = (
            makespan(jobs, best_schedule(problem, r.choice, r.starts, None, clock.expired)) - limit
        )
        target = target - max(over, 1e-3 * limit)
        if target <= 0.0:
            break
        r = lift(
            solve_milp(
                model,
                objective=objective,
                deadline=target,
                energy=binding,
                time_limit_s=clock.share(fraction * 0.5),
            )
        )
        if r.choice is None:
            break
        got = _accept(problem, objective, r.choice, r.starts, cap, bound, clock.expired)
        if got is not None:
            found.append(got)
            break
    if not found:
        fastest = _accept(problem, objective, _pick(problem, "P"), None, cap, bound)
        if fastest is not None:
            found.append(fastest)
    if not found:
        return None
    if objective == "cost":
        found = [_cheapen(problem, st, cap, bound) for st in found]
    return min(found, key=lambda st: st.value if st.value is not None else math.inf)


def _cheapen(problem: Problem, st: _Stage, cap: float | None, bound: float) -> _Stage:
    """The plan with :func:`fill_slack` applied, if that is still accepted and cheaper."""
    if st.choice is None or st.starts is None:
        return st
    better = fill_slack(problem, st.choice, st.starts, _limit(problem, cap))
    if list(better) == list(st.choice):
        return st
    got = _accept(problem, "cost", better, st.starts, cap, bound)
    if got is None or got.value is None or st.value is None or got.value >= st.value:
        return st
    return got


def _crash(
    problem: Problem,
    objective: Objective,
    choice: Sequence[int],
    cap: float | None,
    bound: float,
    clock: Clock,
    rounds: int = 100,
) -> _Stage | None:
    """Upgrade critical steps to faster options until the quota schedule meets the limit.

    Each round schedules the choice, finds the chain that sets the makespan
    (precedence or waits for quota) and moves every step on it to the faster
    option with the lowest extra cost per hour saved, preferring options that
    hold no more of any resource (more replicas can lengthen the waits).
    """
    limit = _limit(problem, cap)
    if limit is None:
        return None
    current = list(choice)
    for _ in range(rounds):
        if clock.expired():
            return None
        jobs = problem.jobs(current)
        order = priority_order(jobs, [-v for v in tails(jobs)])
        starts = improve(jobs, serial_sgs(jobs, order), rounds=1)
        if makespan(jobs, starts) <= limit + TOL_H:
            return _accept(problem, objective, current, starts, cap, bound)
        moved = False
        for s, on_chain in enumerate(critical(jobs, starts)):
            if not on_chain:
                continue
            opts = problem.options[s]
            cur = opts[current[s]]
            use = jobs.usages[s] if jobs.usages else ()
            faster = [k for k, o in enumerate(opts) if o.P < cur.P - 1e-12]
            if not faster:
                continue
            lean = [k for k in faster if _holds_no_more(problem, s, k, use)]
            pool = lean or faster
            rate = {
                k: ((opts[k].cost - cur.cost) / (cur.P - opts[k].P), opts[k].P, k) for k in pool
            }
            current[s] = min(pool, key=rate.__getitem__)
            moved = True
        if not moved:
            return None
    return None


def fill_slack(
    problem: Problem, choice: Sequence[int], starts: Sequence[float], limit: float | None
) -> list[int]:
    """Cheaper options that fit where the schedule leaves room (starts unchanged).

    Step by step (largest possible saving first), the cheapest option is taken
    that holds no more of any resource, ends before every successor starts and
    by ``limit``, and finds room in the quota for the time it adds. The schedule
    stays valid after each change, so the result is feasible with the same starts.
    """
    current = list(choice)
    jobs = problem.jobs(current)
    succ = problem.successors()
    profile = profile_of(jobs, starts) if jobs.limits else None
    saving = [
        (problem.options[s][current[s]].cost - min(o.cost for o in problem.options[s]), s)
        for s in range(problem.size)
    ]
    for gain, s in sorted(saving, reverse=True):
        if gain <= TOL_USD:
            break
        opts = problem.options[s]
        cur = opts[current[s]]
        use = jobs.usages[s] if jobs.usages else ()
        end = min((starts[j] for j in succ[s]), default=math.inf)
        if limit is not None:
            end = min(end, limit + TOL_H - 1e-12)
        room = end - starts[s]
        for k in sorted(range(len(opts)), key=lambda k: (opts[k].cost, opts[k].P)):
            o = opts[k]
            if o.cost >= cur.cost - TOL_USD:
                break
            if room < o.P or not _holds_no_more(problem, s, k, use):
                continue
            if profile is not None:
                new = usage(o, problem.resources)
                if o.P > cur.P and not profile.has_room(starts[s] + cur.P, o.P - cur.P, new):
                    continue
                profile.add(
                    starts[s], min(cur.P, o.P), tuple(b - a for a, b in zip(use, new, strict=True))
                )
                if cur.P > o.P:
                    profile.add(starts[s] + o.P, cur.P - o.P, tuple(-a for a in use))
                elif o.P > cur.P:
                    profile.add(starts[s] + cur.P, o.P - cur.P, new)
            current[s] = k
            break
    return current


def _holds_no_more(problem: Problem, step: int, k: int, use: Sequence[int]) -> bool:
    if not use:
        return True
    mine = usage(problem.options[step][k], problem.resources)
    return all(a <= b for a, b in zip(mine, use, strict=True))


def _accept(
    problem: Problem,
    objective: Objective,
    choice: Sequence[int],
    guide: Sequence[float] | None,
    cap: float | None,
    bound: float,
    expired: Callable[[], bool] | None = None,
) -> _Stage | None:
    starts = best_schedule(problem, choice, guide, _enough(problem, objective, cap), expired)
    if not _within(problem, problem.jobs(choice), starts, cap):
        return None
    if not problem.meets_budget(problem.cost(choice)):
        return None
    value = _value(problem, objective, choice, starts)
    return _Stage(tuple(choice), starts, value, bound, value <= bound + _tol(objective, value))


def _fallback(
    problem: Problem, objective: Objective, cap: float | None, bound: float
) -> _Stage | None:
    """Simple plans (cheapest or fastest option everywhere) when the solver found none."""
    cands: list[_Stage] = []
    for key in ("cost", "P"):
        got = _accept(problem, objective, _pick(problem, key), None, cap, bound)
        if got is not None:
            cands.append(got)
    return min(cands, key=lambda s: s.value or 0.0) if cands else None


def _quick(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    hint: tuple[int, ...] | None,
    clock: Clock,
) -> _Stage:
    """A first plan without a solver model, for when the time limit leaves no room for one.

    A few schedules at most: ``hint`` (a plan known to meet every constraint), the
    cheapest option everywhere, the fastest option everywhere with the slack its
    schedule leaves filled by cheaper options. The bound is the trivial one (every
    step at its cheapest, or fastest, option), so the plan is ``optimal`` only when
    it meets that bound.
    """
    trivial = trivial_cost_bound if objective == "cost" else trivial_makespan_bound
    bound = trivial(problem)
    cands: list[_Stage] = []
    for choice in (hint, _pick(problem, "cost"), _pick(problem, "P")):
        if choice is None:
            continue
        # one schedule each (the clock is spent): no priority rules tried after the first
        got = _accept(problem, objective, choice, None, cap, bound, clock.expired)
        if got is None:
            continue
        if objective == "cost":
            got = _cheapen(problem, got, cap, bound)
        cands.append(got)
        if got.proven:
            break
    if not cands:
        return _Stage(None, None, None, bound, False)
    best = min(cands, key=lambda st: st.value if st.value is not None else math.inf)
    return replace(best, trivial=best.proven)


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
    first = _stage(problem, "time", None, clock, 1.0 if _cost_is_fixed(problem) else 0.6)
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
    for last in [False] * (RESUME_ROUNDS - 1) + [True]:
        # the cost stage left time and the makespan is unproven: it gets the time back
        if first.proven or clock.remaining() is None or not clock.affords(2 * clock.model_s):
            break
        again = _resume(problem, first, clock.child(clock.share(1.0 if last else RESUME_SHARE)))
        if again.value is None or again.value >= first.value - _tol("time", first.value):
            first = replace(first, bound=again.bound, proven=again.proven)
            continue
        # a shorter makespan: the cheapest plan within it (a quick one if no time is left)
        first = again
        second = _cheapest_within(problem, first, clock, 1.0 if first.proven else COST_SHARE)
    return _solution(problem, first, second, clock)


def _cheapest_within(problem: Problem, first: _Stage, clock: Clock, fraction: float) -> _Stage:
    """The cost stage of ``objective = time``: the cheapest plan within the first's makespan."""
    assert first.value is not None and first.choice is not None
    cost = problem.cost(first.choice)
    floor = trivial_cost_bound(problem)
    if cost <= floor + _tol("cost", cost):
        # every step already runs its cheapest option: nothing among the fastest is cheaper
        return _Stage(first.choice, first.starts, cost, floor, True, trivial=True)
    cap = first.value + TOL_H
    second = _stage(problem, "cost", cap, clock, fraction, hint=first.choice)
    if second.choice is None or second.value is None:
        # the first stage's plan is within the cap, so "infeasible" is a numerical artefact
        bound = -math.inf if second.infeasible else second.bound
        second = _Stage(first.choice, first.starts, problem.cost(first.choice), bound, False)
    return second


def _resume(problem: Problem, first: _Stage, clock: Clock) -> _Stage:
    """The makespan stage again, from its plan and bound, within ``clock``."""
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    got = _improve(problem, "time", None, first, clock, binding)
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
