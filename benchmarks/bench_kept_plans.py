"""Kept plans: the verbs after ``exoc plan`` with and without a search (issue #16).

For each workflow size, in a folder of its own (``gen_workflows.py``'s files),
``exoc plan --time-limit inf`` runs once, then each verb that hands a plan to a
backend runs ``--repeat`` times with the plan cache on (the plan ``exoc plan``
kept) and off (``EXO_PLAN_CACHE=off``: a search every time, as before kept plans),
alternated. Any other ``exoc`` (``--exoc NAME=PATH``, e.g. the build before) runs
the same verbs in the same rounds, with its own cache folder.

    python benchmarks/bench_kept_plans.py --sizes 2000 10000 --repeat 3
    python benchmarks/bench_kept_plans.py --exoc base=BASE/.venv/bin/exoc

Wall and CPU seconds (the command and its children) are medians over the repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench_local import wall
from gen_workflows import generate, write

#: The verbs timed after ``exoc plan`` (``{out}``: a fresh output folder).
VERBS = {
    "status": ["status", "flow.exo"],
    "compile slurm": ["compile", "flow.exo", "--target", "slurm", "-o", "{out}"],
}


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exoc", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--work", type=Path, help="folder for the workflows (default: a temporary one)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    tools = {"main": str(Path(sys.executable).with_name("exoc"))}
    tools |= dict(item.split("=", 1) for item in args.exoc)
    work = args.work or Path(tempfile.mkdtemp(prefix="exo-kept-"))
    print(f"load before: {os.getloadavg()[0]:.2f}; work in {work}")
    print("\n| steps | exoc | verb | cache | wall median (s) | CPU median (s) |")
    print("|---:|---|---|---|---:|---:|")
    for size in args.sizes:
        for name, exoc in tools.items():
            here = work / f"{size}-{name}"
            write(generate(size), here)
            env = dict(os.environ, EXO_PLAN_CACHE=str(here / "plans"))
            plan = wall(
                [
                    exoc,
                    "plan",
                    "flow.exo",
                    "--format",
                    "json",
                    "-o",
                    "p.json",
                    "--time-limit",
                    "inf",
                ],
                here,
                env=env,
            )
            print(f"| {size} | {name} | plan | (keeps it) | {plan[0]:.2f} | {plan[1]:.2f} |")
            for verb, cmd in VERBS.items():
                rows: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
                for i in range(args.repeat):
                    for cache in ("on", "off"):
                        argv_i = [exoc, *(a.format(out=f"out-{cache}-{i}") for a in cmd)]
                        run_env = env if cache == "on" else dict(env, EXO_PLAN_CACHE="off")
                        rows[cache].append(wall(argv_i, here, env=run_env)[:2])
                for cache, got in rows.items():
                    w = statistics.median(x[0] for x in got)
                    c = statistics.median(x[1] for x in got)
                    print(f"| {size} | {name} | {verb} | {cache} | {w:.2f} | {c:.2f} |")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
