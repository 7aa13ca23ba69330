"""Fidelity benchmark: does what runs match what was planned (DESIGN §6 and §8)?

Every repo example is planned, then run on the local backend with each
step's command replaced by ``synthetic_step.py``, a program that behaves
exactly as the step declares: it pays ``startup`` once per process, then
works at the declared items/s in micro-batches of the planned batch size,
committing every batch through the worker helper (or, for a duration step,
works for the declared duration, recording progress at its checkpoint
interval). Time is scaled down: the plan's makespan becomes ``--seconds`` real
seconds (hours -> seconds, same shape: startups, rates and checkpoint
intervals all scale together; the number of micro-batches is unchanged), or
more where a step's shards would otherwise commit more than ``--max-commits``
batches a second together (compressing hours into seconds multiplies the
commit rate; the machine must keep up with it for the run to mean anything).

Two modes per example:

- **no preemptions**: one run. Target: real makespan <= 1.10 x planned
  makespan (``makespan_h``) + process start-up (an interpreter start per step
  on the longest path, measured here).
  Replica-seconds: the processes' lifetimes, against ``replicas`` x the
  expected duration; the interpreter start-up beyond a step's scaled
  ``startup`` (measured per attempt: scaling cannot shrink it) is shown apart.
- **preemptions**: ``--repeats`` runs, each with preemptions injected at the
  catalog's rate for the planned instance type (time-scaled; a Poisson clock
  per instance that runs while the instance's shards run; SIGKILL of all its
  shards from outside, the local stand-in for a spot reclaim). Target: the
  mean real makespan and replica-seconds (less the start-up excess) within
  15% of the plan's expected figures.

The expected figures come from the plan's JSON, never from a copy of the cost
model: expected makespan = the longest path through the step DAG with each
step's ``expected_duration_h`` (the local runner starts a step as soon as its
inputs are published); replica-seconds = sum over steps of ``replicas`` x
``expected_duration_h``; instances (when the plan has ``instances``) group the
replicas that a preemption stops together. Items processed exactly once: the
published outputs hold every item of every step once.

Usage::

    python benchmarks/bench_fidelity.py [--seconds 20] [--repeats 3] [--seed 1]
        [--examples examples/quickstart.exo ...] [--state-root /dev/shm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from exo.backends.api import (
    PlannedWorkflow,
    RunContext,
    micro_batch_size,
    planned_throughput,
    shard_count,
)
from exo.backends.local import LocalBackend, LocalOptions
from exo.compiler.ir import CPU_KEY, Step, step_dag
from exo.compiler.pipeline import plan_for
from exo.compiler.plan import StepPlan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_local import machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SYNTHETIC = HERE / "synthetic_step.py"


def repo_examples() -> list[Path]:
    files = sorted((REPO / "examples").glob("**/*.exo"))
    return [f for f in files if "\nworkflow " in "\n" + f.read_text("utf-8")]


# --- the synthetic workflow --------------------------------------------------------------------


def declared_duration_h(step: Step, sp: StepPlan) -> float:
    """The step's declared duration on its planned tier (instance type, accelerator, cpu)."""
    assert step.duration is not None
    for key in (sp.instance_type, sp.accelerator or CPU_KEY):
        if key in step.duration.per_key:
            return step.duration.per_key[key]
    assert step.duration.default_h is not None, step.name
    return step.duration.default_h


#: Steps with fewer micro-batches per shard than this commit in short bursts: no limit.
MANY_BATCHES = 100


def time_scale(planned: PlannedWorkflow, seconds: float, max_commits: float) -> float:
    """Real seconds per planned hour: the makespan in ``seconds``, or longer where a step's
    shards would together commit more than ``max_commits`` batches a second."""
    assert planned.plan.makespan_h
    scale = seconds / planned.plan.makespan_h
    for step in planned.program.steps:
        sp = planned.step_plan(step.name)
        rate, batch = planned_throughput(step, sp), micro_batch_size(step, sp)
        n = shard_count(step, sp)
        if not rate or not batch or (step.items or 0) < MANY_BATCHES * batch * n:
            continue
        # n shards each commit a batch every batch / rate hours = batch / rate * scale seconds
        scale = max(scale, 3600.0 * rate * n / (batch * max_commits))
    return scale


def synthetic(planned: PlannedWorkflow, scale: float, ledger: Path) -> PlannedWorkflow:
    """The plan, unchanged, with every command replaced by synthetic_step.py.

    ``scale`` is real seconds per planned hour. Outputs go to the state
    directory, secrets and env are dropped (the synthetic command needs none).
    """
    steps = []
    for step in planned.program.steps:
        sp = planned.step_plan(step.name)
        ck = step.checkpoint
        params: dict[str, Any] = {
            "startup_s": step.startup_h * scale,
            "checkpoint": ck.kind,
            "ledger": str(ledger),
        }
        if step.throughput is not None:
            rate = planned_throughput(step, sp)
            assert rate, step.name
            params.update(mode="throughput", rate=rate * 3600.0 / scale)
        else:
            params.update(mode="duration", duration_s=declared_duration_h(step, sp) * scale)
            if ck.kind == "interval" and ck.interval_h:
                params["interval_s"] = ck.interval_h * scale
        command = (
            sys.executable,
            str(SYNTHETIC),
            json.dumps(params).replace("{", "{{").replace("}", "}}"),
        )
        steps.append(
            step.model_copy(update={"command": command, "output": None, "secrets": (), "env": {}})
        )
    program = planned.program.model_copy(update={"steps": tuple(steps)})
    return planned.model_copy(update={"program": program})


# --- what the plan expects -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    planned_makespan_s: float
    expected_makespan_s: float
    expected_replica_s: float
    #: Steps on the longest expected path (each pays one interpreter start).
    path_steps: int


def expected(planned: PlannedWorkflow, scale: float) -> Expected:
    dag = step_dag(planned.program)
    finish: dict[str, tuple[float, int]] = {}
    for name in nx.topological_sort(dag):
        sp = planned.step_plan(name)
        before = max((finish[p] for p in dag.predecessors(name)), default=(0.0, 0))
        finish[name] = (before[0] + sp.expected_duration_h, before[1] + 1)
    longest = max(finish.values())
    replica_h = sum(
        sp.expected_duration_h * shard_count(planned.program.step(sp.name), sp)
        for sp in planned.plan.steps
    )
    assert planned.plan.makespan_h is not None
    return Expected(
        planned_makespan_s=planned.plan.makespan_h * scale,
        expected_makespan_s=longest[0] * scale,
        expected_replica_s=replica_h * scale,
        path_steps=longest[1],
    )


# --- preemptions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Instance:
    step: str
    shards: tuple[int, ...]
    rate_per_s: float
    next_at: float | None = None


@dataclass(slots=True)
class Injector:
    """Poisson preemptions per instance, at the catalog's rate, while its shards run."""

    ledger: Path
    instances: list[Instance]
    rng: random.Random
    kills: list[tuple[str, int, int, float]] = field(default_factory=list)
    preemptions: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def for_plan(
        cls, planned: PlannedWorkflow, scale: float, ledger: Path, rng: random.Random
    ) -> Injector:
        out = []
        for sp in planned.plan.steps:
            inst = planned.catalog.get(sp.instance_type)
            if not sp.spot or inst is None or inst.spot_preemptions_per_hour <= 0:
                continue
            n = shard_count(planned.program.step(sp.name), sp)
            m = int(getattr(sp, "instances", 0) or n)  # cost model v2 packs replicas per instance
            k = math.ceil(n / max(1, m))
            for j in range(0, n, k):
                shards = tuple(range(j, min(n, j + k)))
                out.append(Instance(sp.name, shards, inst.spot_preemptions_per_hour / scale))
        return cls(ledger, out, rng)

    def _alive(self, step: str, shard: int) -> int | None:
        try:
            pid = int((self.ledger / "pids" / f"{step}-{shard}").read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def run(self) -> None:
        while not self.stop.wait(0.01):
            now = time.time()
            for inst in self.instances:
                pids = [(s, p) for s in inst.shards if (p := self._alive(inst.step, s)) is not None]
                if not pids:
                    inst.next_at = None  # the clock stops while nothing of the instance runs
                    continue
                if inst.next_at is None:
                    inst.next_at = now + self.rng.expovariate(inst.rate_per_s)
                if now >= inst.next_at:
                    self.preemptions += 1
                    for s, pid in pids:
                        try:
                            os.kill(pid, signal.SIGKILL)
                            self.kills.append((inst.step, s, pid, time.time()))
                        except OSError:
                            pass
                    inst.next_at = None


# --- one run --------------------------------------------------------------------------------------


@dataclass(slots=True)
class RunResult:
    makespan_s: float
    replica_s: float
    #: Interpreter start-up not covered by the steps' scaled ``startup`` (all attempts).
    startup_excess_s: float
    preemptions: int
    batches: int
    batches_redone: int
    exactly_once: bool
    attempts: int
    #: step -> (first process start, last process end) relative to the run's start.
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(slots=True)
class Ledger:
    replica_s: float = 0.0
    #: Interpreter start-up beyond the step's (scaled) ``startup``, summed over attempts.
    startup_excess_s: float = 0.0
    batches: int = 0
    redone: int = 0
    attempts: int = 0
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)


def read_ledger(
    ledger: Path,
    kills: Sequence[tuple[str, int, int, float]],
    t0: float,
    startups: Mapping[str, float],
) -> Ledger:
    """Replica-seconds, start-up excess, batches started and redone, attempts, step spans."""
    killed_at = {pid: t for _, _, pid, t in kills}
    out = Ledger()
    for path in ledger.glob("*.log"):
        step = path.stem.rsplit("-", 1)[0]
        seen: set[tuple[str, str]] = set()
        begin: dict[int, float] = {}
        first, last = math.inf, 0.0
        for line in path.read_text().splitlines():
            kind, *rest = line.split()
            if kind == "start":
                pid, t = int(rest[0]), float(rest[1])
                begin[pid] = t
                first = min(first, t)
                out.attempts += 1
            elif kind == "ready":
                pid, t = int(rest[0]), float(rest[1])
                out.startup_excess_s += max(0.0, t - begin[pid] - startups[step])
            elif kind == "end":
                pid, t = int(rest[0]), float(rest[1])
                out.replica_s += t - begin.pop(pid)
                last = max(last, t)
            elif kind == "batch":
                out.batches += 1
                key = (rest[0], rest[1])
                out.redone += key in seen
                seen.add(key)
        for pid, t in begin.items():  # attempts that never ended: killed
            out.replica_s += killed_at.get(pid, t) - t
        a, b = out.steps.get(step, (math.inf, 0.0))
        out.steps[step] = (min(a, first - t0), max(b, last - t0))
    return out


def exactly_once(state: Path, planned: PlannedWorkflow) -> bool:
    for step in planned.program.steps:
        ranges = []
        for f in sorted((state / "outputs" / step.name).glob("shard-*/ranges.txt")):
            ranges += [tuple(map(int, line.split())) for line in f.read_text().splitlines()]
        ranges.sort()
        at = 0
        for s, e in ranges:
            if s != at:
                return False
            at = e
        if at != (step.items or 0):
            return False
    return True


def run_once(
    planned: PlannedWorkflow, scale: float, root: Path, rng: random.Random | None
) -> RunResult:
    work = Path(tempfile.mkdtemp(prefix="fidelity-", dir=root))
    try:
        ledger = work / "ledger"
        (ledger / "pids").mkdir(parents=True)
        synth = synthetic(planned, scale, ledger)
        synth = synth.model_copy(update={"base_dir": str(work)})
        flow = work / "flow.exo"
        flow.write_text("# stands for the example; the plan is built by bench_fidelity.py\n")
        jobs = sum(shard_count(s, synth.step_plan(s.name)) for s in synth.program.steps)
        ctx = RunContext(
            workflow_file=str(flow),
            state_dir=str(work / "state"),
            jobs=jobs,
            fresh=True,
            progress="none",
            environ=dict(os.environ),
        )
        options = LocalOptions(backoff_s=0.01, grace_s=1.0)
        injector = Injector.for_plan(planned, scale, ledger, rng) if rng else None
        thread = threading.Thread(target=injector.run) if injector else None
        t = time.time()
        if thread:
            thread.start()
        try:
            report = LocalBackend().run(synth, options, ctx)
        finally:
            if injector and thread:
                injector.stop.set()
                thread.join()
        makespan = time.time() - t
        assert report.state == "done", report
        kills = injector.kills if injector else []
        startups = {s.name: s.startup_h * scale for s in planned.program.steps}
        led = read_ledger(ledger, kills, t, startups)
        return RunResult(
            makespan_s=makespan,
            replica_s=led.replica_s,
            startup_excess_s=led.startup_excess_s,
            preemptions=injector.preemptions if injector else 0,
            batches=led.batches,
            batches_redone=led.redone,
            exactly_once=exactly_once(work / "state", synth),
            attempts=led.attempts,
            steps=led.steps,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def interpreter_start_s() -> float:
    """Median time to start Python and import the worker helper (the per-process floor)."""
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import exo.worker"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- the report -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ExampleResult:
    example: str
    scale_s_per_h: float
    expected: Expected
    startup_allowance_s: float
    plain: RunResult
    preempted: list[RunResult]

    def row_plain(self) -> str:
        e, r = self.expected, self.plain
        limit = 1.10 * e.planned_makespan_s + self.startup_allowance_s
        ok = "yes" if r.makespan_s <= limit and r.exactly_once else "NO"
        return (
            f"| {self.example} | {e.planned_makespan_s:.2f} | {r.makespan_s:.2f} | "
            f"{r.makespan_s / e.planned_makespan_s:.3f} | "
            f"{r.makespan_s / e.expected_makespan_s:.3f} | {e.expected_replica_s:.1f} | "
            f"{r.replica_s:.1f} | {r.startup_excess_s:.1f} | "
            f"{(r.replica_s - r.startup_excess_s) / e.expected_replica_s:.3f} | "
            f"{'yes' if r.exactly_once else 'NO'} | {ok} |"
        )

    def row_preempted(self) -> str:
        e, runs = self.expected, self.preempted
        mk = statistics.mean(r.makespan_s for r in runs)
        rs = statistics.mean(r.replica_s for r in runs)
        net = statistics.mean(r.replica_s - r.startup_excess_s for r in runs)
        once = all(r.exactly_once for r in runs)
        pre = sum(r.preemptions for r in runs)
        redone = sum(r.batches_redone for r in runs)
        ok = (
            abs(mk / e.expected_makespan_s - 1) <= 0.15
            and abs(net / e.expected_replica_s - 1) <= 0.15
            and once
        )
        return (
            f"| {self.example} | {len(runs)} | {pre} | {redone} | {e.expected_makespan_s:.2f} | "
            f"{mk:.2f} | {mk / e.expected_makespan_s:.3f} | {e.expected_replica_s:.1f} | "
            f"{rs:.1f} | {rs / e.expected_replica_s:.3f} | {net / e.expected_replica_s:.3f} | "
            f"{'yes' if once else 'NO'} | {'yes' if ok else 'NO'} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="real seconds per planned makespan")
    ap.add_argument("--repeats", type=int, default=3, help="runs with preemptions per example")
    ap.add_argument(
        "--max-commits",
        type=float,
        default=200.0,
        help="most batch commits a second by one step's shards together",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--examples", type=Path, nargs="*", default=None)
    ap.add_argument(
        "--state-root",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where runs keep their state and checkpoints (default: /dev/shm)",
    )
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)

    examples = args.examples or repo_examples()
    rng = random.Random(args.seed)
    start_s = interpreter_start_s()
    load = os.getloadavg()
    about = machine()  # with the load average at the start
    results: list[ExampleResult] = []
    for path in examples:
        planned, _ = plan_for(path, {})
        assert planned.plan.makespan_h, f"{path}: no plan"
        scale = time_scale(planned, args.seconds, args.max_commits)
        exp = expected(planned, scale)
        name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
        print(
            f"{name}: {exp.planned_makespan_s:.1f} s for {planned.plan.makespan_h:.2f} h",
            file=sys.stderr,
        )
        plain = run_once(planned, scale, args.state_root or Path(tempfile.gettempdir()), None)
        print(f"  no preemptions: {plain.makespan_s:.2f} s", file=sys.stderr)
        for sp in planned.plan.steps:
            a, b = plain.steps.get(sp.name, (0.0, 0.0))
            print(
                f"    {sp.name}: planned start {sp.start_h * scale:.2f} s, E {sp.expected_duration_h * scale:.2f} s; "
                f"ran {a:.2f}..{b:.2f} s ({b - a:.2f} s)",
                file=sys.stderr,
            )
        preempted = []
        for i in range(args.repeats):
            r = run_once(planned, scale, args.state_root or Path(tempfile.gettempdir()), rng)
            print(
                f"  preempted run {i + 1}: {r.makespan_s:.2f} s, {r.preemptions} preemption(s)",
                file=sys.stderr,
            )
            preempted.append(r)
        results.append(ExampleResult(name, scale, exp, start_s * exp.path_steps, plain, preempted))
    load_end = os.getloadavg()

    print(f"{about}, {load_end[0]:.1f} at the end")
    print(
        f"makespan scaled to {args.seconds:g} s per example (more where a step's shards would "
        f"commit over {args.max_commits:g} batches/s); interpreter start-up "
        f"{start_s * 1000:.0f} ms per process; seed {args.seed}\n"
    )
    print("No preemptions (target: real <= 1.10 x planned + start-up, every item once):\n")
    print(
        "| example | planned (s) | real (s) | real / planned | real / expected | "
        "replica-s planned (E) | replica-s used | start-up excess | "
        "(used - excess) / planned | items once | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        print(r.row_plain())
    print(
        f"\nPreemptions at the catalog's rates, mean of {args.repeats} runs "
        "(target: within 15% of the plan's expected figures):\n"
    )
    print(
        "| example | runs | preemptions | batches redone | expected (s) | mean real (s) | ratio | "
        "replica-s expected | mean used | ratio | ratio less start-up excess | items once | "
        "target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        print(r.row_preempted())
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seconds": args.seconds,
                    "load": [load, load_end],
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
