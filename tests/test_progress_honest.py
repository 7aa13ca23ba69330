"""Progress tells the truth: a plan it reports was found, a bound it reports holds.

The progress line ("best $X, bound $Y, gap Z%") is what a user watches while a
plan is searched, and what Ctrl-C promises to return. The energy-cut
relaxation's solutions are not plans (they may break a quota at some instant)
and a model over fewer options does not bound the whole problem: neither may
show up as progress. On the optimizer benchmark's 100-step case with a tight
deadline and quotas the relaxation once reported "best $122.49, gap 0%" and
the plan returned cost $125.73.
"""

from __future__ import annotations

import sys
from pathlib import Path

from exo.compiler.anytime import Progress
from exo.compiler.optimizer import optimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_optimizer import generated  # noqa: E402  (a benchmark script, not a package)


def test_progress_reports_no_plan_better_than_the_one_returned_and_no_bound_above_it() -> None:
    program, catalog = generated(100, 1, "tight", True, None)
    seen: list[Progress] = []
    plan = optimize(program, catalog, time_limit_s=8.0, progress=seen.append)
    assert plan.status in ("optimal", "feasible")
    cost = plan.expected_cost_usd
    assert cost is not None
    bests = [p.best for p in seen if p.objective == "cost" and p.best is not None]
    bounds = [p.bound for p in seen if p.objective == "cost" and p.bound is not None]
    assert bests and bounds
    assert min(bests) >= cost - 1e-6 * cost
    assert max(bounds) <= cost + 1e-6 * cost
