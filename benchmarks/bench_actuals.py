"""Plan vs actual accuracy: do `exoc status` and `exoc profile` measure what a command does?

The command is ``synthetic_step.py`` (the fidelity benchmark's), which behaves
exactly as its step declares: ``startup`` once per process from its start,
then the declared items/s in micro-batches committed through the worker
helper. So the truth is known:

- **run + status**: ``exoc run`` then ``exoc status --format json``; the
  reported duration against the command's own timestamps (first process start
  to last end), and the observed items/s per replica and startup against the
  declared ones;
- **profile**: ``exoc profile --batch-sizes ...`` against the declared items/s
  (the same at every batch size) and startup.

Each figure is printed with its deviation in %; the target is 10%.

Usage::

    python benchmarks/bench_actuals.py [--startup 2] [--rate 40] [--items 480]
        [--replicas 2] [--batch-sizes 10,20,40] [--profile-items 160]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE / "synthetic_step.py"
EXOC = [sys.executable, "-m", "exo.compiler"]


def workflow(
    folder: Path, startup: float, rate: float, items: int, replicas: int, sizes: Sequence[int]
) -> Path:
    params = {
        "mode": "throughput",
        "startup_s": startup,
        "rate": rate,
        "checkpoint": "batch",
        "ledger": str(folder / "own"),
    }
    (folder / "own" / "pids").mkdir(parents=True)
    arg = json.dumps(json.dumps(params).replace("{", "{{").replace("}", "}}"))
    table = ", ".join(f"{b}: {rate:g}" for b in sizes)
    path = folder / "wf.exo"
    path.write_text(
        f"""workflow wf {{
  deadline = 24h
  budget   = $1000
}}
step work {{
  items      = {items}
  command    = [{json.dumps(sys.executable)}, {json.dumps(str(SYNTHETIC))}, {arg}]
  cpu        = 1
  throughput {{ cpu = {{ {table} }} }}
  startup    = {startup:g}s
  replicas   = {replicas}
  checkpoint = batch
}}
"""
    )
    return path


def own_span(folder: Path) -> float:
    starts, ends = [], []
    for f in (folder / "own").glob("work-*.log"):
        for line in f.read_text().splitlines():
            kind, *rest = line.split()
            if kind == "start":
                starts.append(float(rest[1]))
            elif kind == "end":
                ends.append(float(rest[1]))
    return max(ends) - min(starts)


def pct(actual: float, truth: float) -> str:
    return f"{actual:8.3f} vs {truth:8.3f}  ({(actual - truth) / truth * 100:+5.1f}%)"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--startup", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=40.0)
    ap.add_argument("--items", type=int, default=480)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--batch-sizes", default="10,20,40")
    ap.add_argument("--profile-items", type=int, default=160)
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="exo-bench-actuals-") as tmp:
        folder = Path(tmp)
        wf = workflow(folder, a.startup, a.rate, a.items, a.replicas, sizes)
        subprocess.run([*EXOC, "run", str(wf)], check=True, capture_output=True)
        status = json.loads(
            subprocess.run(
                [*EXOC, "status", str(wf), "--format", "json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        (step,) = status["plan_vs_actual"]["steps"]
        act = step["actual"]
        batch = step["batch_size"]
        print(f"run + status ({a.replicas} replicas, {a.items} items, batch {batch}):")
        print(
            f"  duration (s)       {pct(act['duration_s'], own_span(folder))}  vs the command's own timestamps"
        )
        print(f"  items/s/replica    {pct(act['items_per_s'], a.rate)}  vs declared")
        print(f"  startup (s)        {pct(act['startup_s'], a.startup)}  vs declared")
        print(f"  verdict: {step['verdict']}")
        out = subprocess.run(
            [
                *EXOC,
                "profile",
                str(wf),
                "work",
                "--batch-sizes",
                a.batch_sizes,
                "--items",
                str(a.profile_items),
                "-o",
                str(folder / "cal.json"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        cal = json.loads((folder / "cal.json").read_text())["steps"]["work"]
        print(f"profile ({a.profile_items} items per batch size):")
        for b, r in sorted(cal["throughput"]["cpu"].items(), key=lambda kv: int(kv[0])):
            print(f"  batch {b:>4} items/s  {pct(r, a.rate)}  vs declared")
        print(f"  startup (s)        {pct(cal['startup_s'], a.startup)}  vs declared")
        print("  lines: " + " | ".join(out.stdout.splitlines()[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
