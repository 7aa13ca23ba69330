"""Where `exoc run`'s own time goes, phase by phase, around 1,000 no-op shards (issue #16).

``bench_local.py`` times ``exoc run`` as typed against ``xargs -P`` and against the
runner alone; this script splits the command's wall time. Each run is a fresh
interpreter running ``exoc run noop.exo --jobs J --fresh`` (``bench_local``'s workflow,
its plan kept by a warm-up run) through a tracer that wraps a few functions and
records when each is first entered:

- **imports**: from the tracer's start (the interpreter's own start-up, timed apart
  as ``python -c pass``, is before it) to having imported the CLI and the local
  runner's modules (``exoc run`` imports them along the way; the total is the same);
- **dispatch**: typer parsing the command line, up to ``runs.drive``;
- **compile, plan**: the workflow compiled and its kept plan read, up to
  ``LocalBackend.run``;
- **check, set-up**: the backend's check, the task graph, the spot fallback's figures,
  the state, the run's folders and rows, up to the loop;
- **to the first shard**: the loop's start to the first ``posix_spawn``;
- **shards**: the first spawn to the last;
- **after**: the last spawn to the process's exit (the last shards, the report).

The wrapped names are the runner's own (``spawner._spawn_c``, ``runner._prepare``,
...): a refactoring that renames them must update this script.

Usage::

    python benchmarks/trace_run_start.py [--shards 1000] [--jobs 2] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench_local import WORKFLOW

#: Runs in the timed interpreter: ``argv[1:]`` are exoc's arguments; prints one JSON line.
TRACER = r"""
import json, os, sys, time
t0 = time.perf_counter()
sys.argv = ["exoc", *sys.argv[1:]]
import exo.compiler.cli, exo.compiler.cli.runs as runs
import exo.backends.local.backend as backend, exo.backends.local.runner as runner
import exo.backends.local.loop as loop, exo.backends.local.spawner as spawner
marks = {"imports": time.perf_counter()}
spawns = []

def first(owner, name, label):
    inner = getattr(owner, name)
    def wrapped(*args, **kwargs):
        marks.setdefault(label, time.perf_counter())
        return inner(*args, **kwargs)
    setattr(owner, name, wrapped)

first(runs, "drive", "dispatch")
first(backend.LocalBackend, "run", "compile")
first(loop.Loop, "run", "setup")
for name in ("_spawn_c", "_spawn_os"):
    inner_spawn = getattr(spawner, name)
    def spawn(*args, __inner=inner_spawn, **kwargs):
        spawns.append(time.perf_counter())
        return __inner(*args, **kwargs)
    setattr(spawner, name, spawn)
real_exit = os._exit

def leave(code=0):
    end = time.perf_counter()
    out = {k: v - t0 for k, v in marks.items()}
    out.update(first_spawn=spawns[0] - t0, last_spawn=spawns[-1] - t0, exit=end - t0,
               spawns=len(spawns), code=code)
    sys.stderr.write("TRACE " + json.dumps(out) + "\n")
    real_exit(code)

os._exit = leave
from exo.compiler.launch import main
try:
    main()
except SystemExit as stop:
    leave(stop.code if isinstance(stop.code, int) else 1)
leave(0)
"""

#: (label, start mark, end mark) of each phase, in order.
PHASES = (
    ("imports", None, "imports"),
    ("dispatch", "imports", "dispatch"),
    ("compile, plan", "dispatch", "compile"),
    ("check, set-up", "compile", "setup"),
    ("to the first shard", "setup", "first_spawn"),
    ("shards", "first_spawn", "last_spawn"),
    ("after", "last_spawn", "exit"),
)


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, help="where the run folders go (default: a temporary one)")
    return ap.parse_args(argv)


def traced(here: Path, jobs: int) -> dict[str, float]:
    """One ``exoc run --fresh`` in ``here`` through the tracer: its marks (seconds)."""
    cmd = [sys.executable, "-c", TRACER, "run", "noop.exo", "--jobs", str(jobs), "--fresh"]
    done = subprocess.run(cmd, cwd=here, capture_output=True, text=True, check=False)
    lines = [x for x in done.stderr.splitlines() if x.startswith("TRACE ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"exoc run failed (exit {done.returncode}) in {here}")
    marks: dict[str, float] = json.loads(lines[-1].removeprefix("TRACE "))
    return marks


def interpreter_start() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    root = Path(tempfile.mkdtemp(prefix="exo-trace-run-", dir=args.dir))
    flow = WORKFLOW.format(shards=args.shards)
    runs: list[dict[str, float]] = []
    for i in range(args.repeat + 1):  # the first keeps the plan (and writes bytecode)
        here = root / f"run-{i:02d}"
        here.mkdir()
        (here / "noop.exo").write_text(flow)
        marks = traced(here, args.jobs)
        if i:
            runs.append(marks)
    start = statistics.median(interpreter_start() for _ in range(5))
    print(f"{args.shards} no-op shards, --jobs {args.jobs}; median of {args.repeat} runs")
    print(f"load average at the end {os.getloadavg()[0]:.1f}; runs in {root}\n")
    print("| phase | median (s) | min-max (s) |")
    print("|---|---:|---:|")
    print(f"| interpreter start-up (`python -c pass`) | {start:.3f} | |")
    for label, a, b in PHASES:
        spans = [m[b] - (m[a] if a else 0.0) for m in runs]
        print(f"| {label} | {statistics.median(spans):.3f} | {min(spans):.3f}-{max(spans):.3f} |")
    total = [m["exit"] for m in runs]
    print(f"| whole, after the interpreter's start | {statistics.median(total):.3f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
