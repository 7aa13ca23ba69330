"""GPU steps on one machine: does the run keep the plan when replicas get their own GPUs?

The plan gives every replica of a GPU step its own GPU. The local backend runs
every replica as a process on this machine; a CUDA program told nothing starts
on the first GPU, so unless each is told its own (``CUDA_VISIBLE_DEVICES``, see
docs/backends/local.md § GPUs), the replicas share one GPU and the step takes
about as many times its plan as it has replicas.

No GPU is needed to measure it. The step's command emulates a GPU the way one
behaves under several processes: work runs in short slices, and a slice holds
its device (an exclusive ``flock`` on a file named after the first device in
``CUDA_VISIBLE_DEVICES``, ``0`` when unset, as CUDA picks) while it runs, so
processes on one device take turns and processes on different devices run side
by side. Each replica works through its items at the declared rate.

For each replica count, ``exoc run`` (the real command, local backend, a fresh
state folder each time) with ``--local-gpus`` naming as many devices as the
plan uses at once, then half as many (the run says beforehand that it will
take longer), then ``none`` (shards told nothing, as before the backend set the
variable); the step's real duration (its ledger, through ``exoc status
--format json``) against the plan's.

Usage::

    python benchmarks/bench_gpu_sharing.py [--replicas 2 4 8] [--seconds 4] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: The emulated GPU program: ``SLICE_S`` slices holding the device, at ``rate`` items/s.
GPU_PROGRAM = """\
import fcntl, os, sys, time
rate, locks = float(sys.argv[1]), sys.argv[2]
device = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]
items = int(os.environ["EXO_BATCH_END"]) - int(os.environ["EXO_BATCH_START"])
work, slice_s = items / rate, 0.05
with open(os.path.join(locks, f"gpu-{device}.lock"), "w") as lock:
    while work > 0:
        fcntl.flock(lock, fcntl.LOCK_EX)
        time.sleep(min(slice_s, work))
        fcntl.flock(lock, fcntl.LOCK_UN)
        work -= slice_s
with open(os.path.join(os.environ["EXO_OUTPUT"], "done"), "w") as f:
    f.write(device)
"""

WORKFLOW = """\
workflow gpu-sharing {{
  deadline = 1h
  budget   = $1000
}}

step embed {{
  command      = [{python}, "gpu.py", "{rate}", "{locks}"]
  items        = {items}
  accelerators = [A100]
  throughput   {{ A100 = {rate} }}
  replicas     = {replicas}
  spot         = never
}}
"""


def exoc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "exo.compiler", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def measure(work: Path, replicas: int, seconds: float, gpus: str) -> dict[str, object]:
    """One ``exoc run`` of the workflow: the step's planned and real duration."""
    folder = work / f"r{replicas}-{gpus.replace(',', '_')[:20]}"
    locks = folder / "locks"
    locks.mkdir(parents=True)
    (folder / "gpu.py").write_text(GPU_PROGRAM)
    rate = 100.0
    flow = folder / "flow.exo"
    flow.write_text(
        WORKFLOW.format(
            python=json.dumps(sys.executable),
            rate=f"{rate:g}",
            locks=locks,
            items=int(rate * seconds) * replicas,
            replicas=replicas,
        )
    )
    state = ["--state-dir", str(folder / "state")]
    ran = exoc("run", str(flow), *state, "--fresh", "--local-gpus", gpus, cwd=folder)
    if ran.returncode != 0:
        raise SystemExit(f"exoc run failed ({ran.returncode}):\n{ran.stderr}")
    status = json.loads(exoc("status", str(flow), *state, "--format", "json", cwd=folder).stdout)
    [step] = status["plan_vs_actual"]["steps"]
    planned, real = step["planned"]["duration_s"], step["actual"]["duration_s"]
    return {
        "replicas": replicas,
        "gpus": gpus,
        "planned_s": planned,
        "real_s": real,
        "ratio": real / planned,
        "warned": "GPUs at once" in ran.stderr,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--seconds", type=float, default=4.0, help="each replica's work")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = ap.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="exo-gpu-sharing-"))
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; work in {work}")
    print("| replicas | --local-gpus | planned (s) | real (s) | real / planned | said beforehand |")
    print("|---:|---|---:|---:|---:|---|")
    for n in args.replicas:
        half = ",".join(map(str, range(max(1, n // 2))))
        for gpus in (",".join(map(str, range(n))), half, "none"):
            if gpus == half and n < 2:
                continue
            r = measure(work, n, args.seconds, gpus)
            said = "yes" if r["warned"] else "no"
            print(
                f"| {n} | {gpus} | {r['planned_s']:.1f} | {r['real_s']:.1f} "
                f"| {r['ratio']:.2f} | {said} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
