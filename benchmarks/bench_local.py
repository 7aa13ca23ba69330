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

What a new folder cannot control is the rest of the disk: other processes
creating and deleting files on the same ext4 file system make every folder
and log file the runner creates cost more (up to ~350 µs of CPU each, against
~10 µs on a quiet one). ``--dir`` puts the work folders elsewhere: on a
``tmpfs`` (``--dir /dev/shm``) the disk's history is out of the figure, which
is then the runner's and the machine's load only. The report names the file
system it ran on and the load average before every repeat.

``--runner NAME=PYTHON`` times another build's runner (the interpreter of its
virtual environment, say an older commit's) in the same rounds, right after this
one's: before/after side by side, under the same load, on the same plan.

Usage::

    python benchmarks/bench_local.py [--shards 1000] [--jobs N] [--repeat 5]
                                     [--no-snakemake] [--reuse-dir] [--dir DIR]
                                     [--runner NAME=PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
# ``exoc run`` has loaded them by then, so they are imported here first and the clock
# measures the per-shard work. With the plan kept by the warm-up run, ``exoc run`` loads
# neither the optimizer nor numpy: nor does this (an older build's, what its run loaded).
RUNNER = """
import json, os, sys, time
from pathlib import Path
from exo.backends.api import PlannedWorkflow, RunContext
from exo.backends.local import LocalBackend, LocalOptions
import exo.backends.local.runner, exo.backends.local.spot, exo.compiler.costmodel
try:
    import exo.compiler.simsteps
except ImportError:  # an older build (--runner): its run reads the plan through simulate
    import exo.compiler.simulate, scipy.special
planned_json, workflow, state, jobs = sys.argv[1:5]
planned = PlannedWorkflow.model_validate_json(Path(planned_json).read_text())
ctx = RunContext(workflow_file=workflow, state_dir=state, jobs=int(jobs), fresh=True,
                 progress="none", environ=dict(os.environ))
t, c, k = time.perf_counter(), time.process_time(), os.times()
report = LocalBackend().run(planned, LocalOptions(), ctx)
elapsed, cpu, k2 = time.perf_counter() - t, time.process_time() - c, os.times()
assert report.state == "done", report
shards = k2.children_user + k2.children_system - k.children_user - k.children_system
print(json.dumps({"seconds": elapsed, "cpu": cpu, "children": shards}))
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


def wall(
    cmd: Sequence[str],
    cwd: Path,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds (the command and every process it waited for), stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        list(cmd), cwd=cwd, input=stdin, env=env, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, proc.stdout


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


def file_system(path: Path) -> str:
    """The type of the file system ``path`` is on (``/proc/mounts``: the longest mount point)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    where = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) > 2:
            point = parts[1]
            inside = where == point or where.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, parts[2]
    return kind


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
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the work folders go (default: the system's temporary folder; "
        "/dev/shm for a tmpfs)",
    )
    ap.add_argument(
        "--runner",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="another build's runner (its virtual environment's python) in the same rounds",
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


@dataclass
class Timings:
    """Per tool, run by run: wall seconds, CPU seconds (the tool's processes and their
    children's); per runner, its own process's CPU; the load average before each repeat."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    own_cpu: dict[str, list[float]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)

    def add(self, name: str, seconds: float, cpu: float) -> None:
        self.wall.setdefault(name, []).append(seconds)
        self.cpu.setdefault(name, []).append(cpu)


def runners(args: argparse.Namespace) -> dict[str, str]:
    """The runners timed, by the table's name: this build's, then ``--runner``'s."""
    out = {"exo runner": sys.executable}
    for spec in args.runner:
        name, sep, python = spec.partition("=")
        if not sep or not name or not python:
            raise SystemExit(f"--runner wants NAME=PYTHON, not {spec!r}")
        out[f"exo runner ({name})"] = python
    return out


def tools(
    args: argparse.Namespace, work: Path, timings: Timings, snakemake: Path | None
) -> dict[str, Callable[[], tuple[float, float]]]:
    """Each tool as a function that runs it once: (wall seconds, CPU seconds)."""
    flow, planned_json = planned_workflow(work, args.shards)
    numbers = "\n".join(str(i) for i in range(args.shards)).encode() + b"\n"
    jobs = str(args.jobs)
    fresh_dir = run_folders(work, flow, reuse=args.reuse_dir)
    exoc = Path(sys.executable).with_name("exoc")

    def xargs() -> tuple[float, float]:
        return wall(["xargs", "-P", jobs, "-n", "1", "true"], work, numbers)[:2]

    def runner(name: str, python: str) -> Callable[[], tuple[float, float]]:
        def run() -> tuple[float, float]:
            here = fresh_dir("runner")
            state = here / ".exo" / "bench"
            cmd = [python, "-c", RUNNER, str(planned_json), str(here / flow.name)]
            out = json.loads(wall([*cmd, str(state), jobs], here)[2])
            timings.own_cpu.setdefault(name, []).append(float(out["cpu"]))
            return float(out["seconds"]), float(out["cpu"]) + float(out["children"])

        return run

    def exoc_run() -> tuple[float, float]:
        here = fresh_dir("cli")
        return wall([str(exoc), "run", flow.name, "--jobs", jobs, "--fresh"], here)[:2]

    def snake() -> tuple[float, float]:
        assert snakemake is not None
        here = fresh_dir("snakemake")
        if args.reuse_dir:
            shutil.rmtree(here / "out", ignore_errors=True)
            shutil.rmtree(here / ".snakemake", ignore_errors=True)
        cmd = [str(snakemake), "--cores", jobs, "--quiet", "all", "-s", "Snakefile"]
        return wall(cmd, here)[:2]

    out: dict[str, Callable[[], tuple[float, float]]] = {"xargs -P": xargs}
    out.update({name: runner(name, python) for name, python in runners(args).items()})
    out["exoc run (CLI)"] = exoc_run
    if snakemake is not None:
        out["snakemake"] = snake
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    host = machine()  # the load before the runs
    snakemake = None if args.no_snakemake else ensure_snakemake(args.snakemake_venv)
    work = Path(tempfile.mkdtemp(prefix="exo-bench-local-", dir=args.dir))
    where = file_system(work)
    timings = Timings()
    try:
        timed = tools(args, work, timings, snakemake)
        for fn in timed.values():  # warm-up: page cache, .pyc files, Snakemake's cache
            fn()
        timings.own_cpu.clear()
        for i in range(args.repeat):
            timings.loads.append(os.getloadavg()[0])
            for name, fn in timed.items():
                timings.add(name, *fn())
                print(f"  run {i + 1}: {name:<24} {timings.wall[name][-1]:7.3f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, f"{host}; work folders on {where}", timings)
    if args.json:
        raw = {"jobs": args.jobs, "file_system": where, **asdict(timings)}
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


def report(args: argparse.Namespace, host: str, timings: Timings) -> None:
    """The table and the ratios, on stdout."""
    times = timings.wall
    med = {name: statistics.median(v) for name, v in times.items()}
    base = med["xargs -P"]
    print(f"{args.shards:,} no-op shards, --jobs {args.jobs}; {host}")
    where = (
        "each run in the same folder, --fresh clearing the previous run"
        if args.reuse_dir
        else "each run in a new empty folder, nothing deleted until the end"
    )
    print(f"median of {args.repeat} interleaved runs after one warm-up each; {where}")
    print("load average before each repeat: " + ", ".join(f"{x:.1f}" for x in timings.loads))
    print("\n| tool | wall median (s) | min-max (s) | per shard (ms) | vs xargs | CPU median (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in times.items():
        print(
            f"| {name} | {med[name]:.3f} | {min(values):.3f}-{max(values):.3f} | "
            f"{med[name] / args.shards * 1000:.2f} | {med[name] / base:.2f}x | "
            f"{statistics.median(timings.cpu[name]):.3f} |"
        )
    print(
        "\n(CPU: user + system of the tool's processes and of the shards they ran; the "
        "runners' over the timed run only, exoc run's over the whole command.)"
    )
    for name, own in timings.own_cpu.items():
        paired = [r / x for r, x in zip(times[name], times["xargs -P"], strict=True)]
        print(
            f"{name} / xargs, run by run: median {statistics.median(paired):.2f}x "
            f"({', '.join(f'{r:.2f}' for r in paired)}); its own process's CPU: median "
            f"{statistics.median(own):.3f} s, {statistics.median(own) / args.shards * 1e3:.2f} ms "
            f"per shard ({min(own):.3f}-{max(own):.3f} s)"
        )
    if "snakemake" in med:
        print(
            f"exo runner is {med['snakemake'] / med['exo runner']:.1f}x faster than Snakemake; "
            f"exoc run (CLI) is {med['snakemake'] / med['exoc run (CLI)']:.1f}x faster"
        )


if __name__ == "__main__":
    sys.exit(main())
