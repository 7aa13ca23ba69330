"""Makespan search: a genetic algorithm on activity lists (and mode lists).

For ``objective = time`` on workflows too large for the exact disjunctive model
(more than :data:`~exo.compiler.exact.SMALL_STEPS` steps), the time left after the
relaxation is spent here. Up to that size, when steps have several options
(multi-mode project scheduling), the same search with the options searched too
(:func:`shorter_modes`) hands the exact stage's descent a shorter plan. The
representation is the standard one of the resource-constrained project scheduling
literature (Hartmann 1998, "A competitive genetic algorithm for resource-constrained
project scheduling", Naval Research Logistics 45): an individual is a
precedence-feasible *activity list* (and, for steps with several options, an option
per step); its schedule is the serial schedule generation scheme over the list
(:func:`~exo.compiler.schedule.serial_sgs`), improved by forward-backward passes
(double justification, :func:`~exo.compiler.schedule.improve`; Valls, Ballestín and
Quintanilla 2005, "Justification and RCPSP: a technique that pays", EJOR 165), and
the list is then rewritten in the order of the improved start times, so that
children inherit the improvement.

- Crossover: Hartmann's two-point crossover (the head of the mother, then the
  father's order of what is missing, then the mother's), which keeps every
  list precedence-feasible; options: the mother's up to the first cut, the
  father's after it.
- Mutation: a step moves to a random place between its last predecessor and
  its first successor in the list; with several options, a step of the list may
  take another one.
- The population starts from the plan's own list, lists drawn around it (its
  start times, jittered) and lists drawn afresh (latest start first, jittered):
  around the plan alone it stalls where the plan is (PSPLIB j601_7 stayed at
  the 75 periods it started from).
- Steady state: a child enters the population in place of the worst member when
  it is no longer than it and its schedule is not already there; after a run of
  children without a new best, all but the best few are drawn again, half
  around them and half afresh (a restart).

- The mode search (``modes=True``): half of the fresh members draw each step's
  option at random (Hartmann 2001); a share of the children choose each option
  as the step is scheduled, the one that finishes first
  (:meth:`_Search.earliest_finish`); every new best goes through a descent over
  single option changes (:meth:`_Search.modes_improved`); a child's schedule is
  improved by forward-backward passes only when it is near the population.

Everything is seeded (the same children in the same order on every run): only
how many the clock allows differs between runs. The search never lengthens the
plan it starts from, keeps its choice's budget and the makespan cap, and stops
at the proven bound.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from exo.compiler.anytime import Clock
from exo.compiler.costmodel import usage
from exo.compiler.heuristics import Found
from exo.compiler.neighbourhoods import as_found, shorter_by_neighbourhoods
from exo.compiler.problem import TOL_H, Problem
from exo.compiler.schedule import (
    Jobs,
    improve,
    makespan,
    priority_order,
    profile_of,
    serial_sgs,
    tails,
)
from exo.compiler.solution import trivial_makespan_bound

#: Individuals in the population.
POPULATION = 40
#: Of them, kept through a restart.
ELITE = 4
#: Children without a new best before a restart, per member of the population.
RESTART_AFTER = 12
#: Children between two looks at the clock.
CHECK_EVERY = 4
#: The share of the exact stage's time the mode search before the descent may use
#: (:func:`shorter_modes`).
MODE_SHARE = 0.3
#: Children without a new best (per member of the population) before the mode
#: search hands the rest of its share to the descent.
MODE_PATIENCE = 8
#: In the mode search, the chance that a child's options are chosen as it is
#: scheduled (:meth:`_Search.earliest_finish`) rather than inherited.
EARLIEST_FINISH = 0.3
#: Passes of the descent over single option changes (each tries every other
#: option of every step): bounds its work without a time limit (PSPLIB j10-j30
#: multi-mode: at most four passes were seen).
MODE_PASSES = 4
#: See :attr:`_Search.worst`.
JUSTIFY_WITHIN = 1.05
#: Chance that a child's list is mutated (one step moved); its options, per step, 1/steps.
MUTATION = 0.5


@dataclass(frozen=True, slots=True)
class _Member:
    order: tuple[int, ...]
    choice: tuple[int, ...]
    starts: tuple[float, ...]
    makespan: float


class _Search:
    """The population and the operators of one search (one problem, one random stream)."""

    def __init__(
        self, problem: Problem, rng: random.Random, cap: float | None, *, modes: bool = False
    ) -> None:
        self.problem = problem
        self.rng = rng
        self.cap = cap
        self.succ = problem.successors()
        self._jobs: dict[tuple[int, ...], Jobs] = {}
        self.multi = [s for s, opts in enumerate(problem.options) if len(opts) > 1]
        #: the mode search: modes drawn for the population and a descent over mode
        #: changes on each new best (:func:`shorter_modes`)
        self.modes = modes and bool(self.multi)
        #: in the mode search, the population's longest makespan: a schedule longer
        #: than this by more than :data:`JUSTIFY_WITHIN` is not worth improving
        self.worst: float | None = None
        #: per step, per option: its duration and its units of each quota
        self.shapes = [
            [(o.P, usage(o, problem.resources)) for o in opts] for opts in problem.options
        ]

    def jobs(self, choice: tuple[int, ...]) -> Jobs:
        got = self._jobs.get(choice)
        if got is None:
            if len(self._jobs) > 256:
                self._jobs.clear()
            got = self._jobs[choice] = self.problem.jobs(choice)
        return got

    def evaluate(self, order: Sequence[int], choice: tuple[int, ...]) -> _Member | None:
        """The list's schedule, improved, and the list of its start order (None: not allowed)."""
        problem = self.problem
        if self.multi and not problem.meets_budget(problem.cost(choice)):
            return None
        jobs = self.jobs(choice)
        starts = serial_sgs(jobs, order)
        if self.worst is None or makespan(jobs, starts) < self.worst * JUSTIFY_WITHIN:
            starts = improve(jobs, starts, rounds=2)
        span = makespan(jobs, starts)
        if self.cap is not None and span > self.cap + TOL_H:
            return None
        ordered = tuple(sorted(range(jobs.size), key=lambda j: (starts[j], j)))
        return _Member(ordered, choice, tuple(starts), span)

    def sample(self, base: _Member, noise: float) -> _Member | None:
        """A list drawn around ``base``: its start times, jittered by ``noise`` of the makespan."""
        span = max(base.makespan, 1e-9)
        rng = self.rng
        keys = [s + rng.uniform(0.0, noise) * span for s in base.starts]
        return self.evaluate(priority_order(self.jobs(base.choice), keys), base.choice)

    def fresh(self, choice: tuple[int, ...], noise: float) -> _Member | None:
        """A list drawn afresh: latest start first (the longest path to the end), jittered."""
        jobs = self.jobs(choice)
        late = tails(jobs)
        span = max(max(late, default=0.0), 1e-9)
        rng = self.rng
        keys = [-t + rng.uniform(0.0, noise) * span for t in late]
        return self.evaluate(priority_order(jobs, keys), choice)

    def drawn_choice(self, base: tuple[int, ...]) -> tuple[int, ...]:
        """A mode list drawn around ``base``: each step with several options keeps its
        option or takes one at random (even odds), so the population is not held to
        the plan's modes (Hartmann 2001: modes drawn at random for the first
        generation)."""
        if not self.modes:
            return base
        rng = self.rng
        choice = list(base)
        for s in self.multi:
            if rng.random() < 0.5:
                choice[s] = rng.randrange(len(self.problem.options[s]))
        return tuple(choice)

    def earliest_finish(self, order: Sequence[int], choice: tuple[int, ...]) -> _Member | None:
        """The list scheduled with each step's option chosen as it is placed: the one
        that finishes first (then the one holding the least quota), so the modes
        follow the room the schedule leaves. With a budget, ``choice`` as it is."""
        problem = self.problem
        if problem.budget is not None:
            return self.evaluate(order, choice)
        profile = profile_of(Jobs((), (), (), problem.limits), ())
        finish = [0.0] * len(order)
        got = list(choice)
        for j in order:
            est = max((finish[i] for i in problem.preds[j]), default=0.0)
            pick: tuple[float, float, int, float] | None = None
            for k, (d, use) in enumerate(self.shapes[j]):
                t = profile.earliest(est, d, use)
                key = (
                    t + d,
                    d * sum(u / q for u, q in zip(use, problem.limits, strict=True) if q > 0),
                    k,
                    t,
                )
                if pick is None or key < pick:
                    pick = key
            assert pick is not None
            end, _, k, t = pick
            got[j], finish[j] = k, end
            profile.add(t, self.shapes[j][k][0], self.shapes[j][k][1])
        return self.evaluate(order, tuple(got))

    def modes_improved(self, m: _Member, clock: Clock) -> _Member:
        """``m`` after a descent over single mode changes, each scheduled in ``m``'s order.

        A change is kept when the makespan gets shorter, or stays and the steps
        hold less of the quotas (duration x units, summed): that leaves room for
        the others, and the next change may use it. Stops at a pass without a
        change, after :data:`MODE_PASSES` passes or when the clock says.
        """
        best, work = m, self.work(m.choice)
        changed, passes = True, 0
        while changed and passes < MODE_PASSES:
            changed, passes = False, passes + 1
            for s in self.rng.sample(self.multi, len(self.multi)):
                if clock.expired():
                    return best
                for k in range(len(self.problem.options[s])):
                    if k == best.choice[s]:
                        continue
                    choice = (*best.choice[:s], k, *best.choice[s + 1 :])
                    got = self.evaluate(best.order, choice)
                    if got is None or got.makespan > best.makespan + TOL_H:
                        continue
                    less = self.work(choice)
                    if got.makespan < best.makespan - TOL_H or less < work - 1e-9:
                        best, work, changed = got, less, True
        return best

    def work(self, choice: tuple[int, ...]) -> float:
        """Quota held over time by ``choice``: each step's duration x its units, relative
        to each quota, summed."""
        jobs = self.jobs(choice)
        if not jobs.limits:
            return 0.0
        return sum(
            d * u / q
            for d, use in zip(jobs.durations, jobs.usages, strict=True)
            for u, q in zip(use, jobs.limits, strict=True)
            if q > 0
        )

    def crossover(self, mother: _Member, father: _Member) -> tuple[list[int], list[int]]:
        n = len(mother.order)
        q1, q2 = sorted(self.rng.sample(range(n + 1), 2))
        child = list(mother.order[:q1])
        taken = set(child)
        for j in father.order:
            if len(child) >= q2:
                break
            if j not in taken:
                child.append(j)
                taken.add(j)
        child.extend(j for j in mother.order if j not in taken)
        cut = set(mother.order[:q1])
        choice = [mother.choice[s] if s in cut else father.choice[s] for s in range(n)]
        return child, choice

    def mutate(self, order: list[int], choice: list[int]) -> None:
        rng = self.rng
        if rng.random() < MUTATION:
            self._shift(order)
        for s in self.multi:
            if rng.random() * len(order) < 1.0:
                choice[s] = rng.randrange(len(self.problem.options[s]))

    def _shift(self, order: list[int]) -> None:
        """One step moved to a random place that keeps the list precedence-feasible."""
        rng = self.rng
        where = {j: k for k, j in enumerate(order)}
        j = rng.choice(order)
        lo = max((where[i] for i in self.problem.preds[j]), default=-1) + 1
        hi = min((where[i] for i in self.succ[j]), default=len(order))
        k = where[j]
        order.pop(k)
        # after removing j, the places between its predecessors and successors
        # are lo .. hi - 1 (hi moved down by one)
        order.insert(rng.randint(lo, hi - 1), j)


def evolve(
    problem: Problem,
    plan: Found,
    clock: Clock,
    *,
    bound: float = 0.0,
    cap: float | None = None,
    seed: int = 0,
    max_children: int | None = None,
    patience: int | None = None,
    modes: bool = False,
) -> Found:
    """A plan with a shorter makespan than ``plan`` (or ``plan``), until ``bound`` or the clock.

    ``cap``: schedules must end by then; ``max_children``: stop after about this
    many schedules (a deterministic amount of work); ``patience``: stop after
    this many children without a new best. Each new best goes to the clock's
    progress report. ``modes``: the mode search of :func:`shorter_modes` (modes
    drawn for the population, each new best through a descent over single mode
    changes, :meth:`_Search.modes_improved`).
    """
    if not problem.limits or plan.makespan <= bound + TOL_H:
        return plan
    search = _Search(problem, random.Random(seed), cap, modes=modes)
    first = search.evaluate(_start_order(plan), plan.choice)
    if first is None:
        return plan
    if search.modes:
        first = search.modes_improved(first, clock)
    pop = _initial(search, first, clock, max_children)
    best = min(pop, key=_rank)
    if best.makespan < plan.makespan - TOL_H:
        clock.report("time", "genetic search", best=best.makespan)
    children = len(pop)
    stale = since = 0
    while best.makespan > bound + TOL_H:
        if _stops(children, since, max_children, patience, clock):
            break
        children += 1
        since += 1
        if search.modes:
            search.worst = max(m.makespan for m in pop)
        child = _child(search, pop)
        if child is None:
            continue
        stale += 1
        if child.makespan < best.makespan - TOL_H:
            if search.modes:
                child = search.modes_improved(child, clock)
            best, stale, since = child, 0, 0
            clock.report("time", "genetic search", best=best.makespan)
        _insert(pop, child)
        if stale >= RESTART_AFTER * POPULATION:
            pop = _restart(search, pop, clock)
            stale = 0
    if best.makespan >= plan.makespan - TOL_H:
        return plan
    return Found(best.choice, best.starts, best.makespan, problem.cost(best.choice))


def _stops(
    children: int, since: int, max_children: int | None, patience: int | None, clock: Clock
) -> bool:
    """Whether :func:`evolve` stops before its next child: its work, its patience or the clock."""
    if max_children is not None and children >= max_children:
        return True
    if patience is not None and since >= patience:
        return True
    return children % CHECK_EVERY == 0 and clock.expired()


def _start_order(plan: Found) -> list[int]:
    return sorted(range(len(plan.starts)), key=lambda j: (plan.starts[j], j))


def _rank(m: _Member) -> float:
    return m.makespan


def _initial(search: _Search, first: _Member, clock: Clock, most: int | None) -> list[_Member]:
    """The plan's own list, lists drawn around it and lists drawn afresh (at most ``most``)."""
    return _fill(search, [first], [first], clock, most)


def _fill(
    search: _Search,
    pop: list[_Member],
    around: list[_Member],
    clock: Clock,
    most: int | None = None,
) -> list[_Member]:
    """``pop`` filled up to :data:`POPULATION`: half around ``around``, half afresh."""
    rng = search.rng
    k = 0
    tries = 4 * POPULATION if most is None else min(4 * POPULATION, most)
    while len(pop) < POPULATION and k < tries:
        k += 1
        if k % CHECK_EVERY == 0 and clock.expired():
            break
        base = around[k % len(around)]
        if k % 2:
            got = search.sample(base, 0.02 + 0.2 * rng.random())
        else:
            got = search.fresh(search.drawn_choice(base.choice), 0.05 + 0.5 * rng.random())
        if got is not None:
            _insert(pop, got, grow=True)
    return pop


def _child(search: _Search, pop: list[_Member]) -> _Member | None:
    mother, father = _pick(search.rng, pop), _pick(search.rng, pop)
    order, choice = search.crossover(mother, father)
    search.mutate(order, choice)
    if search.modes and search.rng.random() < EARLIEST_FINISH:
        return search.earliest_finish(order, tuple(choice))
    return search.evaluate(order, tuple(choice))


def _pick(rng: random.Random, pop: list[_Member]) -> _Member:
    """Binary tournament: the shorter of two members drawn at random."""
    a, b = rng.choice(pop), rng.choice(pop)
    return a if a.makespan <= b.makespan else b


def _insert(pop: list[_Member], m: _Member, *, grow: bool = False) -> None:
    """``m`` in place of the longest member, unless its schedule is already there."""
    if any(p.starts == m.starts and p.choice == m.choice for p in pop):
        return
    if grow:
        pop.append(m)
        return
    worst = max(range(len(pop)), key=lambda i: pop[i].makespan)
    if m.makespan <= pop[worst].makespan:
        pop[worst] = m


def _restart(search: _Search, pop: list[_Member], clock: Clock) -> list[_Member]:
    """The best few kept, the rest drawn afresh, half of them around the best few."""
    keep = sorted(pop, key=_rank)[:ELITE]
    return _fill(search, list(keep), keep, clock)


def children_for(problem: Problem) -> int:
    """Schedules of a search without a time limit: a deterministic amount of work.

    Each schedules every step about five times, so they shrink as steps grow:
    twice the local search's moves (:func:`exo.compiler.refine._moves`), which
    cost as much each.
    """
    return max(20, min(2_000, 20_000 // max(problem.size, 1)))


def shorter_modes(
    problem: Problem,
    plan: tuple[Sequence[int], Sequence[float], float],
    clock: Clock,
    seconds: float | None,
) -> tuple[tuple[int, ...], tuple[float, ...], float] | None:
    """A plan shorter than ``plan`` (choice, starts, makespan) from the mode search, or ``None``.

    For quota problems where steps have several options, before the exact
    stage asks its questions (:func:`exo.compiler.exact.solve_exact`): the
    genetic search with modes (Hartmann 2001, "Project scheduling with multiple
    modes: a genetic algorithm", Annals of OR 102: activity list and mode list,
    modes drawn for the first generation and inherited with the list's head in
    crossover), each new best through a descent over single mode changes.
    The neighbourhood search (:func:`exo.compiler.neighbourhoods.shorter_by_neighbourhoods`:
    the time-indexed model with most steps held to the best plan's options and
    order) then goes on from the search's best within the same share. The
    descent then asks for a plan shorter than theirs, in a model with fewer
    periods. It takes at most :data:`MODE_SHARE` of ``seconds`` and stops
    after :data:`MODE_PATIENCE` children per member without a new best, at the
    lower bound, or, without a time limit, after :func:`children_for`
    children (a deterministic amount of work).
    """
    if not problem.limits or all(len(opts) <= 1 for opts in problem.options):
        return None
    found = as_found(problem, plan)
    whole = clock.remaining() if seconds is None else seconds
    share = clock.child(None if whole is None else whole * MODE_SHARE)
    bound = lower_bound(problem)
    got = evolve(
        problem,
        found,
        share,
        bound=bound,
        seed=2,
        max_children=children_for(problem) if whole is None else None,
        patience=MODE_PATIENCE * POPULATION,
        modes=True,
    )
    got = shorter_by_neighbourhoods(problem, got, share, bound=bound, seed=3)
    if got.makespan >= found.makespan - TOL_H:
        return None
    return got.choice, got.starts, got.makespan


def lower_bound(problem: Problem) -> float:
    """No plan ends sooner: the longest path at the fastest options, and each quota's
    least work (per step, the least duration x units over its options) over its limit."""
    bound = trivial_makespan_bound(problem)
    if not problem.limits:
        return bound
    least = [0.0] * len(problem.limits)
    for opts in problem.options:
        uses = [(o.P, usage(o, problem.resources)) for o in opts]
        for r in range(len(least)):
            least[r] += min((p * use[r] for p, use in uses), default=0.0)
    energy = (w / q for w, q in zip(least, problem.limits, strict=True) if q > 0)
    return max(bound, max(energy, default=0.0))
