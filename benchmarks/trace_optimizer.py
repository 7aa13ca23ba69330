"""The incumbent and the proven bound over time, for one generated case of the optimizer benchmark.

Prints a line per progress report of ``optimize()`` (wall and CPU seconds since
the call began, the phase, the best plan's value, the bound and the gap), then
the plan's status, cost, bound and gap. Shows which of the two is missing when
a time limit ends with a gap: the incumbent or the bound.

Usage::

    python benchmarks/trace_optimizer.py --steps 1000 --time-limit 10 [--cache PROGS]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_optimizer import generated

from exo.compiler.anytime import Progress
from exo.compiler.optimizer import optimize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--deadline", choices=("tight", "loose"), default="tight")
    ap.add_argument("--no-quota", action="store_true")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--cache", type=Path, default=None, help="folder of generated programs")
    args = ap.parse_args()
    program, catalog = generated(
        args.steps, args.seed, args.deadline, not args.no_quota, args.cache
    )
    t0, c0 = time.perf_counter(), time.process_time()

    def show(p: Progress) -> None:
        gap = "-" if p.gap is None else f"{p.gap:.3%}"
        print(
            f"{time.perf_counter() - t0:8.2f} s {time.process_time() - c0:7.2f} CPU s "
            f"{p.objective:4} {p.phase:14} best {p.best} bound {p.bound} gap {gap}",
            flush=True,
        )

    plan = optimize(program, catalog, time_limit_s=args.time_limit, progress=show)
    gap = "-" if plan.gap is None else f"{plan.gap:.3%}"
    print(
        f"{time.perf_counter() - t0:8.2f} s {time.process_time() - c0:7.2f} CPU s "
        f"{plan.status}: cost {plan.expected_cost_usd} bound {plan.lower_bound_usd} gap {gap}"
    )


if __name__ == "__main__":
    main()
