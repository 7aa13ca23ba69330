"""Kept plans: the verbs after ``exoc plan`` with and without a search (issue #16).

For each workflow size, in a folder of its own (``gen_workflows.py``'s files),
``exoc plan --time-limit inf`` runs once, then each verb that hands a plan to a
backend runs ``--repeat`` times with the plan cache on (the plan ``exoc plan``
kept) and off (``EXO_PLAN_CACHE=off``: a search every time, as before kept plans),
alternated:

- ``status`` (no run yet) and ``compile --target slurm``, whole commands;
- ``run``: ``exoc run flow.exo --fresh --jobs 2`` until its first shard's log
  file appears (then Ctrl-C): what a user waits before anything runs. The
  generated steps' secrets are set to dummy values; their commands need not work.

Any other ``exoc`` (``--exoc NAME=PATH``, e.g. the build before) runs the same verbs
in the same rounds, with its own cache folder (a build without kept plans searches
either way).

    python benchmarks/bench_kept_plans.py --sizes 2000 10000 --repeat 3
    python benchmarks/bench_kept_plans.py --exoc base=BASE/.venv/bin/exoc

Wall and CPU seconds (the command and its children) are medians over the repeats.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench_local import wall
from gen_workflows import generate, write

#: The whole commands timed after ``exoc plan`` (``{out}``: a fresh output folder).
VERBS = {
    "status": ["status", "flow.exo"],
    "compile slurm": ["compile", "flow.exo", "--target", "slurm", "-o", "{out}"],
}
#: Dummy values for the generated steps' secrets (``exoc run`` checks they are set).
SECRETS = {"HF_TOKEN": "x", "WANDB_API_KEY": "x"}

Timer = Callable[[Mapping[str, str], str], tuple[float, float]]


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exoc", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--work", type=Path, help="folder for the workflows (default: a temporary one)")
    return ap.parse_args(argv)


def first_shard(exoc: str, here: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """Seconds from ``exoc run`` to its first shard's log file, and the CPU it used."""
    logs = here / ".exo" / "flow" / "logs"
    before = set(logs.iterdir()) if logs.is_dir() else set()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(
        [exoc, "run", "flow.exo", "--fresh", "--jobs", "2"],
        cwd=here,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = float("nan")
    while proc.poll() is None:
        new = set(logs.iterdir()) - before if logs.is_dir() else set()
        if any(any(d.iterdir()) for d in new):
            seconds = time.perf_counter() - t
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime


def timers(exoc: str, here: Path) -> dict[str, Timer]:
    """Per verb: a function of the environment and the repeat's tag."""

    def command(cmd: list[str]) -> Timer:
        def timed(env: Mapping[str, str], tag: str) -> tuple[float, float]:
            argv = [exoc, *(a.format(out=f"out-{tag}") for a in cmd)]
            return wall(argv, here, env=env)[:2]

        return timed

    out = {verb: command(cmd) for verb, cmd in VERBS.items()}
    out["run, to the first shard"] = lambda env, tag: first_shard(exoc, here, env)
    return out


def measure(size: int, name: str, exoc: str, work: Path, repeat: int) -> None:
    here = work / f"{size}-{name}"
    write(generate(size), here)
    env = dict(os.environ, EXO_PLAN_CACHE=str(here / "plans"), **SECRETS)
    plan = ["plan", "flow.exo", "--format", "json", "-o", "p.json", "--time-limit", "inf"]
    w, c, _ = wall([exoc, *plan], here, env=env)
    print(f"| {size} | {name} | plan | (keeps it) | {w:.2f} | {c:.2f} |")
    for verb, timed in timers(exoc, here).items():
        rows: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
        for i in range(repeat):
            for cache in ("on", "off"):
                run_env = env if cache == "on" else dict(env, EXO_PLAN_CACHE="off")
                rows[cache].append(timed(run_env, f"{cache}-{i}"))
        for cache, got in rows.items():
            w = statistics.median(x[0] for x in got)
            c = statistics.median(x[1] for x in got)
            print(f"| {size} | {name} | {verb} | {cache} | {w:.2f} | {c:.2f} |", flush=True)


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
            measure(size, name, exoc, work, args.repeat)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
