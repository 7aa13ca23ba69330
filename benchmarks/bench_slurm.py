"""Slurm submit benchmark: one sbatch per step, however many shards a step has.

Builds chains of 1, 10 and 100 steps with ``--shards`` shards each, and single
steps with 10 to 100,000 shards, emits them with the Slurm backend and times
the generated ``submit.sh`` against the private test cluster
(``tests/slurm/cluster.sh up``). Every submitted job is cancelled right after it
is timed. For comparison it also times plain ``sbatch`` of single jobs, which is
what one job per shard would cost, and extrapolates that to the same shard
counts (labelled as such).

Every array task counts towards Slurm's MaxJobCount until it has ended and aged
out (MinJobAge), so the shard counts stay within the test cluster's limit.

Usage (as root, with the cluster up)::

    tests/slurm/cluster.sh up
    python benchmarks/bench_slurm.py [--steps 1 10 100] [--shards 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exo.backends.api import PlannedWorkflow
from exo.backends.slurm import SlurmBackend, SlurmOptions
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import InputRef, Program, Step, Throughput, Workflow
from exo.compiler.plan import Plan, StepPlan

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"


def chain(steps: int, shards: int) -> PlannedWorkflow:
    """``steps`` steps, each reading the previous one, ``shards`` shards each."""
    program_steps = []
    plans = []
    for i in range(steps):
        name = f"s{i:03d}"
        program_steps.append(
            Step(
                name=name,
                input=InputRef(kind="step", name=f"s{i - 1:03d}") if i else None,
                items=shards,
                command=("sleep", "600"),
                throughput=Throughput(flat={"cpu": 1.0}),
            )
        )
        plans.append(
            StepPlan(
                name=name,
                instance_type="cpu1",
                accelerator=None,
                accelerator_count=0,
                spot=False,
                batch_size=1,
                replicas=4,
                start_h=float(i),
                expected_duration_h=1.0,
                p_duration_h=1.0,
                expected_cost_usd=0.1,
            )
        )
    catalog = Catalog(
        name="bench",
        default_spot_preemptions_per_hour=0.1,
        instances=(
            InstanceType(
                instance_type="cpu1",
                accelerator=None,
                accelerator_count=0,
                vcpus=1,
                memory_gib=1,
                ondemand_usd_per_hour=0.1,
                spot_usd_per_hour=None,
                spot_preemptions_per_hour=0.1,
            ),
        ),
    )
    plan = Plan(
        workflow="bench",
        objective="cost",
        status="optimal",
        deadline_h=None,
        budget_usd=None,
        confidence=0.95,
        expected_cost_usd=0.1 * steps,
        makespan_h=float(steps),
        lower_bound_usd=0.1 * steps,
        steps=plans,
    )
    program = Program(workflow=Workflow(name="bench"), steps=tuple(program_steps))
    return PlannedWorkflow(program=program, plan=plan, catalog=catalog, base_dir="/")


def slurm_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "env"], capture_output=True, text=True, check=True
    ).stdout
    conf = out.strip().removeprefix("export SLURM_CONF=").strip("'")
    env = dict(os.environ)
    env.setdefault("SLURM_CONF", conf)
    return env


def cancel_all(env: dict[str, str], ids: list[str]) -> None:
    for i in range(0, len(ids), 200):
        subprocess.run(["scancel", *ids[i : i + 200]], env=env, check=False)


def time_submit(
    planned: PlannedWorkflow, env: dict[str, str], work: Path
) -> tuple[float, float, int]:
    """(emit seconds, submit.sh seconds, sbatch calls) for one submission."""
    t0 = time.perf_counter()
    artifacts = SlurmBackend().emit(planned, SlurmOptions())
    t1 = time.perf_counter()
    out = Path(tempfile.mkdtemp(dir=work))
    for a in artifacts:
        p = out / a.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(a.content)
    run = out / "run"
    t2 = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(out / "submit.sh")],
        env={**env, "EXO_RUN_ID": "bench", "EXO_RUN_DIR": str(run), "EXO_WORKFLOW_DIR": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    t3 = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"submit.sh failed ({len(planned.program.steps)} steps):\n{proc.stderr}")
    ids = [ln.split("\t")[1] for ln in (run / "jobs.tsv").read_text().splitlines()]
    cancel_all(env, ids)
    return t1 - t0, t3 - t2, len(ids)


def time_plain_sbatch(env: dict[str, str], work: Path, count: int) -> float:
    """Seconds per ``sbatch`` of a single job (the cost of one job per shard)."""
    ids: list[str] = []
    t0 = time.perf_counter()
    for _ in range(count):
        out = subprocess.run(
            ["sbatch", "--parsable", "--output=/dev/null", "--hold", "--wrap", "sleep 600"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=work,
        ).stdout
        ids.append(out.strip().split(";")[0])
    elapsed = time.perf_counter() - t0
    cancel_all(env, ids)
    return elapsed / count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--shards", type=int, default=1_000, help="shards per step of the chains")
    ap.add_argument(
        "--wide",
        type=int,
        nargs="+",
        default=[10, 1_000, 10_000, 100_000],
        help="shard counts of the single-step workflows",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plain", type=int, default=100, help="single-job sbatch calls to time")
    args = ap.parse_args(argv)
    env = slurm_env()
    if subprocess.run(["bash", str(CLUSTER_SH), "status"], capture_output=True).returncode:
        print("the test cluster is not running: tests/slurm/cluster.sh up", file=sys.stderr)
        return 1
    version = subprocess.run(["sbatch", "--version"], env=env, capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        time_submit(chain(1, args.shards), env, work)  # warm-up
        rows = []
        for steps in args.steps:
            planned = chain(steps, args.shards)
            runs = [time_submit(planned, env, work) for _ in range(args.repeat)]
            rows.append((steps, args.shards, runs))
        for shards in args.wide:
            planned = chain(1, shards)
            runs = [time_submit(planned, env, work) for _ in range(args.repeat)]
            rows.append((1, shards, runs))
        per_sbatch = time_plain_sbatch(env, work, args.plain)
    print(
        f"{version.stdout.strip()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; median of {args.repeat}\n"
    )
    print(
        "| steps | shards per step | shards | sbatch calls | emit (s) | submit.sh (s) "
        "| per step (ms) | one sbatch per shard, extrapolated (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for steps, per_step, runs in rows:
        emit_s = statistics.median(r[0] for r in runs)
        submit_s = statistics.median(r[1] for r in runs)
        calls = runs[0][2]
        shards = steps * per_step
        print(
            f"| {steps} | {per_step:,} | {shards:,} | {calls} | {emit_s:.3f} | {submit_s:.2f} | "
            f"{1000 * submit_s / steps:.0f} | {per_sbatch * shards:,.0f} |"
        )
    print(
        f"\nOne plain `sbatch` of a single job took {1000 * per_sbatch:.1f} ms "
        f"(mean of {args.plain}); the last column is that times the shard count."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
