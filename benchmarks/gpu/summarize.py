"""The arithmetic of the GPU plan-vs-run benchmark (device.sh), in three commands.

``size CALIBRATION --seconds S``
    the item count for a run of about S seconds of embedding: the best
    items/s that ``exoc profile`` measured (any batch size) x S, rounded down
    to whole batches of 1024 (at least 4 of them).

``contrast PLAN --processes K --items N -o OUT.json``
    the same command, one process per micro-batch (the model built again for
    each): K micro-batches of the planned batch size, each started as a shard
    of its own through the worker helper's variables (docs/resumable-commands.md),
    timed from launch to exit; the mean, times the run's micro-batches, is what
    the whole run would take that way.

``report PLAN STATUS [--calibration CAL.json] [--contrast C.json] [--run-wall-s S] [--gpu NAME]``
    one line per step: planned and real duration, real/planned, the planned
    cost and the cost of the real replica-time at the plan's catalog price,
    items/s and startup; then the workflow's makespan and the contrast.
    The planned items/s and startup are the calibration's (what the plan was
    made with): ``exoc status`` takes no ``--calibration``, so its ``planned``
    items/s and startup, and the verdict drawn from them, are the ``.exo``'s
    declared figures; its durations and costs are the recorded plan's.

PLAN is ``exoc plan --format json`` (DESIGN §4), STATUS ``exoc status --format
json`` with its ``plan_vs_actual`` (docs/cli.md § Planned vs actual). Only the
standard library: it runs where exoc was installed into a scratch folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: embed.exo's command, run directly by the contrast (its working directory is HERE).
EMBED_COMMAND = ("python3", "embed.py", "--seq-len")

Json = dict[str, Any]


def load(path: Path) -> Json:
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: not a JSON object")
    return data


# --- size ----------------------------------------------------------------------------------------


def best_rate(calibration: Mapping[str, Any], step: str = "embed") -> float:
    """The highest items/s measured for the step, over hardware keys and batch sizes."""
    table = calibration["steps"][step]["throughput"]
    rates = [float(r) for per_batch in table.values() for r in per_batch.values()]
    if not rates:
        raise SystemExit(f"no throughput measured for step {step!r}")
    return max(rates)


def items_for(rate: float, seconds: float, unit: int = 1024) -> int:
    """Items for ``seconds`` at ``rate``, in whole units (at least 4 of them)."""
    return max(4, math.floor(rate * seconds / unit)) * unit


# --- contrast ----------------------------------------------------------------------------------


def shard_env(start: int, end: int, batch: int, folder: Path) -> dict[str, str]:
    """The variables a runner gives a one-micro-batch shard (docs/resumable-commands.md)."""
    (folder / "output").mkdir(parents=True)
    values = {
        "SHARD_INDEX": "0",
        "BATCH_INDEX": "0",
        "SHARD_START": str(start),
        "BATCH_START": str(start),
        "SHARD_END": str(end),
        "BATCH_END": str(end),
        "SHARD_COUNT": "1",
        "BATCH_SIZE": str(batch),
        "CHECKPOINT": str(folder / "checkpoint"),
        "OUTPUT": str(folder / "output"),
        "ATTEMPT": "1",
        "RUN_ID": "contrast",
        "STEP": "embed",
        "INPUT": "",
    }
    return {f"EXO_{k}": v for k, v in values.items()}


def run_contrast(batch: int, processes: int, seq_len: int, work: Path) -> list[float]:
    """Seconds from launch to exit of each one-micro-batch process."""
    walls = []
    for k in range(processes):
        env = dict(os.environ) | shard_env(k * batch, (k + 1) * batch, batch, work / f"p{k}")
        t = time.perf_counter()
        subprocess.run([*EMBED_COMMAND, str(seq_len)], cwd=HERE, env=env, check=True)
        walls.append(time.perf_counter() - t)
    return walls


def contrast_summary(walls: Sequence[float], batch: int, items: int) -> Json:
    batches = math.ceil(items / batch)
    mean = statistics.fmean(walls)
    return {
        "batch_size": batch,
        "items": items,
        "micro_batches": batches,
        "process_s": list(walls),
        "mean_process_s": mean,
        "projected_s": mean * batches,
    }


# --- report --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepFigures:
    name: str
    tier: str
    replicas: int
    batch_size: int
    items: int | None
    planned_s: float
    real_s: float | None
    planned_cost: float
    price_per_h: float
    replica_h: float | None
    planned_rate: float | None
    real_rate: float | None
    planned_startup_s: float | None
    real_startup_s: float | None
    verdict: str

    @property
    def ratio(self) -> float | None:
        return None if self.real_s is None else self.real_s / self.planned_s

    @property
    def real_cost(self) -> float | None:
        """The real replica-hours at the plan's catalog price (one replica per instance)."""
        return None if self.replica_h is None else self.replica_h * self.price_per_h


def calibrated(
    calibration: Mapping[str, Any] | None, sp: Mapping[str, Any]
) -> tuple[float | None, float | None]:
    """The step's items/s at its planned hardware and batch size, and its startup, measured."""
    if calibration is None or sp["name"] not in calibration.get("steps", {}):
        return None, None
    cs = calibration["steps"][sp["name"]]
    table = cs.get("throughput", {}).get(sp["accelerator"] or "cpu", {})
    rate = table.get(str(sp["batch_size"]), table.get("*"))
    return rate, cs.get("startup_s")


def step_figures(
    plan: Mapping[str, Any],
    status: Mapping[str, Any],
    calibration: Mapping[str, Any] | None = None,
) -> list[StepFigures]:
    pva = status.get("plan_vs_actual") or {}
    actual = {s["name"]: s for s in pva.get("steps", [])}
    out = []
    for sp in plan["steps"]:
        a = actual.get(sp["name"], {})
        planned, real = dict(a.get("planned") or {}), a.get("actual") or {}
        rate, startup = calibrated(calibration, sp)
        if rate is not None:
            planned["items_per_s"] = rate
        if startup is not None:
            planned["startup_s"] = startup
        tier = f"{sp['instance_type']} ({sp['accelerator'] or 'cpu'}) " + (
            "spot" if sp["spot"] else "on-demand"
        )
        out.append(
            StepFigures(
                name=sp["name"],
                tier=tier,
                replicas=int(sp["replicas"]),
                batch_size=int(sp["batch_size"] or 0),
                items=a.get("items"),
                planned_s=float(sp["expected_duration_h"]) * 3600,
                real_s=real.get("duration_s"),
                planned_cost=float(sp["expected_cost_usd"]),
                price_per_h=float(sp["price_usd_per_hour"]),
                replica_h=real.get("replica_hours"),
                planned_rate=planned.get("items_per_s"),
                real_rate=real.get("items_per_s"),
                planned_startup_s=planned.get("startup_s"),
                real_startup_s=real.get("startup_s"),
                verdict="measured" if rate is not None else str(a.get("verdict", "no ledger")),
            )
        )
    return out


def num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def step_line(f: StepFigures) -> str:
    items = "" if f.items is None else f", {f.items:,} items"
    cost_ratio = None if f.real_cost is None else f.real_cost / f.planned_cost
    return (
        f"{f.name} on {f.tier}, {f.replicas} replica(s), batch {f.batch_size}{items}: "
        f"planned {f.planned_s:.1f} s, real {num(f.real_s, '.1f')} s, "
        f"real/planned {num(f.ratio, '.3f')}; "
        f"cost planned ${f.planned_cost:.4f}, real {num(f.replica_h, '.5f')} replica-h x "
        f"${f.price_per_h:g}/h = ${num(f.real_cost, '.4f')} ({num(cost_ratio, '.3f')}x); "
        f"items/s planned {num(f.planned_rate, ',.0f')}, real {num(f.real_rate, ',.0f')}; "
        f"startup planned {num(f.planned_startup_s, '.1f')} s, "
        f"real {num(f.real_startup_s, '.1f')} s"
        + ("" if f.verdict == "measured" else f"; exoc status: {f.verdict}")
    )


def report(
    plan: Mapping[str, Any],
    status: Mapping[str, Any],
    contrast: Mapping[str, Any] | None = None,
    run_wall_s: float | None = None,
    gpu: str | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> list[str]:
    figures = step_figures(plan, status, calibration)
    pva = status.get("plan_vs_actual") or {}
    planned = float(plan["makespan_h"]) * 3600
    lines = [
        f"GPU plan vs run{f' on {gpu}' if gpu else ''}: run {status.get('run_id')} "
        f"{status.get('state')}; plan {plan['status']}, expected cost "
        f"${float(plan['expected_cost_usd']):.4f}"
    ]
    lines += [step_line(f) for f in figures]
    real = pva.get("actual_makespan_s")
    mk = (
        f"makespan: planned {planned:.1f} s, real {num(real, '.1f')} s "
        f"(real/planned {num(None if real is None else real / planned, '.3f')})"
    )
    if run_wall_s is not None:
        mk += (
            f"; exoc run from start to exit {run_wall_s:.1f} s "
            f"({run_wall_s / planned:.3f} x planned: exoc's own start-up and planning included)"
        )
    lines.append(mk)
    if contrast is not None:
        long_lived = figures[0].real_s if figures else None
        ratio = None if not long_lived else float(contrast["projected_s"]) / long_lived
        lines.append(
            f"contrast, one process per micro-batch (model built each time): "
            f"{len(contrast['process_s'])} processes of {contrast['batch_size']} items, "
            f"mean {float(contrast['mean_process_s']):.2f} s each; x "
            f"{contrast['micro_batches']:,} micro-batches = {float(contrast['projected_s']):.0f} s "
            f"projected, {num(ratio, '.1f')}x the long-lived replica's "
            f"{num(long_lived, '.1f')} s and {float(contrast['projected_s']) / planned:.1f}x "
            "the plan"
        )
    return lines


# --- the command line --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("size", help="items for a run of about --seconds")
    s.add_argument("calibration", type=Path)
    s.add_argument("--seconds", type=float, default=60.0)
    c = sub.add_parser("contrast", help="one process per micro-batch, projected")
    c.add_argument("plan", type=Path)
    c.add_argument("--processes", type=int, default=3)
    c.add_argument("--items", type=int, required=True, help="the run's items")
    c.add_argument("--seq-len", type=int, default=128)
    c.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    c.add_argument("-o", "--output", type=Path, required=True)
    r = sub.add_parser("report", help="the summary lines")
    r.add_argument("plan", type=Path)
    r.add_argument("status", type=Path)
    r.add_argument("--calibration", type=Path, help="the plan's calibration file")
    r.add_argument("--contrast", type=Path)
    r.add_argument("--run-wall-s", type=float)
    r.add_argument("--gpu")
    args = ap.parse_args(argv)

    if args.command == "size":
        print(items_for(best_rate(load(args.calibration)), args.seconds))
    elif args.command == "contrast":
        batch = int(load(args.plan)["steps"][0]["batch_size"])
        work = args.work or Path(tempfile.mkdtemp(prefix="exo-contrast-"))
        walls = run_contrast(batch, args.processes, args.seq_len, work)
        summary = contrast_summary(walls, batch, args.items)
        args.output.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        print(json.dumps(summary, sort_keys=True))
    else:
        contrast = load(args.contrast) if args.contrast else None
        cal = load(args.calibration) if args.calibration else None
        lines = report(load(args.plan), load(args.status), contrast, args.run_wall_s, args.gpu, cal)
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
