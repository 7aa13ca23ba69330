"""Synthetic spot traces in the public "Can't Be Late" format, from published statistics.

The real traces (NSDI 2024, ``skypilot-org/spot-traces``) have no licence file,
so the repository ships none; this generator draws traces with the statistics
measured on them (see docs/simulate.md and docs/benchmarks.md), 5-minute ticks,
0/1 values (one instance type in one zone):

- ``steady``: Poisson preemptions at 0.47 per running hour (the AWS catalog's
  default rate), capacity back after one tick: the cost model's own world.
- ``bursty``: running spells with a coefficient of variation of about 1.5
  (a two-phase mixture: 45% short spells of mean 12 minutes, the rest of mean
  3.65 h; mean 2.1 h, i.e. about 0.47 preemptions per running hour), and
  capacity gaps after each preemption, log-normal with a median of 0.4 h and a
  90th percentile of 4 h (about half the time without capacity).
- ``long-gaps``: the same running spells, gaps with a median of 0.5 h and a
  90th percentile of about 8 h, capped at 20 h (the longest gap measured).

Each pattern gets ``--zones`` independent traces (different seeds). Usage::

    python benchmarks/gen_spot_traces.py OUT_DIR [--days 45] [--zones 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TICK_S = 300
TICK_H = TICK_S / 3600.0
PATTERNS = ("steady", "bursty", "long-gaps")


def _up_spell(rng: np.random.Generator, pattern: str) -> float:
    if pattern == "steady":
        return float(rng.exponential(1 / 0.47))
    mean = 0.2 if rng.random() < 0.45 else 3.65
    return float(rng.exponential(mean))


def _gap(rng: np.random.Generator, pattern: str) -> float:
    if pattern == "steady":
        return TICK_H
    if pattern == "bursty":
        return float(rng.lognormal(np.log(0.4), 1.8))
    return float(min(rng.lognormal(np.log(0.5), 2.2), 20.0))


def generate(pattern: str, days: float, seed: int) -> list[int]:
    """One 0/1 trace of ``days`` days at 5-minute ticks."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}")
    rng = np.random.default_rng(seed)
    ticks = int(days * 24 / TICK_H)
    data: list[int] = []
    while len(data) < ticks:
        data += [1] * max(1, round(_up_spell(rng, pattern) / TICK_H))
        data += [0] * max(1, round(_gap(rng, pattern) / TICK_H))
    return data[:ticks]


def stats(data: list[int]) -> dict[str, float]:
    """What the generated trace shows: availability, preemptions per running hour, CV of spells."""
    a = np.asarray(data)
    drops = int(np.sum((a[:-1] == 1) & (a[1:] == 0)))
    up_h = float(a.sum()) * TICK_H
    edges = np.diff(np.concatenate([[0], a, [0]]))
    spells = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)) * TICK_H
    return {
        "available": float(a.mean()),
        "preemptions_per_up_hour": drops / up_h if up_h else 0.0,
        "spell_cv": float(spells.std() / spells.mean()) if spells.size else 0.0,
        "spells_under_30min": float(np.mean(spells < 0.5)) if spells.size else 0.0,
    }


def write(out: Path, days: float, zones: int, seed: int) -> dict[str, list[Path]]:
    """Every pattern's traces under ``out``, named ``PATTERN-zN.json``."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    for k, pattern in enumerate(PATTERNS):
        for z in range(zones):
            data = generate(pattern, days, seed * 1000 + k * 100 + z)
            doc = {"metadata": {"gap_seconds": TICK_S, "pattern": pattern}, "data": data}
            path = out / f"{pattern}-z{z}.json"
            path.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
            files.setdefault(pattern, []).append(path)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write the traces to")
    ap.add_argument("--days", type=float, default=45.0)
    ap.add_argument("--zones", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for pattern, paths in write(args.out, args.days, args.zones, args.seed).items():
        for p in paths:
            data = json.loads(p.read_text(encoding="utf-8"))["data"]
            s = stats(data)
            print(pattern, p.name, " ".join(f"{k}={v:.3f}" for k, v in s.items()))


if __name__ == "__main__":
    main()
