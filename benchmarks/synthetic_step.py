"""A command that behaves exactly as its step declares, for benchmarks/bench_fidelity.py.

It pays the step's ``startup`` (counted from the process start, so the
interpreter's own start-up is part of it), then works at the declared rate:

- a throughput step: the shard's pending micro-batches (``EXO_BATCH_SIZE``
  items each) at ``rate`` items/s, each committed through the worker helper as
  it finishes (``checkpoint = none`` starts over: what an earlier attempt
  committed is discarded);
- a duration step: ``duration_s`` seconds of work, recorded in its checkpoint
  folder every ``interval_s`` when it declares an interval checkpoint (and
  resumed from there), then one commit.

Every batch commits its item range, so the published outputs show whether each
item was processed exactly once. A ledger (one file per shard) records each
attempt's start and end and each batch it starts, and ``pids/<step>-<shard>``
holds the running attempt's pid for the preemption injector.

Usage: python synthetic_step.py PARAMS_JSON (keys: mode, startup_s, rate,
duration_s, interval_s, checkpoint, ledger).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from exo.worker import process_start_time, shard


def sleep_until(t: float) -> None:
    while (left := t - time.time()) > 0:
        time.sleep(left)


def duration_work(folder: Path, duration_s: float, interval_s: float | None, t0: float) -> None:
    """``duration_s`` of work from ``t0``; with an interval, resumable from ``folder``."""
    if not interval_s:
        sleep_until(t0 + duration_s)
        return
    units = max(1, math.ceil(duration_s / interval_s))
    path = folder / "progress"
    done = int(path.read_text()) if path.exists() else 0
    at = t0
    for u in range(done, units):
        at += min(interval_s, duration_s - u * interval_s)
        sleep_until(at)
        tmp = folder / "progress.tmp"
        tmp.write_text(str(u + 1))
        tmp.replace(path)


def main() -> int:
    p = json.loads(sys.argv[1])
    began = process_start_time() or time.time()
    step, index = os.environ["EXO_STEP"], int(os.environ["EXO_BATCH_INDEX"])
    ledger_dir = Path(p["ledger"])
    pid_file = ledger_dir / "pids" / f"{step}-{index}"
    tmp = pid_file.with_name(f".{pid_file.name}.{os.getpid()}")
    tmp.write_text(str(os.getpid()))
    tmp.replace(pid_file)
    ledger = (ledger_dir / f"{step}-{index}.log").open("a", buffering=1)
    # `ready` - `start`: the interpreter's own start-up, a real cost time scaling cannot shrink.
    ledger.write(f"start {os.getpid()} {began:.6f}\nready {os.getpid()} {time.time():.6f}\n")
    checkpoint = Path(os.environ["EXO_CHECKPOINT"])
    if p["checkpoint"] == "none":  # declared: a restart starts over
        shutil.rmtree(checkpoint / "batches", ignore_errors=True)
        (checkpoint / "progress").unlink(missing_ok=True)
    s = shard()
    sleep_until(began + p["startup_s"])
    t0 = time.time()
    if p["mode"] == "duration":
        duration_work(checkpoint, p["duration_s"], p.get("interval_s"), t0)
    done = 0
    for b in s:
        ledger.write(f"batch {b.start} {b.end}\n")
        if p["mode"] == "throughput":
            sleep_until(t0 + (done + b.size) / p["rate"])
        b.commit({"ranges.txt": f"{b.start} {b.end}\n"})
        done += b.size
    s.assemble()
    ledger.write(f"end {os.getpid()} {time.time():.6f}\n")
    pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
