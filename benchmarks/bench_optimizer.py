"""Optimizer benchmark: generated workflows of 100, 1,000 and 5,000 steps, and the examples.

For every size, tight and loose deadline, with and without quotas: the time to
enumerate and prune the options (build), the time to solve, the status and the
proven gap, with the whole run capped by a time limit (10 s up to 1,000 steps,
60 s above). Then, for the example workflows, the optimum against both
baselines of DESIGN §4.

``--whole`` times what ``exoc plan`` does after compiling instead: the whole
``optimize()`` call (options, solve, the all-on-demand and naive baselines, the
explanation) under ``--time-limit`` (default: the limits above), with the
process's peak memory (``ru_maxrss``) after each case and the CPU seconds of the call
(what the machine's load does not change), and how many steps the time limit
left without their spot options (``no spot``: built on demand only, with a
bound on the spot ones; ``docs/cost-model.md`` § 6); ``--cases tight-quota``
runs only that case (run one size and case per process for its own peak).

Usage::

    python benchmarks/bench_optimizer.py [--sizes 100 1000 5000] [--seed 1]
    python benchmarks/bench_optimizer.py --whole --sizes 10000 --cases tight-quota --time-limit 60
"""

from __future__ import annotations

import argparse
import pickle
import re
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from gen_programs import generate  # noqa: E402

from exo.compiler.catalog import Catalog  # noqa: E402
from exo.compiler.frontend import compile_file  # noqa: E402
from exo.compiler.ir import Program  # noqa: E402
from exo.compiler.optimizer import optimize  # noqa: E402
from exo.compiler.problem import build_problem  # noqa: E402
from exo.compiler.solve import Clock, solve_problem  # noqa: E402


def limit_for(n: int) -> float:
    return 10.0 if n <= 1000 else 60.0


def run_case(n: int, deadline: str, quota: bool, seed: int) -> dict[str, object]:
    program, catalog = generate(n, seed=seed, deadline=deadline, quota=quota)  # type: ignore[arg-type]
    limit = limit_for(n)
    t0 = time.perf_counter()
    problem, enum = build_problem(program, catalog)
    t1 = time.perf_counter()
    sol = solve_problem(problem, Clock(max(limit - (t1 - t0), 0.1)))
    t2 = time.perf_counter()
    raw = sum(len(v) for v in enum.options.values())
    pruned = sum(len(o) for o in problem.options)
    return {
        "steps": n,
        "deadline": deadline,
        "quota": "yes" if quota else "no",
        "options": f"{raw / n:.0f} -> {pruned / n:.1f}",
        "min_options": min(len(v) for v in enum.options.values()),
        "build_s": t1 - t0,
        "solve_s": t2 - t1,
        "total_s": t2 - t0,
        "limit_s": limit,
        "status": sol.status,
        "gap": sol.gap,
    }


def generated(
    n: int, seed: int, deadline: str, quota: bool, cache: Path | None
) -> tuple[Program, Catalog]:
    """The generated program, from ``cache`` (a folder) when it was generated before.

    Generating 10,000 steps takes longer than planning them; the program is a
    deterministic function of its arguments, so a cached copy is the same program.
    """
    if cache is None:
        return generate(n, seed=seed, deadline=deadline, quota=quota)  # type: ignore[arg-type]
    path = cache / f"program-{n}-{seed}-{deadline}-{'quota' if quota else 'noquota'}.pickle"
    if path.exists():
        with path.open("rb") as f:
            got: tuple[Program, Catalog] = pickle.load(f)
        return got
    got = generate(n, seed=seed, deadline=deadline, quota=quota)  # type: ignore[arg-type]
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(got, f)
    return got


def run_whole(
    n: int, deadline: str, quota: bool, seed: int, limit: float, cache: Path | None = None
) -> dict[str, object]:
    """The whole ``optimize()`` call under ``limit``, as ``exoc plan --time-limit`` runs it."""
    program, catalog = generated(n, seed, deadline, quota, cache)
    t0, c0 = time.perf_counter(), time.process_time()
    plan = optimize(program, catalog, time_limit_s=limit)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "steps": n,
        "deadline": deadline,
        "quota": "yes" if quota else "no",
        "total_s": total,
        "cpu_s": cpu,
        "limit_s": limit,
        "over": total / limit - 1.0,
        "status": plan.status,
        "gap": plan.gap,
        "peak_mb": peak_kib / 1024,
        "no_spot": unbuilt_steps(plan.explanation),
    }


def unbuilt_steps(explanation: list[str]) -> int:
    """Steps whose spot options the time limit left unbuilt, as the explanation says."""
    for line in explanation:
        got = re.match(r"time limit: the spot options of (\d+) of the", line)
        if got:
            return int(got.group(1))
    return 0


def whole_table(args: argparse.Namespace) -> None:
    print(
        "| steps | deadline | quota | limit s | optimize() s | CPU s | over the limit | status "
        "| gap | peak MB | no spot |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for n, deadline, quota in cases(args):
        limit = args.time_limit if args.time_limit is not None else limit_for(n)
        r = run_whole(n, deadline, quota, args.seed, limit, args.cache)
        gap = r["gap"]
        print(
            f"| {n:,} | {deadline} | {r['quota']} | {limit:g} | {r['total_s']:.2f} "
            f"| {float(r['cpu_s']):.2f} "  # type: ignore[arg-type]
            f"| {float(r['over']):+.1%} | {r['status']} "  # type: ignore[arg-type]
            f"| {'-' if gap is None else f'{float(gap):.3%}'} | {float(r['peak_mb']):.0f} "  # type: ignore[arg-type]
            f"| {r['no_spot']:,} |",
            flush=True,
        )


def cases(args: argparse.Namespace) -> list[tuple[int, str, bool]]:
    out = []
    for n in args.sizes:
        for quota in (False, True):
            for deadline in ("loose", "tight"):
                name = f"{deadline}-{'quota' if quota else 'noquota'}"
                if not args.cases or name in args.cases:
                    out.append((n, deadline, quota))
    return out


def examples() -> list[Path]:
    shared = REPO.parent / "shared" / "spec" / "examples"
    files = sorted(shared.glob("**/*.exo")) + sorted((REPO / "examples").glob("**/*.exo"))
    return [f for f in files if "\nworkflow " in "\n" + f.read_text(encoding="utf-8")]


def savings_row(path: Path) -> dict[str, object]:
    compiled = compile_file(path)
    plan = optimize(compiled.program, compiled.catalog)
    row: dict[str, object] = {
        "example": path.name,
        "status": plan.status,
        "optimum": plan.expected_cost_usd,
        "deadline": plan.deadline_h,
        "makespan": plan.makespan_h,
    }
    for key in ("all_on_demand", "naive"):
        base = plan.baselines.get(key)
        row[key] = None if base is None else base.expected_cost_usd
        row[f"{key}_h"] = None if base is None else base.makespan_h
        if base is not None and plan.expected_cost_usd is not None and base.expected_cost_usd > 0:
            row[f"save_{key}"] = 1.0 - plan.expected_cost_usd / base.expected_cost_usd
        else:
            row[f"save_{key}"] = None
    return row


def _money(x: object) -> str:
    return "-" if x is None else f"${float(x):,.2f}"  # type: ignore[arg-type]


def _hours(x: object) -> str:
    return "-" if x is None else f"{float(x):.2f}"  # type: ignore[arg-type]


def _pct(x: object) -> str:
    return "-" if x is None else f"{float(x):.1%}"  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 5000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--whole", action="store_true", help="time the whole optimize() call")
    ap.add_argument("--time-limit", type=float, help="seconds (--whole; default by size)")
    ap.add_argument(
        "--cache", type=Path, help="folder keeping generated programs between runs (--whole)"
    )
    ap.add_argument("--cases", nargs="*", help="e.g. tight-quota loose-noquota (default: all four)")
    args = ap.parse_args()
    if args.whole:
        whole_table(args)
        return
    if args.sizes:
        print(
            "| steps | deadline | quota | options/step (raw -> pruned) | build s | solve s "
            "| total s | limit s | status | gap |"
        )
        print("|---:|---|---|---|---:|---:|---:|---:|---|---:|")
    for n, deadline, quota in cases(args):
        r = run_case(n, deadline, quota, args.seed)
        gap = r["gap"]
        print(
            f"| {n:,} | {deadline} | {r['quota']} | {r['options']} (min {r['min_options']}) "
            f"| {r['build_s']:.2f} | {r['solve_s']:.2f} | {r['total_s']:.2f} | {r['limit_s']:.0f} "
            f"| {r['status']} | {'-' if gap is None else f'{float(gap):.3%}'} |",  # type: ignore[arg-type]
            flush=True,
        )
    print()
    print(
        "| example | deadline h | status | optimum | makespan h | all on-demand | saving "
        "| naive | naive makespan h | saving |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in examples():
        r = savings_row(path)
        print(
            f"| {r['example']} | {_hours(r['deadline'])} | {r['status']} | {_money(r['optimum'])} "
            f"| {_hours(r['makespan'])} | {_money(r['all_on_demand'])} "
            f"| {_pct(r['save_all_on_demand'])} | {_money(r['naive'])} | {_hours(r['naive_h'])} "
            f"| {_pct(r['save_naive'])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
