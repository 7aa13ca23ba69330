"""Plans that meet every constraint without the exact model, and how a plan is accepted.

A stage of :mod:`exo.compiler.solve` (one objective) ends in a :class:`Stage`.
A choice is *accepted* when its best quota-respecting schedule
(:func:`best_schedule`) meets the deadline, the makespan cap and the budget.
When the relaxation's choice is not accepted, :func:`repair` looks for one that
is (crashing the critical chain, tightening the relaxation's deadline, the
fastest option everywhere); :func:`fallback` tries the simplest plans when the
solver found none, and :func:`quick` makes a plan without a solver model when
the time limit leaves no room for one. :func:`traded` makes a cheap plan within
the deadline without a solver model (the time-cost trade-off of
:mod:`exo.compiler.tradeoff`, then the quota's chains). :func:`fill_slack` makes a
plan cheaper without moving its schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from exo.compiler.anytime import Clock
from exo.compiler.costmodel import usage
from exo.compiler.ir import Objective
from exo.compiler.milp import MilpResult, solve_milp
from exo.compiler.problem import TOL_H, TOL_USD, Problem
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
from exo.compiler.solution import pick as _pick
from exo.compiler.solution import trivial_cost_bound, trivial_makespan_bound
from exo.compiler.tradeoff import unload, within_limit

#: Tightening rounds of the large-problem quota heuristic.
REPAIR_ROUNDS = 6
#: Rounds of :func:`traded` that take work off the quotas, each with a lower utilisation.
UNLOAD_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Stage:
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
    def impossible() -> Stage:
        return Stage(None, None, None, math.inf, True, infeasible=True)


def value_of(
    problem: Problem, objective: Objective, choice: Sequence[int], starts: Sequence[float]
) -> float:
    if objective == "cost":
        return problem.cost(choice)
    return makespan(problem.jobs(choice), starts)


def limit_of(problem: Problem, cap: float | None) -> float | None:
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


def enough(problem: Problem, objective: Objective, cap: float | None) -> float | None:
    """For the cost objective any schedule within the limit will do; for time, the best."""
    return limit_of(problem, cap) if objective == "cost" else None


def within(problem: Problem, jobs: Jobs, starts: Sequence[float], cap: float | None) -> bool:
    limit = limit_of(problem, cap)
    return limit is None or makespan(jobs, starts) <= limit + TOL_H


def tol(objective: Objective, value: float) -> float:
    base = TOL_USD if objective == "cost" else TOL_H
    return base + 1e-9 * abs(value)


def repair(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    clock: Clock,
    fraction: float,
    relaxed: MilpResult,
    binding: Sequence[int],
    model: Problem,
    lift: Callable[[MilpResult], MilpResult],
) -> Stage | None:
    """Large problems with quotas: plans whose quota-respecting schedule meets the limit,
    for a relaxation whose own choice does not (the caller scheduled it: ``solve._stage``).

    1. Crashing: upgrade the steps on the critical chain of the schedule to faster
       options until it fits (cheap: one schedule per round).
    2. Tightening: solve the energy-cut relaxation again with its deadline lowered
       by how much the last schedule overshot, until the schedule fits.
    3. The fastest option everywhere (its schedules cut short once the clock is spent).

    The bound stays the first relaxation's (a bound for the real problem); the
    cheapest plan found wins. (The relaxation's choice is not scheduled again: the
    same schedules, the same answer; at 10,000 steps, 1.7 CPU s.)
    """
    limit = limit_of(problem, cap)
    bound = relaxed.bound
    if limit is None:
        return None
    found: list[Stage] = []
    if relaxed.choice is not None:
        crashed = crash(problem, objective, relaxed.choice, cap, bound, clock)
        if crashed is not None:
            found.append(crashed)
    tightened = _tighten(problem, objective, cap, clock, fraction, relaxed, binding, model, lift)
    if tightened is not None:
        found.append(tightened)
    if not found:
        fastest = accept(problem, objective, _pick(problem, "P"), None, cap, bound, clock.expired)
        if fastest is not None:
            found.append(fastest)
    if not found:
        return None
    if objective == "cost":
        found = [with_slack_filled(problem, st, cap, bound) for st in found]
    return min(found, key=lambda st: st.value if st.value is not None else math.inf)


def _tighten(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    clock: Clock,
    fraction: float,
    relaxed: MilpResult,
    binding: Sequence[int],
    model: Problem,
    lift: Callable[[MilpResult], MilpResult],
) -> Stage | None:
    """Tightening: the relaxation again, its deadline lowered by the last schedule's overshoot.

    Round by round (at most :data:`REPAIR_ROUNDS`) until a schedule fits.
    """
    limit = limit_of(problem, cap)
    assert limit is not None
    bound = relaxed.bound
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
        got = accept(problem, objective, r.choice, r.starts, cap, bound, clock.expired)
        if got is not None:
            return got
    return None


def with_slack_filled(problem: Problem, st: Stage, cap: float | None, bound: float) -> Stage:
    """The plan with :func:`fill_slack` applied, if that is still accepted and cheaper."""
    if st.choice is None or st.starts is None:
        return st
    better = fill_slack(problem, st.choice, st.starts, limit_of(problem, cap))
    if list(better) == list(st.choice):
        return st
    got = accept(problem, "cost", better, st.starts, cap, bound)
    if got is None or got.value is None or st.value is None or got.value >= st.value:
        return st
    return got


def crash(
    problem: Problem,
    objective: Objective,
    choice: Sequence[int],
    cap: float | None,
    bound: float,
    clock: Clock,
    rounds: int = 100,
) -> Stage | None:
    """Upgrade critical steps to faster options until the quota schedule meets the limit.

    Each round schedules the choice, finds the chain that sets the makespan
    (precedence or waits for quota) and moves every step on it to the faster
    option with the lowest extra cost per hour saved, preferring options that
    hold no more of any resource (more replicas can lengthen the waits).
    """
    limit = limit_of(problem, cap)
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
            return accept(problem, objective, current, starts, cap, bound)
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


def too_long(problem: Problem, choice: Sequence[int], cap: float | None) -> bool:
    """The choice's longest path alone ends after the limit: no schedule of it fits."""
    limit = limit_of(problem, cap)
    if limit is None:
        return False
    jobs = problem.jobs(choice, with_quota=False)
    return makespan(jobs, asap(jobs)) > limit + TOL_H


def accept(
    problem: Problem,
    objective: Objective,
    choice: Sequence[int],
    guide: Sequence[float] | None,
    cap: float | None,
    bound: float,
    expired: Callable[[], bool] | None = None,
) -> Stage | None:
    starts = best_schedule(problem, choice, guide, enough(problem, objective, cap), expired)
    if not within(problem, problem.jobs(choice), starts, cap):
        return None
    if not problem.meets_budget(problem.cost(choice)):
        return None
    value = value_of(problem, objective, choice, starts)
    return Stage(tuple(choice), starts, value, bound, value <= bound + tol(objective, value))


def fallback(
    problem: Problem, objective: Objective, cap: float | None, bound: float
) -> Stage | None:
    """Simple plans (cheapest or fastest option everywhere) when the solver found none."""
    cands: list[Stage] = []
    for key in ("cost", "P"):
        got = accept(problem, objective, _pick(problem, key), None, cap, bound)
        if got is not None:
            cands.append(got)
    return min(cands, key=lambda s: s.value or 0.0) if cands else None


def quick(
    problem: Problem,
    objective: Objective,
    cap: float | None,
    hint: tuple[int, ...] | None,
    clock: Clock,
) -> Stage:
    """A first plan without a solver model, for when the time limit leaves no room for one.

    A few schedules at most: ``hint`` (a plan known to meet every constraint), the
    cheapest option everywhere, that plan crashed until it meets the deadline
    (:func:`traded`), the fastest option everywhere (for ``objective = cost`` only
    when none of the others fits); each with the slack its
    schedule leaves filled by cheaper options. The bound is the trivial one (every
    step at its cheapest, or fastest, option), so the plan is ``optimal`` only when
    it meets that bound.
    """
    trivial = trivial_cost_bound if objective == "cost" else trivial_makespan_bound
    bound = trivial(problem)

    def scheduled(choice: Sequence[int] | None) -> Callable[[], Stage | None]:
        # one schedule each (the clock is spent): no priority rules tried after the first
        return lambda: (
            None
            if choice is None or too_long(problem, choice, cap)
            else accept(problem, objective, choice, None, cap, bound, clock.expired)
        )

    cands: list[Stage] = []
    plans = (
        scheduled(hint),
        scheduled(_pick(problem, "cost")),
        lambda: traded(problem, objective, cap, bound, clock if cands else grace(clock)),
        scheduled(_pick(problem, "P")),
    )
    for n, make in enumerate(plans):
        if cands and (clock.expired() or (objective == "cost" and n == len(plans) - 1)):
            break  # the fastest plan is the cheapest plan's last resort, not a rival
        got = make()
        if got is None:
            continue
        if objective == "cost":
            got = with_slack_filled(problem, got, cap, bound)
        cands.append(got)
        if got.proven:
            break
    if not cands:
        return Stage(None, None, None, bound, False)
    best = min(cands, key=lambda st: st.value if st.value is not None else math.inf)
    return replace(best, trivial=best.proven)


#: When the limit is spent before any plan, the trade-off's plan may still take this
#: share of the limit (at least :data:`GRACE_MIN_S`): the tolerance a time limit has
#: (issue #16), spent on a plan near the cheapest rather than on the fastest option
#: everywhere (its schedule costs about as much: at 1,000 steps 0.2-0.3 CPU s each).
GRACE_SHARE = 0.1
GRACE_MIN_S = 1.0


def grace(clock: Clock) -> Clock:
    """``clock``, or a short one of its own when it is spent (a stop request still ends it)."""
    if not clock.expired() or clock.stopped() or clock.total is None:
        return clock
    return Clock(max(GRACE_SHARE * clock.total, GRACE_MIN_S), stop=clock.stop)


def traded(
    problem: Problem, objective: Objective, cap: float | None, bound: float, clock: Clock
) -> Stage | None:
    """The cheapest option everywhere, crashed until it ends by the limit (no solver model).

    First on the precedence graph alone (:func:`exo.compiler.tradeoff.within_limit`:
    the upgrades with the lowest extra cost per critical hour saved, then what no
    longer needs them given back). If its schedule under the quotas is late, work
    moves off the quotas that bind (:func:`exo.compiler.tradeoff.unload`): first
    down to what they hold by the deadline, then to a lower utilisation each round,
    by how late the last schedule was, until a schedule fits. Last resort: crashing
    the chains that wait for a quota (:func:`crash`). ``None`` for
    ``objective = time`` (the fastest plan is sought there) and without a limit.
    """
    limit = limit_of(problem, cap)
    if objective != "cost" or limit is None:
        return None
    base = within_limit(problem, _pick(problem, "cost"), limit, clock.expired)
    if base is None:
        return None
    got = accept(problem, objective, base, None, cap, bound, clock.expired)
    utilisation = 1.0
    for _ in range(UNLOAD_ROUNDS):
        if got is not None or clock.expired():
            return got
        choice = unload(problem, base, limit, utilisation, clock.expired)
        if choice is None:
            break
        starts = best_schedule(problem, choice, None, limit, clock.expired)
        span = makespan(problem.jobs(choice), starts)
        if span <= limit + TOL_H:
            return accept(problem, objective, choice, starts, cap, bound, clock.expired)
        utilisation *= max(min(limit / span, 0.97), 0.5)
    if got is not None or clock.expired():
        return got
    return crash(problem, objective, base, cap, bound, clock)
