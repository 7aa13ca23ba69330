"""Local runner benchmark: 1,000 no-op shards vs ``xargs -P`` and Snakemake (DESIGN §8).

In one run, side by side, repeated and interleaved (so that a busy machine
slows every tool alike), it times:

- **xargs**: ``xargs -P JOBS -n 1 true`` over 1,000 inputs, i.e. 1,000 runs of
  ``true`` with at most JOBS at a time (the floor: process start-up only);
- **exo runner**: the local backend executing a planned 1,000-shard step whose
  command is ``["true"]``, through its Python API in a fresh interpreter, timed
  around ``LocalBackend.run`` (the per-shard work: a private output folder, a
  log file, process start, exit status, atomic publish, SQLite state, the run
  ledger, the spot fallback's check), with the modules ``exoc run`` has loaded
  by then (the runner, the cost model) imported before the clock starts;
- **exoc run**: the same from the command line, as a user types it, in a fresh
  process (interpreter start-up, compiling and optimizing the workflow
  included);
- **snakemake**: a Snakefile with 1,000 jobs running ``true`` and touching
  their (required) output file, ``snakemake --cores JOBS``.

Snakemake is not a project dependency: the script makes its own virtualenv
(by default in the user cache folder) and installs a pinned version there.

Every timed run of exo (and of Snakemake) starts in a folder of its own, made
empty before its clock starts, and no run's files are deleted until every run
is timed: on some file systems (ext4 here) creating a folder seconds after
thousands were deleted scans the recently deleted inodes, so a run that
follows a deletion measures the file system's recent history as much as the
tool. ``--fresh`` then has no earlier run to clear. ``--reuse-dir`` keeps the
older way: every run in the same folder, exo's ``--fresh`` clearing the run
before it (its trash on the clock), Snakemake's outputs deleted before its clock.

Usage::

    python benchmarks/bench_local.py [--shards 1000] [--jobs N] [--repeat 5]
                                     [--no-snakemake] [--reuse-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SNAKEMAKE_VERSION = "9.27.1"

WORKFLOW = """\
workflow noop {{
  deadline = 24h
  budget   = $1000000
}}

step noop {{
  command  = ["true"]
  items    = {shards}
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = {shards}
}}
"""

SNAKEFILE = """\
rule all:
    input: expand("out/{{i}}.done", i=range({shards}))

rule noop:
    output: "out/{{i}}.done"
    shell: "true && touch {{output}}"
"""

# Runs in a fresh interpreter: times LocalBackend.run only, imports excluded. The backend
# loads its runner and the cost model (for the spot fallback's due times) inside ``run``;
# in ``exoc run`` the planner has loaded them by then, so they are imported here first
# and the clock measures the per-shard work. scipy.special too: the cost model loads it
# on the first Poisson tail, which planning this spot step has computed in ``exoc run``.
RUNNER = """
import json, os, sys, time
from pathlib import Path
from exo.backends.api import PlannedWorkflow, RunContext
from exo.backends.local import LocalBackend, LocalOptions
import exo.backends.local.runner, exo.backends.local.spot, exo.compiler.costmodel, exo.compiler.simulate
import scipy.special
planned_json, workflow, state, jobs = sys.argv[1:5]
planned = PlannedWorkflow.model_validate_json(Path(planned_json).read_text())
ctx = RunContext(workflow_file=workflow, state_dir=state, jobs=int(jobs), fresh=True,
                 progress="none", environ=dict(os.environ))
t, c = time.perf_counter(), time.process_time()
report = LocalBackend().run(planned, LocalOptions(), ctx)
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
assert report.state == "done", report
print(json.dumps({"seconds": elapsed, "cpu": cpu}))
"""


def default_venv() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "exo-bench" / f"snakemake-{SNAKEMAKE_VERSION}"


def ensure_snakemake(venv: Path) -> Path:
    """Snakemake in its own virtualenv, created and installed on first use."""
    exe = venv / "bin" / "snakemake"
    if not exe.exists():
        print(f"installing snakemake {SNAKEMAKE_VERSION} into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"snakemake=={SNAKEMAKE_VERSION}"], check=True)
    return exe


def wall(cmd: Sequence[str], cwd: Path, stdin: bytes | None = None) -> tuple[float, bytes]:
    t = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, input=stdin, capture_output=True, check=False)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
    return elapsed, proc.stdout


def run_folders(work: Path, flow: Path, *, reuse: bool) -> Callable[[str], Path]:
    """A function giving each timed run of a tool its folder (the workflow files copied in).

    A new empty folder per run (nothing deleted until the end: see the module's
    docstring), or with ``reuse`` the work folder itself, every time.
    """
    count = 0

    def fresh_dir(tool: str) -> Path:
        nonlocal count
        if reuse:
            return work
        count += 1
        here = work / "runs" / f"{count:03d}-{tool}"
        here.mkdir(parents=True)
        for name in (flow.name, "Snakefile"):
            shutil.copyfile(work / name, here / name)
        return here

    return fresh_dir


def machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load:.1f} at start"
    )


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-snakemake", action="store_true")
    ap.add_argument(
        "--reuse-dir",
        action="store_true",
        help="run every repeat in the same folder (--fresh clears the previous run on the clock)",
    )
    ap.add_argument("--snakemake-venv", type=Path, default=default_venv())
    ap.add_argument("--json", type=Path, help="also write the raw timings here")
    return ap.parse_args(argv)


def planned_workflow(work: Path, shards: int) -> tuple[Path, Path]:
    """The no-op workflow and its Snakefile written in ``work``; the workflow and its plan's JSON."""
    flow = work / "noop.exo"
    flow.write_text(WORKFLOW.format(shards=shards))
    (work / "Snakefile").write_text(SNAKEFILE.format(shards=shards))
    from exo.compiler.pipeline import plan_for

    planned, _ = plan_for(flow, {})
    assert planned.plan.steps[0].replicas == shards
    planned_json = work / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    return flow, planned_json


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    exoc = Path(sys.executable).with_name("exoc")
    host = machine()  # the load before the runs
    snakemake = None if args.no_snakemake else ensure_snakemake(args.snakemake_venv)
    work = Path(tempfile.mkdtemp(prefix="exo-bench-local-"))
    try:
        flow, planned_json = planned_workflow(work, args.shards)
        numbers = "\n".join(str(i) for i in range(args.shards)).encode() + b"\n"
        jobs = str(args.jobs)

        def xargs() -> float:
            return wall(["xargs", "-P", jobs, "-n", "1", "true"], work, numbers)[0]

        runner_cpu: list[float] = []
        fresh_dir = run_folders(work, flow, reuse=args.reuse_dir)

        def runner() -> float:
            here = fresh_dir("runner")
            state = here / ".exo" / "bench"
            cmd = [sys.executable, "-c", RUNNER, str(planned_json), str(here / flow.name)]
            out = json.loads(wall([*cmd, str(state), jobs], here)[1])
            runner_cpu.append(float(out["cpu"]))
            return float(out["seconds"])

        def exoc_run() -> float:
            here = fresh_dir("cli")
            return wall([str(exoc), "run", flow.name, "--jobs", jobs, "--fresh"], here)[0]

        def snake() -> float:
            assert snakemake is not None
            here = fresh_dir("snakemake")
            if args.reuse_dir:
                shutil.rmtree(here / "out", ignore_errors=True)
                shutil.rmtree(here / ".snakemake", ignore_errors=True)
            cmd = [str(snakemake), "--cores", jobs, "--quiet", "all", "-s", "Snakefile"]
            return wall(cmd, here)[0]

        tools: dict[str, Callable[[], float]] = {
            "xargs -P": xargs,
            "exo runner": runner,
            "exoc run (CLI)": exoc_run,
        }
        if snakemake is not None:
            tools["snakemake"] = snake
        for fn in tools.values():  # warm-up: page cache, .pyc files, Snakemake's cache
            fn()
        times: dict[str, list[float]] = {name: [] for name in tools}
        for i in range(args.repeat):
            for name, fn in tools.items():
                times[name].append(fn())
                print(f"  run {i + 1}: {name:<16} {times[name][-1]:7.3f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, host, times, runner_cpu)
    if args.json:
        args.json.write_text(json.dumps({"jobs": args.jobs, "times": times}, indent=2))
    return 0


def report(
    args: argparse.Namespace, host: str, times: dict[str, list[float]], runner_cpu: list[float]
) -> None:
    """The table and the ratios, on stdout."""
    med = {name: statistics.median(v) for name, v in times.items()}
    base = med["xargs -P"]
    print(f"{args.shards:,} no-op shards, --jobs {args.jobs}; {host}")
    where = (
        "each run in the same folder, --fresh clearing the previous run"
        if args.reuse_dir
        else "each run in a new empty folder, nothing deleted until the end"
    )
    print(f"median of {args.repeat} interleaved runs after one warm-up each; {where}\n")
    print("| tool | wall median (s) | min-max (s) | per shard (ms) | vs xargs |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        print(
            f"| {name} | {med[name]:.3f} | {min(values):.3f}-{max(values):.3f} | "
            f"{med[name] / args.shards * 1000:.2f} | {med[name] / base:.2f}x |"
        )
    paired = [r / x for r, x in zip(times["exo runner"], times["xargs -P"], strict=True)]
    print(
        f"\nexo runner / xargs, run by run: median {statistics.median(paired):.2f}x "
        f"(min {min(paired):.2f}x, max {max(paired):.2f}x)"
    )
    print(
        f"the runner's own CPU time (its process, not the shards'): median "
        f"{statistics.median(runner_cpu):.3f} s, {statistics.median(runner_cpu) / args.shards * 1e3:.2f} "
        f"ms per shard (min {min(runner_cpu):.3f} s, max {max(runner_cpu):.3f} s; a busy "
        "machine moves it less than the wall times)"
    )
    if "snakemake" in med:
        print(
            f"exo runner is {med['snakemake'] / med['exo runner']:.1f}x faster than Snakemake; "
            f"exoc run (CLI) is {med['snakemake'] / med['exoc run (CLI)']:.1f}x faster"
        )


if __name__ == "__main__":
    sys.exit(main())
