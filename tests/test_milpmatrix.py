"""The MILP handed to HiGHS as a matrix is the one cvxpy made of it (issue #16).

:mod:`exo.compiler.milpmatrix` stacks the model's rows without cvxpy (its import
and copies set the memory peak of ``exoc plan`` at 10,000 steps). The plans
must not change, so HiGHS must get exactly the model cvxpy gave it: the same
columns, rows, signs, coefficients (bit for bit), bounds and integrality. Here
both forms are built from the same problems, with and without a budget, edges,
binding quotas (capacity cuts), for both objectives and the LP relaxation, and
compared; one is solved both ways.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from exo.compiler import milp
from exo.compiler.frontend import compile_file
from exo.compiler.highs import Model, _matrix, run
from exo.compiler.milpmatrix import matrix_model, solve_matrix
from exo.compiler.problem import Problem, binding_resources, enumerate_program, problem_from

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gen_workflows  # noqa: E402  (a benchmark script, not a package)

FIELDS = ("n_cols", "n_rows", "c", "col_lo", "col_hi", "row_lo", "row_hi", "integrality")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Problem:
    """The benchmark's workflow at 120 steps, its quotas cut so that they bind."""
    out = tmp_path_factory.mktemp("flow")
    gen_workflows.write(gen_workflows.generate(120, 7), out, "wildcards")
    compiled = compile_file(out / "flow.exo")
    enum = enumerate_program(compiled.program, compiled.catalog)
    problem = problem_from(compiled.program, enum)
    return replace(problem, limits=tuple(max(1, q // 64) for q in problem.limits))


def _both(
    problem: Problem, objective: Literal["cost", "time"], relax: bool
) -> tuple[Model, bool, dict[int, int], Model, tuple[int, int, int], tuple[int, int]]:
    import cvxpy as cp

    shape = milp._shape(problem, problem.deadline, None)
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    cuts = [
        c
        for r in binding
        for c in milp._capacity_cuts(problem, shape.data, r, shape.head, shape.tail)
    ]
    prob, x, t = milp.cvxpy_model(problem, shape, cuts, objective, relax=relax)
    data, _, _ = prob.get_problem_data(cp.HIGHS)
    ref, is_mip = _matrix(data)
    cols = data["param_prob"].var_id_to_col
    got, columns = matrix_model(problem, shape, cuts, objective, relax)
    return ref, is_mip, cols, got, columns, (x.id, t.id)


def _assert_same(ref: Model, got: Model) -> None:
    for name in FIELDS:
        a, b = getattr(ref, name), getattr(got, name)
        assert np.array_equal(a, b), name
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, name
    assert ref.a.shape == got.a.shape
    assert ref.a.has_sorted_indices and got.a.has_sorted_indices
    for name in ("indptr", "indices", "data"):
        a, b = getattr(ref.a, name), getattr(got.a, name)
        assert np.array_equal(a, b), name
    # bit for bit, not within a tolerance
    assert ref.a.data.tobytes() == got.a.data.astype(ref.a.data.dtype).tobytes()
    assert ref.row_hi.tobytes() == got.row_hi.tobytes()


@pytest.mark.parametrize("objective", ["cost", "time"])
@pytest.mark.parametrize("relax", [False, True])
@pytest.mark.parametrize("budget", [True, False])
def test_the_matrix_is_cvxpys(
    generated: Problem, objective: Literal["cost", "time"], relax: bool, budget: bool
) -> None:
    problem = generated if budget else replace(generated, budget=None)
    assert binding_resources(problem.options, problem.resources, problem.limits)
    ref, is_mip, cols, got, (x0, m, t0), (x_id, t_id) = _both(problem, objective, relax)
    assert is_mip == (not relax)
    assert (cols[x_id], cols[t_id]) == (x0, t0)
    assert ref.c[m] == (1.0 if objective == "time" else 0.0)
    _assert_same(ref, got)


@pytest.mark.parametrize("steps", [1, 2, 30])
def test_small_and_unconstrained_shapes(generated: Problem, steps: int) -> None:
    """No edges (one step), one edge, no binding quota."""
    problem = replace(
        generated,
        names=generated.names[:steps],
        preds=generated.preds[:steps],
        options=generated.options[:steps],
        limits=tuple(10**9 for _ in generated.limits),
    )
    ref, _, _, got, _, _ = _both(problem, "cost", False)
    _assert_same(ref, got)


def test_solved_the_same_both_ways(generated: Problem) -> None:
    problem = replace(
        generated,
        names=generated.names[:60],
        preds=generated.preds[:60],
        options=generated.options[:60],
    )
    shape = milp._shape(problem, problem.deadline, None)
    binding = binding_resources(problem.options, problem.resources, problem.limits)
    cuts = [
        c
        for r in binding
        for c in milp._capacity_cuts(problem, shape.data, r, shape.head, shape.tail)
    ]
    prob, x, t = milp.cvxpy_model(problem, shape, cuts, "cost")
    via_cvxpy = run(prob, {0: x, 1: t})
    direct = solve_matrix(
        matrix_model(problem, shape, cuts, "cost", False), shape, problem.size, False
    )
    assert direct is not None and via_cvxpy.values is not None and direct.values is not None
    assert direct.status == via_cvxpy.status == "optimal"
    assert direct.value == via_cvxpy.value
    assert direct.bound == via_cvxpy.bound
    for key in (0, 1):
        assert np.array_equal(direct.values[key], via_cvxpy.values[key])


def test_a_model_without_exact_quotas_never_imports_cvxpy(tmp_path: Path) -> None:
    """The relaxation of a large quota problem plans without loading cvxpy."""
    gen_workflows.write(gen_workflows.generate(120, 7), tmp_path, "wildcards")
    code = (
        "import sys\n"
        "from dataclasses import replace\n"
        "from pathlib import Path\n"
        "from exo.compiler.frontend import compile_file\n"
        "from exo.compiler.problem import enumerate_program, problem_from, binding_resources\n"
        "from exo.compiler.milp import solve_milp\n"
        f"c = compile_file(Path({str(tmp_path / 'flow.exo')!r}))\n"
        "p = problem_from(c.program, enumerate_program(c.program, c.catalog))\n"
        "p = replace(p, limits=tuple(max(1, q // 64) for q in p.limits))\n"
        "b = binding_resources(p.options, p.resources, p.limits)\n"
        "r = solve_milp(p, objective='cost', deadline=None, energy=b)\n"
        "assert b and r.status == 'optimal', (b, r.status)\n"
        "print('cvxpy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False"
