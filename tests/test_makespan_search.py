"""The genetic makespan search (``compiler/makespan_search.py``) on real and random problems.

Properties, not timings (the benchmark measures how close it gets in how long:
docs/benchmarks.md): a plan is never lengthened, every schedule it returns holds
precedence and every quota at every instant, it keeps the budget and the cap,
stops at the bound, and the same number of children gives the same plan.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from exo.compiler.anytime import Clock, Progress
from exo.compiler.exact import _descend
from exo.compiler.frontend import compile_file
from exo.compiler.heuristics import Found
from exo.compiler.makespan_search import _Search, children_for, evolve, lower_bound, shorter_modes
from exo.compiler.problem import Problem, build_problem
from exo.compiler.repair import best_schedule
from exo.compiler.schedule import makespan, priority_order, violations
from exo.compiler.solution import pick, trivial_makespan_bound
from exo.compiler.timeindexed import exact_grid

from .conftest import SHARED
from .test_psplib import B

DATA = SHARED / "reference" / "psplib"


def _found(problem: Problem, choice: tuple[int, ...]) -> Found:
    starts = best_schedule(problem, choice)
    jobs = problem.jobs(choice)
    return Found(choice, starts, makespan(jobs, starts), problem.cost(choice))


def _psplib(name: str) -> tuple[Problem, int]:
    row = next(r for r in B.load_optima() if r.name == name)
    exo, cat = B.to_exo(B.parse(DATA / "instances" / B._file(row)), "units")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "flow.exo").write_text(exo, encoding="utf-8")
        (Path(tmp) / "catalog.csv").write_text(cat, encoding="utf-8")
        compiled = compile_file(Path(tmp) / "flow.exo")
    problem, _ = build_problem(compiled.program, compiled.catalog)
    return problem, row.optimum


def _valid(problem: Problem, got: Found, cap: float | None = None) -> None:
    jobs = problem.jobs(got.choice)
    assert violations(jobs, got.starts, cap) == []
    assert makespan(jobs, got.starts) == pytest.approx(got.makespan)
    assert got.cost == pytest.approx(problem.cost(got.choice))
    assert problem.meets_budget(got.cost)


@pytest.mark.skipif(not DATA.is_dir(), reason="no PSPLIB data in ../shared")
def test_a_psplib_plan_gets_shorter_stays_valid_and_is_reproducible() -> None:
    problem, optimum = _psplib("j6017_8")  # 60 jobs, 4 resources, optimum 85
    plan = _found(problem, tuple(0 for _ in range(problem.size)))
    seen: list[Progress] = []
    got = evolve(problem, plan, Clock(None, progress=seen.append), max_children=300)
    _valid(problem, got)
    assert optimum <= got.makespan < plan.makespan
    # every new best was reported, the last one being the plan returned
    assert seen and seen[-1].best == got.makespan and seen[-1].phase == "genetic search"
    again = evolve(problem, plan, Clock(None), max_children=300)
    assert again == got


def _random(seed: int, **update: object) -> Problem:
    """A random 24-step workflow with quotas and several options per step, made ``time``."""
    from tests.optimizer_oracle import random_case

    program, catalog = random_case(seed, n_steps=24, quota=True)
    wf = program.workflow.model_copy(update={"objective": "time", "deadline_h": None, **update})
    problem, _ = build_problem(program.model_copy(update={"workflow": wf}), catalog)
    return problem


#: Seeds of :func:`random_case` whose 24 steps all have options and share quotas
#: (198 has a budget).
SEEDS = (22, 49, 81, 85, 89, 106, 153, 198)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_multi_option_plans_keep_budget_cap_and_quotas(seed: int) -> None:
    problem = _random(seed)
    assert problem.limits and all(problem.options)
    assert any(len(o) > 1 for o in problem.options)
    plan = _found(problem, pick(problem, "P"))
    if not problem.meets_budget(plan.cost):
        plan = _found(problem, pick(problem, "cost"))
    cap = plan.makespan
    got = evolve(problem, plan, Clock(None), cap=cap, max_children=150, seed=seed)
    _valid(problem, got, cap + 1e-6)
    assert got.makespan <= plan.makespan + 1e-9


def test_it_stops_at_the_bound_and_when_the_clock_has_run_out() -> None:
    problem = _random(22, budget_usd=None)
    plan = _found(problem, pick(problem, "P"))
    # a plan at the bound is proven: nothing to search
    assert evolve(problem, plan, Clock(None), bound=plan.makespan) is plan
    # no time left: the plan comes back as it is
    assert evolve(problem, plan, Clock(0.0)) is plan


def test_the_work_without_a_time_limit_shrinks_as_steps_grow() -> None:
    sizes = [(n, children_for(_sized(n))) for n in (10, 60, 1_000, 10_000)]
    assert [c for _, c in sizes] == [2_000, 333, 20, 20]


def _sized(n: int) -> Problem:
    return Problem(
        names=tuple(f"s{i}" for i in range(n)),
        preds=tuple(() for _ in range(n)),
        options=tuple(() for _ in range(n)),
        resources=(),
        limits=(),
        deadline=None,
        budget=None,
        objective="time",
        confidence=0.9,
    )


# --- the mode search (several options per step, up to the exact size) ---------------


@pytest.mark.skipif(not DATA.is_dir(), reason="no PSPLIB data in ../shared")
def test_the_mode_search_shortens_a_two_resource_plan_validly_and_reproducibly() -> None:
    problem, optimum = _psplib("j1661_9")  # 16 jobs, 2-3 modes each, 2 resources, optimum 38
    plan = _found(problem, pick(problem, "time"))
    got = evolve(problem, plan, Clock(None), max_children=150, modes=True)
    _valid(problem, got)
    assert optimum <= got.makespan < plan.makespan
    # the modes moved: the plan's fastest option everywhere is not the answer
    assert got.choice != plan.choice
    assert evolve(problem, plan, Clock(None), max_children=150, modes=True) == got
    # without the mode search the same number of children stays longer
    plain = evolve(problem, plan, Clock(None), max_children=150)
    assert got.makespan < plain.makespan


@pytest.mark.skipif(not DATA.is_dir(), reason="no PSPLIB data in ../shared")
@pytest.mark.parametrize("name", ["j1661_9", "j1829_6", "j1040_1", "j104_3"])
def test_the_lower_bound_holds_and_is_at_least_the_trivial_one(name: str) -> None:
    problem, optimum = _psplib(name)
    assert trivial_makespan_bound(problem) <= lower_bound(problem) <= optimum


@pytest.mark.skipif(not DATA.is_dir(), reason="no PSPLIB data in ../shared")
def test_shorter_modes_without_a_limit_is_deterministic_and_valid() -> None:
    problem, optimum = _psplib("j1661_9")
    plan = _found(problem, pick(problem, "time"))
    start = (plan.choice, plan.starts, plan.makespan)
    got = shorter_modes(problem, start, Clock(None), None)
    assert got is not None
    choice, starts, span = got
    jobs = problem.jobs(choice)
    assert violations(jobs, starts) == []
    assert span == pytest.approx(makespan(jobs, starts))
    assert optimum <= span < plan.makespan
    # nothing shorter than a plan at the lower bound is sought
    assert shorter_modes(problem, (choice, starts, lower_bound(problem)), Clock(None), None) is None


def test_shorter_modes_leaves_one_option_per_step_alone() -> None:
    problem = _random(22, budget_usd=None)
    one = replace(problem, options=tuple(opts[:1] for opts in problem.options))
    plan = _found(one, tuple(0 for _ in one.options))
    assert shorter_modes(one, (plan.choice, plan.starts, plan.makespan), Clock(None), None) is None


@pytest.mark.parametrize("seed", SEEDS)
def test_options_chosen_as_they_are_scheduled_keep_every_quota(seed: int) -> None:
    problem = _random(seed)
    search = _Search(problem, random.Random(seed), None, modes=True)
    base = pick(problem, "P")
    for k in range(20):
        rng = random.Random(k)
        keys = [rng.random() for _ in range(problem.size)]
        order = priority_order(problem.jobs(base), keys)
        got = search.earliest_finish(order, base)
        if got is None:  # over the budget (seed 198 has one): kept as drawn, and refused
            assert problem.budget is not None
            continue
        jobs = problem.jobs(got.choice)
        assert violations(jobs, got.starts) == []
        assert problem.meets_budget(problem.cost(got.choice))
        if problem.budget is not None:
            assert got.choice == base  # with a budget the options stay as given


@pytest.mark.skipif(not DATA.is_dir(), reason="no PSPLIB data in ../shared")
def test_a_shorter_plan_from_the_mode_search_comes_back_from_the_descent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # stopped (as by Ctrl-C) right after the mode search: no question asked, and the
    # descent still returns the shorter plan the search found
    import exo.compiler.exact as exact

    problem, optimum = _psplib("j1661_9")
    plan = _found(problem, pick(problem, "time"))
    grid = exact_grid(problem, plan.makespan)
    assert grid is not None
    stopped: list[bool] = []

    def search_then_stop(*args: object) -> object:
        got = shorter_modes(*args)  # type: ignore[arg-type]
        stopped.append(True)
        return got

    monkeypatch.setattr(exact, "shorter_modes", search_then_stop)
    clock = Clock(None, stop=lambda: bool(stopped))
    got = _descend(problem, grid, clock, None, (plan.choice, plan.starts, plan.makespan))
    assert stopped and got is not None and got.result.status == "feasible"
    assert got.result.choice is not None and got.result.starts is not None
    assert got.result.value is not None and optimum <= got.result.value < plan.makespan
    assert violations(problem.jobs(got.result.choice), got.result.starts) == []
