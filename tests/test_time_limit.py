"""Time limits and stop requests: a valid plan with an honest status and bound (issue #16).

However early the search is told to stop (Ctrl-C, or a time limit spent by building
the options), ``optimize`` returns a plan whose schedule meets every constraint,
never a false ``optimal``, and a lower bound that is a real bound.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from exo.compiler.anytime import Clock
from exo.compiler.catalog import load_catalog
from exo.compiler.ir import Program, Quota, Workflow
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan
from exo.compiler.problem import Problem, build_problem
from exo.compiler.solve import solve_problem
from tests.optimizer_oracle import check_plan
from tests.test_optimizer import CAT2, _dur

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_programs import generate  # noqa: E402  (a benchmark script, not a package)

CATALOG = load_catalog("aws/us-east-1", ROOT)


def _honest(plan: Plan, reference: Plan) -> None:
    assert plan.expected_cost_usd is not None and plan.lower_bound_usd is not None
    assert reference.expected_cost_usd is not None
    assert plan.lower_bound_usd <= reference.expected_cost_usd + 1e-6
    assert plan.lower_bound_usd <= plan.expected_cost_usd + 1e-6
    if plan.status == "optimal":
        assert plan.expected_cost_usd <= reference.expected_cost_usd + 1e-6
        assert plan.gap == 0.0
    else:
        assert plan.gap is not None and plan.gap >= 0.0


@pytest.fixture(scope="module")
def quota_workflow() -> tuple[Program, Plan]:
    program, _ = generate(16, seed=1, deadline="tight", quota=True, catalog=CATALOG)
    # any valid plan will do: the optimum lies at or below its cost
    return program, optimize(program, CATALOG, time_limit_s=10)


@pytest.mark.parametrize("how", ["stop", "limit"])
def test_a_search_stopped_at_once_returns_a_valid_plan(
    how: str, quota_workflow: tuple[Program, Plan]
) -> None:
    program, reference = quota_workflow
    if how == "stop":
        plan = optimize(program, CATALOG, stop=lambda: True)
        assert any("stopped on request" in line for line in plan.explanation)
    else:
        plan = optimize(program, CATALOG, time_limit_s=1e-6)
    assert plan.status in ("optimal", "feasible")
    assert check_plan(program, CATALOG, plan) == []
    _honest(plan, reference)
    if plan.status == "feasible" and how == "limit":
        assert any("time limit of 1e-06 s reached" in line for line in plan.explanation)
    # nothing is computed past the limit: the naive baseline is null, and says why
    assert plan.baselines["naive"] is None
    assert any("naive baseline: not computed" in line for line in plan.explanation)


def test_no_model_is_started_that_the_time_left_cannot_hold(
    quota_workflow: tuple[Program, Plan],
) -> None:
    """A model expected to take longer than the time left is skipped: the quick plan."""
    program, reference = quota_workflow
    problem, _ = build_problem(program, CATALOG)
    clock = Clock(3600.0)
    clock.model_s = 1e9
    sol = solve_problem(problem, clock)
    assert sol.status in ("optimal", "feasible") and sol.choice is not None
    assert sol.lower_bound is not None and reference.expected_cost_usd is not None
    assert sol.lower_bound <= reference.expected_cost_usd + 1e-6
    if sol.status == "optimal":
        assert sol.cost is not None and sol.cost <= reference.expected_cost_usd + 1e-6


def test_the_fastest_plan_stopped_at_once_is_valid() -> None:
    steps = []
    for i in range(12):
        after = (f"s{i - 1}",) if i % 3 else ()
        steps.append(_dur(f"s{i}", {"SLOW": 2.0 + i % 4, "FAST": 0.5 + (i % 3) * 0.2}, after=after))
    wf = Workflow.model_validate(
        {"name": "hand", "objective": "time", "quota": Quota(accelerators={"FAST": 1, "SLOW": 2})}
    )
    program = Program(workflow=wf, steps=tuple(steps))
    plan = optimize(program, CAT2, stop=lambda: True)
    reference = optimize(program, CAT2)
    assert plan.status in ("optimal", "feasible")
    assert check_plan(program, CAT2, plan) == []
    assert plan.makespan_h is not None and reference.makespan_h is not None
    if plan.status == "optimal":
        assert plan.makespan_h <= reference.makespan_h + 1e-6


def test_a_quota_too_small_for_the_work_is_proven_infeasible_and_explained() -> None:
    """Three 5-hour steps on the one SLOW GPU the quota allows need 15 h: a 12 h
    deadline cannot hold them, whatever the order (each alone fits)."""
    steps = tuple(_dur(f"s{i}", {"SLOW": 5.0}) for i in range(3))
    wf = Workflow.model_validate(
        {"name": "hand", "deadline_h": 12.0, "quota": Quota(accelerators={"SLOW": 1})}
    )
    program = Program(workflow=wf, steps=steps)
    plan = optimize(program, CAT2)
    assert plan.status == "infeasible"
    text = "\n".join(plan.explanation)
    assert "the quota of SLOW = 1 cannot hold the work by the deadline of 12.00 h" in text
    assert "a quota of at least 2 or a deadline of at least 15.00 h" in text


def test_the_reductions_stop_when_the_time_is_up(
    quota_workflow: tuple[Program, Plan],
) -> None:
    """Pruning looks at the clock: out of time, every step keeps its options within the
    quota that the bound reductions leave (pruning is exact but optional), and the
    quick plan of that problem is still valid and honest."""
    from exo.compiler.problem import enumerate_program, problem_from
    from exo.compiler.solution import proven_by_bound

    program, reference = quota_workflow
    enum = enumerate_program(program, CATALOG)
    full = problem_from(program, enum)
    late = problem_from(program, enum, lambda: True)
    within = {n: set(opts) for n, opts in enum.within_quota.items()}
    for name, lo, fo in zip(late.names, late.options, full.options, strict=True):
        assert set(fo) <= set(lo) <= within[name]  # pruning commutes with the reductions
    assert sum(map(len, late.options)) > sum(map(len, full.options))
    # with time left, the same reductions as without a clock
    assert problem_from(program, enum, lambda: False) == full
    sol = proven_by_bound(late) or solve_problem(late, Clock(1e-9))
    assert sol.status in ("optimal", "feasible") and sol.cost is not None
    assert reference.lower_bound_usd is not None
    assert sol.cost >= reference.lower_bound_usd - 1e-6


def test_a_baseline_the_time_left_cannot_hold_is_not_started() -> None:
    """The all-on-demand baseline expected to take longer than the time left is null,
    and the explanation says why (it is not solved past the limit)."""
    from exo.compiler.optimizer import _all_on_demand
    from exo.compiler.problem import enumerate_program
    from exo.compiler.solution import Solution

    program, catalog = generate(8, seed=2, deadline="tight", quota=True, catalog=CATALOG)
    enum = enumerate_program(program, catalog)
    sol = Solution("feasible", (), (), 1.0, 1.0, 0.5, 0.5)
    base, line = _all_on_demand(program, enum, sol, True, Clock(3600.0), 1e9)
    assert base is None
    assert "all_on_demand baseline: not computed" in line and "cannot hold it" in line
    base, line = _all_on_demand(program, enum, sol, True, Clock(3600.0), 0.0)
    assert base is not None and "solved on its own" in line


def test_a_baseline_whose_plan_without_a_model_does_not_fit_is_not_solved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once reduced, an all-on-demand baseline whose cheapest option everywhere is late
    needs a plan without a model (schedules that cannot look at the clock): under a
    limit that cannot hold them it is ``null``, and the line says why; without a
    limit it is solved as before."""
    import exo.compiler.baselines as baselines
    from exo.compiler.optimizer import _all_on_demand
    from exo.compiler.problem import enumerate_program, problem_from, without_spot
    from exo.compiler.solution import Solution, proven_by_bound

    program, catalog = generate(8, seed=1, deadline="tight", quota=True, catalog=CATALOG)
    enum = enumerate_program(program, catalog)
    assert proven_by_bound(problem_from(program, without_spot(enum))) is None
    monkeypatch.setattr(baselines, "QUICK_PER_SCHEDULE", 1e12)  # no limit holds it
    assert baselines.all_on_demand(program, enum, Clock(3600.0)) == "late"
    sol = Solution("feasible", (), (), 1.0, 1.0, 0.5, 0.5)
    base, line = _all_on_demand(program, enum, sol, True, Clock(3600.0), 0.0)
    assert base is None
    assert "all_on_demand baseline: not computed" in line and "without a solver model" in line
    unlimited = baselines.all_on_demand(program, enum, Clock(None))
    assert unlimited is not None and unlimited != "late"


def test_the_time_the_baselines_leave_goes_back_to_the_plan(
    quota_workflow: tuple[Program, Plan],
) -> None:
    """A cost plan the search left unproven (here the quick plan, no time for a model)
    goes on from where it stopped with the time the baselines did not use: the exact
    model started from the plan proves the 16-step optimum. Without a time limit, or
    for a plan already proven, nothing runs."""
    from exo.compiler.schedule import violations
    from exo.compiler.solve import resume

    program, reference = quota_workflow
    problem, _ = build_problem(program, CATALOG)
    clock = Clock(3600.0)
    clock.model_s = 1e9  # no time for a model: the quick plan
    quick = solve_problem(problem, clock)
    assert quick.status == "feasible" and quick.cost is not None and quick.gap
    assert resume(problem, quick, Clock(None)) is quick
    got = resume(problem, quick, Clock(600.0))
    assert got.choice is not None and got.starts is not None and got.cost is not None
    assert violations(problem.jobs(got.choice), got.starts, problem.deadline) == []
    assert got.cost <= quick.cost + 1e-9
    assert got.lower_bound is not None and quick.lower_bound is not None
    assert got.lower_bound >= quick.lower_bound - 1e-9
    assert reference.expected_cost_usd is not None
    assert got.lower_bound <= reference.expected_cost_usd + 1e-6
    assert got.status == "optimal" and got.gap == 0.0
    assert resume(problem, got, Clock(600.0)) is got


def test_the_plan_resumes_after_the_baselines_only_while_time_is_left(
    quota_workflow: tuple[Program, Plan],
) -> None:
    """The optimizer's hand-over: a spent clock, or a proven plan, leaves the solution
    as it is (and does not load the solver stack for it)."""
    from exo.compiler.optimizer import _resumed
    from exo.compiler.problem import enumerate_program, problem_from

    program, _ = quota_workflow
    enum = enumerate_program(program, CATALOG)
    problem = problem_from(program, enum)
    clock = Clock(3600.0)
    clock.model_s = 1e9
    quick = solve_problem(problem, clock)
    assert quick.status == "feasible" and quick.cost is not None
    assert _resumed(problem, enum, quick, quick, Clock(1e-9)) is quick
    got = _resumed(problem, enum, quick, quick, Clock(600.0))
    assert got.status == "optimal" and got.cost is not None and got.cost <= quick.cost + 1e-9
    assert _resumed(problem, enum, got, got, Clock(600.0)) is got


def test_the_clock_keeps_back_the_time_the_work_after_the_search_needs() -> None:
    """``Clock.keep``: the search, and every clock made from it afterwards, sees a limit
    that much shorter, so that what follows it (which cannot look at the clock) ends
    within the real one; the whole limit is still counted from ``started``."""
    clock = Clock(100.0)
    clock.keep(30.0)
    left = clock.remaining()
    assert left is not None and 69.0 < left <= 70.0
    child = clock.child(None)
    assert child.seconds is not None and child.seconds <= 70.0
    clock.keep(200.0)
    assert clock.remaining() == 0.0 and clock.expired()
    assert Clock(None).remaining() is None  # no limit: nothing to keep back
    earlier = Clock(100.0, started=time.perf_counter() - 40.0)
    got = earlier.remaining()
    assert got is not None and 59.0 < got <= 60.0


def test_pruning_stops_while_the_time_left_holds_the_reductions_and_first_schedule(
    quota_workflow: tuple[Program, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruning is exact but optional: it stops while the time left still holds what
    cannot look at the clock after it (``TAIL_PER_BUILD`` times the build); with that
    reserve larger than the whole limit nothing is pruned, and the plan is still valid."""
    import exo.compiler.optimizer as optimizer
    from exo.compiler.problem import enumerate_program, problem_from

    program, reference = quota_workflow
    seen: list[Problem] = []
    real = optimizer.problem_from

    def spy(*args: object, **kwargs: object) -> Problem:
        got = real(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(got)
        return got

    monkeypatch.setattr(optimizer, "problem_from", spy)
    monkeypatch.setattr(optimizer, "TAIL_PER_BUILD", 1e12)  # no time is ever enough
    plan = optimize(program, CATALOG, time_limit_s=3600.0)
    enum = enumerate_program(program, CATALOG)
    assert seen[0] == problem_from(program, enum, lambda: True)  # not pruned at all
    assert seen[0] != problem_from(program, enum)
    check_plan(program, CATALOG, plan)
    _honest(plan, reference)
    seen.clear()
    monkeypatch.setattr(optimizer, "TAIL_PER_BUILD", 0.0)  # all the time it needs
    optimize(program, CATALOG, time_limit_s=3600.0)
    assert seen[0] == problem_from(program, enum)


def test_exoc_plan_counts_the_time_limit_from_the_start_of_the_command(tmp_path: Path) -> None:
    """``exoc plan --time-limit`` is the time the user waits: counted from the process's
    start (start-up and compiling included), which ``main`` hands the command."""
    import subprocess

    code = (
        "import time; time.sleep(0.3)\n"
        "from exo.compiler.cli import process_started\n"
        "print(time.perf_counter() - process_started())\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert 0.3 <= float(got) < 30.0
    from typer.testing import CliRunner

    from exo.compiler.cli import app

    wf = ROOT / "examples" / "quickstart.exo"
    args = ["plan", str(wf), "--format", "json", "--time-limit", "30"]
    # a command that started an hour ago has no time left: the plan says so
    late = CliRunner().invoke(app, args, obj=time.perf_counter() - 3600.0)
    assert late.exit_code == 0, late.output
    assert "used the whole time limit" in late.stdout
    fresh = CliRunner().invoke(app, args, obj=time.perf_counter())
    assert fresh.exit_code == 0 and "used the whole time limit" not in fresh.stdout
