"""A local run of many one-shard steps: ``exoc run`` and ``exoc status`` (issue #16).

The workflow: ``--chains`` chains of ``--length`` steps, each step one shard of
``true`` (``after`` the one before it in its chain), so that the runner's own
work per step (the loop's turns, the step's folders and records, the reports)
is what is timed. For each ``exoc`` (this one, and ``--exoc NAME=PATH`` such as
the build before, alternated in the same rounds), in a folder of its own:
``exoc plan`` once (kept, where the build keeps plans), then ``--repeat`` times
``exoc run flow.exo --fresh --jobs 2`` and ``exoc status flow.exo``.

    python benchmarks/bench_many_steps.py --chains 500 --length 10 --repeat 2 \\
        --exoc base=BASE/.venv/bin/exoc

Wall and CPU seconds (the command and its children) are medians over the repeats;
``per step`` is the run's wall time over the number of steps.
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


def workflow(chains: int, length: int) -> str:
    blocks = ["workflow many {\n  deadline = 240h\n  budget   = $1000000\n}\n"]
    for c in range(chains):
        for k in range(length):
            after = f"\n  after    = [c{c}s{k - 1}]" if k else ""
            blocks.append(
                f'step c{c}s{k} {{\n  command  = ["true"]\n  duration = 1m\n  cpu      = 1'
                f"{after}\n}}\n"
            )
    return "\n".join(blocks)


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chains", type=int, default=500)
    ap.add_argument("--length", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--exoc", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--work", type=Path, help="folder for the runs (default: a temporary one)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    tools = {"main": str(Path(sys.executable).with_name("exoc"))}
    tools |= dict(item.split("=", 1) for item in args.exoc)
    work = args.work or Path(tempfile.mkdtemp(prefix="exo-many-"))
    steps = args.chains * args.length
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name, exoc in tools.items():
        here = work / name
        here.mkdir(parents=True, exist_ok=True)
        (here / "flow.exo").write_text(workflow(args.chains, args.length))
        env = dict(os.environ, EXO_PLAN_CACHE=str(here / "plans"))
        wall([exoc, "plan", "flow.exo", "--format", "json", "-o", "p.json"], here, env=env)
    print(f"{steps:,} steps; load before: {os.getloadavg()[0]:.2f}; work in {work}")
    for _ in range(args.repeat):
        for name, exoc in tools.items():
            here = work / name
            env = dict(os.environ, EXO_PLAN_CACHE=str(here / "plans"))
            for verb, cmd in (("run", ["run", "flow.exo", "--fresh", "--jobs", "2"]),
                              ("status", ["status", "flow.exo"])):  # fmt: skip
                times.setdefault((name, verb), []).append(wall([exoc, *cmd], here, env=env)[:2])
    print("\n| exoc | verb | wall median (s) | CPU median (s) | per step (ms) |")
    print("|---|---|---:|---:|---:|")
    for (name, verb), got in times.items():
        w = statistics.median(x[0] for x in got)
        c = statistics.median(x[1] for x in got)
        print(f"| {name} | {verb} | {w:.2f} | {c:.2f} | {1000 * w / steps:.2f} |")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
