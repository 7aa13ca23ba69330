"""The injected-preemption part of the GPU benchmark (device.sh, step 6), in two commands.

``catalog CATALOG --rate R -o OUT.csv``
    the catalog with every spot offer preempted at R per hour (the column
    ``spot_preemptions_per_hour``), so that a spot plan is made for the rate
    that the local backend then emulates (``--local-spot-rate R``).

``report PLAN RUN_DIR... --rate R [--calibration CAL.json]``
    the runs of one spot plan, each RUN_DIR holding one run's ``exoc status
    --format json`` (``status.json``) and ledger (``ledger.jsonl``): per run the
    real duration, preemptions, replica-hours and cost against the plan's
    expected figures, and each attempt's startup (``-``: preempted before its
    first micro-batch; the cost model charges every restart the step's
    startup); then the means (DESIGN §8: within 15% of the plan's expected
    figures). With the calibration the plan was made with, two more checks
    that do not depend on the dice:

    - each run *replayed* under the cost model: the duration the model gives
      when preempted exactly when that run was (every attempt but the last
      lived as long as it did and committed the whole batches the model says
      it would have; the last pays the startup and does the rest at the
      planned rate), so real / replayed is the model's error net of luck;
    - the model's own spread: 20,000 runs simulated with preemptions drawn at
      the rate (seeded, by ``exoc simulate``'s simulator of attempts), their
      mean (which should be the plan's expected duration) and one run's
      standard deviation, so how far a mean of K runs may fall from the
      expected figure by chance alone.

It runs where exoc was installed (into a scratch folder, on a GPU machine).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from summarize import Json, calibrated, load, num

#: The catalog column of a spot offer's preemption rate (docs/catalogs.md).
RATE_COLUMN = "spot_preemptions_per_hour"


def injected_catalog(text: str, rate: float) -> str:
    """The catalog CSV with every row's spot offer preempted at ``rate`` per hour."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise SystemExit("the catalog has no rows")
    fields = list(rows[0])
    if RATE_COLUMN not in fields:
        fields.append(RATE_COLUMN)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row | {RATE_COLUMN: format(rate, "g")})
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Attempt:
    shard: int
    attempt: int
    started_at: float
    ended_at: float | None
    outcome: str
    first_batch_at: float | None

    @property
    def startup_s(self) -> float | None:
        return None if self.first_batch_at is None else self.first_batch_at - self.started_at

    @property
    def lifetime_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def ledger_attempts(text: str, step: str = "embed") -> list[Attempt]:
    """The step's attempts in a ledger (docs/backends/local.md): start and end events joined."""
    starts: dict[tuple[int, int], Json] = {}
    ends: dict[tuple[int, int], Json] = {}
    for line in text.splitlines():
        ev = json.loads(line) if line.strip() else {}
        if ev.get("step") != step or ev.get("event") not in ("start", "end"):
            continue
        (starts if ev["event"] == "start" else ends)[(ev["shard"], ev["attempt"])] = ev
    out = []
    for key in sorted(starts):
        end = ends.get(key, {})
        out.append(
            Attempt(
                shard=key[0],
                attempt=key[1],
                started_at=float(starts[key]["t"]),
                ended_at=end.get("t"),
                outcome=str(end.get("outcome", "running")),
                first_batch_at=end.get("first_batch_at"),
            )
        )
    return out


def restart_gaps(attempts: Sequence[Attempt]) -> list[float]:
    """Seconds from each attempt's end to the next attempt of the same shard."""
    gaps = []
    for a, b in itertools.pairwise(attempts):
        if a.shard == b.shard and a.ended_at is not None:
            gaps.append(b.started_at - a.ended_at)
    return gaps


@dataclass(frozen=True, slots=True)
class StepModel:
    """What the plan assumed of the step: the cost model's inputs (DESIGN §3)."""

    startup_s: float
    items_per_s: float
    batch_size: int
    items: int
    preemptions_per_h: float

    def committed_by(self, seconds: float, remaining: int) -> int:
        """Items an attempt killed after ``seconds`` has committed: whole batches after its startup."""
        batches = math.floor(
            max(0.0, seconds - self.startup_s) * self.items_per_s / self.batch_size
        )
        return min(remaining, batches * self.batch_size)

    def replay(self, attempts: Sequence[Attempt]) -> float | None:
        """The run's duration under the model, preempted when this run was (one shard).

        Every attempt but the last lived as long as it really did (the preemption
        came when it came) and committed what the model says it would have; the
        last one pays the startup again and does the rest at the planned rate.
        """
        lifetimes = [a.lifetime_s for a in attempts[:-1]]
        if not attempts or any(t is None for t in lifetimes):
            return None
        done, elapsed = 0, 0.0
        for t in (t for t in lifetimes if t is not None):
            done += self.committed_by(t, self.items - done)
            elapsed += t
        elapsed += sum(restart_gaps(attempts))
        return elapsed + self.startup_s + (self.items - done) / self.items_per_s

    def spread(self, samples: int = 20_000, seed: int = 0) -> tuple[float, float]:
        """The mean and the standard deviation of one run's duration under the model,
        drawn by ``exoc simulate``'s own simulator of attempts (``compiler/attempts.py``)."""
        import numpy as np

        from exo.compiler.attempts import Instance, run_attempts

        per_h = 3600.0
        inst = Instance(
            startup_h=self.startup_s / per_h,
            work_h=self.items / self.items_per_s / per_h,
            checkpoint_h=self.batch_size / self.items_per_s / per_h,
            rate=self.preemptions_per_h,
        )
        finish = run_attempts(np.random.default_rng(seed), inst, np.zeros(samples)).finish * per_h
        return float(finish.mean()), float(finish.std(ddof=1))


def step_model(
    calibration: Mapping[str, Any], sp: Mapping[str, Any], items: int, rate: float
) -> StepModel:
    rate_at, startup = calibrated(calibration, sp)
    if rate_at is None or startup is None:
        raise SystemExit(f"the calibration has no startup or items/s for {sp['name']}")
    return StepModel(float(startup), float(rate_at), int(sp["batch_size"]), items, rate)


def _seconds(xs: Sequence[float | None]) -> str:
    return "[" + ", ".join(num(x, ".1f") for x in xs) + "]"


def status_step(status: Mapping[str, Any], name: str) -> Json:
    """The step's planned-vs-actual entry of ``exoc status --format json``."""
    steps = (status.get("plan_vs_actual") or {}).get("steps", [])
    return dict(next(s for s in steps if s["name"] == name))


def spot_run_line(
    label: str, sp: Mapping[str, Any], status: Json, ledger: str, model: StepModel | None = None
) -> Json:
    """One injected-preemption run's figures against the plan's, and its summary line.

    With the model (the calibration's startup and items/s), the run is also replayed:
    what the model says it takes when preempted exactly when it was.
    """
    step = status_step(status, sp["name"])
    real = step["actual"]
    attempts = ledger_attempts(ledger, sp["name"])
    startups = [a.startup_s for a in attempts]
    expected = float(sp["expected_duration_h"]) * 3600
    fig = {
        "run": label,
        "state": status.get("state"),
        "duration_s": real.get("duration_s"),
        "replica_hours": real.get("replica_hours"),
        "cost_usd": real.get("cost_usd"),
        "preemptions": step["preemptions"],
        "attempts": step["attempts"],
        "startups_s": startups,
        "restart_gaps_s": restart_gaps(attempts),
        "replayed_s": None if model is None else model.replay(attempts),
    }
    ratio = None if fig["duration_s"] is None else fig["duration_s"] / expected
    replayed = ""
    if fig["replayed_s"] is not None and fig["duration_s"] is not None:
        replayed = (
            f", {fig['duration_s'] / fig['replayed_s']:.3f}x the {fig['replayed_s']:.1f} s "
            "the model gives with these preemptions"
        )
    fig["line"] = (
        f"{label}: {status.get('state')}, {step['preemptions']} preemption(s), "
        f"{step['attempts']} attempt(s); real {num(fig['duration_s'], '.1f')} s "
        f"({num(ratio, '.3f')}x the expected {expected:.1f} s{replayed}), "
        f"{num(fig['replica_hours'], '.5f')} replica-h, ${num(fig['cost_usd'], '.4f')}; "
        f"startups {_seconds(startups)} s, restart gaps {_seconds(fig['restart_gaps_s'])} s"
    )
    return fig


def model_line(model: StepModel, runs: int) -> str:
    """The model's own spread: how far from the expected figure a mean of ``runs`` may fall."""
    mean, sd = model.spread()
    return (
        f"the model (startup {model.startup_s:.1f} s, {model.items_per_s:,.0f} items/s, "
        f"{model.preemptions_per_h:g} preemptions/h, {model.items:,} items), 20,000 simulated "
        f"runs: mean {mean:.1f} s, one run's standard deviation {sd:.1f} s, so a mean of "
        f"{runs} run(s) falls within +-{sd / math.sqrt(max(1, runs)) / mean:.0%} of it (1 sigma)"
    )


def spot_report(
    plan: Mapping[str, Any],
    runs: Sequence[Json],
    rate: float | None,
    model: StepModel | None = None,
) -> list[str]:
    """The runs' lines, then their means against the plan's expected figures."""
    sp = plan["steps"][0]
    expected = float(sp["expected_duration_h"]) * 3600
    cost = float(sp["expected_cost_usd"])
    replica_h = float(sp["expected_duration_h"]) * int(sp["replicas"])
    lines = [
        f"injected preemptions{f' at {rate:g}/h' if rate is not None else ''}: "
        f"{sp['name']} on {sp['instance_type']} ({sp['accelerator'] or 'cpu'}) "
        f"{'spot' if sp['spot'] else 'on-demand'}, batch {sp['batch_size']}; plan: expected "
        f"{expected:.1f} s, {float(sp['p_duration_h']) * 3600:.1f} s at its confidence, "
        f"{replica_h:.5f} replica-h, ${cost:.4f}"
    ]
    lines += ["  " + r["line"] for r in runs]
    done = [r for r in runs if r["duration_s"] is not None]
    if done:
        mean = {
            k: statistics.fmean(float(r[k]) for r in done)
            for k in ("duration_s", "replica_hours", "cost_usd")
        }
        restarts = [s for r in done for s in r["startups_s"][1:] if s is not None]
        firsts = [
            r["startups_s"][0] for r in done if r["startups_s"] and r["startups_s"][0] is not None
        ]
        lines.append(
            f"mean of {len(done)} run(s): {mean['duration_s']:.1f} s "
            f"({mean['duration_s'] / expected:.3f}x expected), "
            f"{mean['replica_hours']:.5f} replica-h ({mean['replica_hours'] / replica_h:.3f}x), "
            f"${mean['cost_usd']:.4f} ({mean['cost_usd'] / cost:.3f}x); "
            f"{statistics.fmean(r['preemptions'] for r in done):.2f} preemptions a run; "
            f"startup first {num(statistics.fmean(firsts) if firsts else None, '.1f')} s, "
            f"restarts {num(statistics.fmean(restarts) if restarts else None, '.1f')} s"
        )
        replays = [r["duration_s"] / r["replayed_s"] for r in done if r.get("replayed_s")]
        if replays:
            lines.append(
                f"real / replayed under the model: mean {statistics.fmean(replays):.3f} "
                f"(min {min(replays):.3f}, max {max(replays):.3f})"
            )
    if model is not None:
        lines.append(model_line(model, len(done)))
    return lines


def spot_command(
    plan: Mapping[str, Any], folders: Sequence[Path], rate: float | None, calibration: Path | None
) -> list[str]:
    sp = plan["steps"][0]
    statuses = [load(d / "status.json") for d in folders]
    model = None
    if calibration is not None and rate is not None and statuses:
        items = int(status_step(statuses[0], sp["name"])["items"])
        model = step_model(load(calibration), sp, items, rate)
    runs = [
        spot_run_line(d.name, sp, st, (d / "ledger.jsonl").read_text(), model)
        for d, st in zip(folders, statuses, strict=True)
    ]
    return spot_report(plan, runs, rate, model)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("catalog", help="the catalog with its spot offers preempted at --rate")
    c.add_argument("catalog", type=Path)
    c.add_argument("--rate", type=float, required=True, help="preemptions per hour")
    c.add_argument("-o", "--output", type=Path, required=True)
    r = sub.add_parser("report", help="the injected-preemption runs against the plan")
    r.add_argument("plan", type=Path)
    r.add_argument("runs", type=Path, nargs="+", help="folders with status.json, ledger.jsonl")
    r.add_argument("--rate", type=float, help="the preemptions per hour planned and emulated")
    r.add_argument("--calibration", type=Path, help="the plan's calibration: replays the runs")
    args = ap.parse_args(argv)
    if args.command == "catalog":
        args.output.write_text(injected_catalog(args.catalog.read_text("utf-8"), args.rate))
    else:
        print("\n".join(spot_command(load(args.plan), args.runs, args.rate, args.calibration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
