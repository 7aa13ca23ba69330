"""Do deadlines hold on bursty spot? `exoc simulate` with and without the fallback.

For every repo example with a spot step: plan it, then simulate 10,000 runs
(seeded) under the model and replaying each synthetic trace pattern of
``gen_spot_traces.py`` (steady, bursty, long gaps; ``--zones`` traces each, a
run picks one at a random offset), with ``--policy none`` and ``fallback``.
Prints, per example, pattern and policy: the deadline-hit rate (the planned
makespan without a deadline), the mean and p95 cost against the plan's
expected cost, the savings of the mean cost against this plan run on on-demand instances of
the same types (the fallback's tier) and against the plan's all-on-demand
baseline (another placement: ``-`` when none meets the limits),
the on-demand hours of the fallback, and the seconds the simulation took.

Usage::

    python benchmarks/bench_simulate.py [--runs 10000] [--seed 0] [--zones 4] [--days 45]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_promises import examples
from gen_spot_traces import write

from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize
from exo.compiler.simulate import SimResult, plan_steps, simulate
from exo.compiler.spot_traces import SpotTrace, load_traces

REPO = Path(__file__).resolve().parents[1]


def _saved(cost: float, base: float | None) -> str:
    return f"{1 - cost / base:.0%}" if base else "-"


def _row(name: str, pattern: str, res: SimResult, od: float | None, secs: float) -> str:
    hit = res.deadline_hit_rate if res.deadline_hit_rate is not None else res.makespan_hit_rate
    exp = res.expected_cost_usd
    ratio = f"{res.cost_usd.mean / exp:.2f}x / {res.cost_usd.p95 / exp:.2f}x" if exp else "-"
    return (
        f"| {name} | {pattern} | {res.policy} | {hit:.1%} | ${res.cost_usd.mean:,.2f} | {ratio} "
        f"| {_saved(res.cost_usd.mean, res.ondemand_ceiling_usd)} | {_saved(res.cost_usd.mean, od)} "
        f"| {res.ondemand_h:.2f} | {res.unfinished_rate:.1%} | {secs:.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zones", type=int, default=4)
    ap.add_argument("--days", type=float, default=45.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write(Path(tmp), args.days, args.zones, args.seed)
        patterns: dict[str, list[SpotTrace]] = {"model": []}
        patterns.update({k: load_traces(v) for k, v in files.items()})
    print(
        "| example | spot | policy | deadline met | mean cost | mean / p95 vs expected "
        "| saved vs this plan on-demand | vs all-on-demand plan | on-demand h | unfinished "
        "| seconds |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in examples():
        compiled = compile_file(path)
        plan = optimize(compiled.program, compiled.catalog)
        if plan.status == "infeasible" or not any(s.spot for s in plan.steps):
            continue
        steps = plan_steps(compiled.program, compiled.catalog, plan)
        od_plan = plan.baselines.get("all_on_demand")
        od = None if od_plan is None else od_plan.expected_cost_usd
        name = f"{path.relative_to(REPO / 'examples').as_posix()} (${plan.expected_cost_usd:,.2f})"
        for pattern, traces in patterns.items():
            for policy in ("none", "fallback"):
                t0 = time.perf_counter()
                res = simulate(
                    steps,
                    runs=args.runs,
                    seed=args.seed,
                    release="asap",
                    policy="fallback" if policy == "fallback" else "none",
                    traces=traces,
                    deadline_h=plan.deadline_h,
                )
                print(_row(name, pattern, res, od, time.perf_counter() - t0))
                name = ""


if __name__ == "__main__":
    main()
