"""Do the example plans keep their promises? A Monte Carlo under the cost model.

For every example workflow: plan it, then run :func:`exo.compiler.simulate.simulate`
(Poisson preemptions at each instance's λ, checkpoints, restarts; 10,000 runs,
seeded) and print, per step, the fraction of runs that met the step's planned
duration at confidence ``P``; for the plan, the fraction that met its makespan
and the mean simulated cost against ``expected_cost_usd``; and the savings against
both baselines of DESIGN §4.

Usage::

    python benchmarks/bench_promises.py [--runs 10000] [--seed 0] [--release planned|asap]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize
from exo.compiler.simulate import plan_steps, simulate

REPO = Path(__file__).resolve().parents[1]


def examples() -> list[Path]:
    found = sorted((REPO / "examples").glob("*.exo")) + sorted(
        (REPO / "examples" / "onprem").glob("*.exo")
    )
    entry = re.compile(r"^workflow\s", re.MULTILINE)  # imported modules have none
    return [p for p in found if entry.search(p.read_text(encoding="utf-8"))]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def saving(base: float | None, cost: float | None) -> str:
    if base is None or cost is None or base <= 0:
        return "-"
    return f"${base:,.2f} ({(base - cost) / base:.1%})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--release", choices=["planned", "asap"], default="planned")
    args = ap.parse_args()
    print(
        "| example | confidence | step (replicas, tier) | promised P h | P met | "
        "makespan met | mean cost / expected | vs all on-demand | vs naive |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for path in examples():
        compiled = compile_file(path)
        plan = optimize(compiled.program, compiled.catalog)
        name = path.relative_to(REPO / "examples").as_posix()
        if plan.status == "infeasible":
            print(f"| {name} | - | infeasible | | | | | | |")
            continue
        res = simulate(
            plan_steps(compiled.program, compiled.catalog, plan),
            runs=args.runs,
            seed=args.seed,
            release=args.release,
        )
        ratio = res.mean_cost_usd / res.expected_cost_usd if res.expected_cost_usd else 1.0
        od = plan.baselines.get("all_on_demand")
        nv = plan.baselines.get("naive")
        cost = plan.expected_cost_usd
        for i, (sp, st) in enumerate(zip(plan.steps, res.steps, strict=True)):
            tier = "spot" if sp.spot else "od"
            first = i == 0
            print(
                f"| {name if first else ''} | {plan.confidence:.2f} | {sp.name} (x{sp.replicas}, "
                f"{sp.instance_type} {tier}) | {sp.p_duration_h:.3f} | {_pct(st.hit_rate)} | "
                + (
                    f"{_pct(res.makespan_hit_rate)} | ${res.mean_cost_usd:,.2f} / "
                    f"${res.expected_cost_usd:,.2f} ({ratio - 1:+.1%}) | "
                    f"{saving(od.expected_cost_usd if od else None, cost)} | "
                    f"{saving(nv.expected_cost_usd if nv else None, cost)} |"
                    if first
                    else "| | | |"
                )
            )


if __name__ == "__main__":
    main()
