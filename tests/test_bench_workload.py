"""The compile benchmark's workflow can be planned too (issue #16).

``benchmarks/gen_workflows.py`` makes the 10,000-step workflow that ``exoc check``
is timed on; check and plan must be measured on the same workload, so every step
must ask only for what a row of the built-in catalog it names offers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from exo.compiler.catalog import load_catalog
from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gen_workflows  # noqa: E402  (a benchmark script, not a package)


def test_every_step_fits_a_catalog_row() -> None:
    rows = load_catalog("aws/us-east-1", ROOT).instances
    most_vcpus = max(r.vcpus for r in rows if r.accelerator is None)
    per_instance: dict[str, int] = {}
    for r in rows:
        if r.accelerator is not None:
            per_instance[r.accelerator] = max(
                per_instance.get(r.accelerator, 0), r.accelerator_count
            )
    for step in gen_workflows.generate(2_000, 7).steps:
        attrs = dict(step.attrs)
        assert step.cpu <= most_vcpus, step.name
        if step.gpus > 1 and "accelerators" in attrs:
            named = [a.strip().strip('"') for a in attrs["accelerators"].strip("[]").split(",")]
            assert any(per_instance.get(a, 0) >= step.gpus for a in named), step.name


def test_a_generated_workflow_plans(tmp_path: Path) -> None:
    spec = gen_workflows.generate(40, 7)
    gen_workflows.write(spec, tmp_path, "wildcards")
    compiled = compile_file(tmp_path / "flow.exo")
    plan = optimize(compiled.program, compiled.catalog, time_limit_s=60)
    assert plan.status != "infeasible"
    assert {p.name for p in plan.steps} == {s.name for s in spec.steps}
