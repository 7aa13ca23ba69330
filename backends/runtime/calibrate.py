"""``exoc calibrate``: a run's ledger turned into a calibration file (#13).

Per step x hardware key (what the step's throughput is keyed by for the
instance type an attempt ran on: the instance type, else its accelerator,
else ``cpu``, DESIGN §3's lookup) x batch size: items/s per replica and the
startup, measured as ``exoc status`` measures them (:mod:`.actuals`). Per spot
instance type: the instance-hours seen and the preemptions in them (an
instance holds ``ceil(replicas / instances)`` replicas of the step, and one
preemption stops them all), which :func:`exo.compiler.calibration.blended_rate`
blends with the catalog's rate.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

from exo.compiler.calibration import UNBATCHED, Calibration, StepCalibration, TierCalibration
from exo.compiler.catalog import Catalog
from exo.compiler.ir import CPU_KEY, Program, Step
from exo.compiler.plan import Plan

from .actuals import items_per_s
from .ledger import FILE_NAME, LOCAL_FOLDER, AttemptEntry, Ledger


def hardware_key(step: Step, catalog: Catalog, instance_type: str) -> str | None:
    if step.throughput is None:
        return None
    known = step.throughput.keys()
    row = catalog.get(instance_type)
    for key in (instance_type, (row.accelerator if row else None) or CPU_KEY):
        if key in known:
            return key
    return None


def _step(
    step: Step, catalog: Catalog, attempts: list[AttemptEntry], fallback: str
) -> StepCalibration | None:
    groups: dict[tuple[str, str], list[AttemptEntry]] = defaultdict(list)
    for a in attempts:
        key = hardware_key(step, catalog, a.instance_type or fallback)
        if key is None:
            continue
        batched = step.throughput is not None and step.throughput.is_batched(key)
        batch = str(a.batch_size) if batched and a.batch_size else UNBATCHED
        groups[(key, batch)].append(a)
    throughput: dict[str, dict[str, float]] = defaultdict(dict)
    for (key, batch), group in sorted(groups.items()):
        rate = items_per_s(group, step.startup_h * 3600.0)
        if rate:
            throughput[key][batch] = rate
    startups = [s for a in attempts if (s := a.startup_s) is not None]
    if not throughput and not startups:
        return None
    return StepCalibration(
        startup_s=statistics.fmean(startups) if startups else None, throughput=dict(throughput)
    )


def from_ledger(program: Program, plan: Plan, catalog: Catalog, book: Ledger) -> Calibration:
    steps: dict[str, StepCalibration] = {}
    hours: dict[str, float] = defaultdict(float)
    preempted: dict[str, float] = defaultdict(float)
    for sp in plan.steps:
        attempts = [a for a in book.of_step(sp.name) if a.ended_at is not None]
        try:
            step = program.step(sp.name)
        except KeyError:
            continue
        cal = _step(step, catalog, attempts, sp.instance_type)
        if cal is not None:
            steps[sp.name] = cal
        per_instance = math.ceil(sp.replicas / max(1, sp.instances))
        for a in attempts:
            if a.spot:
                it = a.instance_type or sp.instance_type
                hours[it] += (a.seconds or 0.0) / 3600.0 / per_instance
                preempted[it] += (a.outcome in ("preempted", "lost")) / per_instance
    tiers = {
        it: TierCalibration(spot_hours=h, preemptions=round(preempted[it]))
        for it, h in sorted(hours.items())
    }
    return Calibration(source="exoc calibrate", steps=steps, instance_types=tiers)


def find_ledger(state_dir: Path, run_id: str) -> Path | None:
    """The ledger of run ``run_id`` under a state directory (local or Slurm layout)."""
    local = state_dir / LOCAL_FOLDER / f"{run_id}.jsonl"
    if local.is_file():
        return local
    for path in sorted((state_dir / "slurm").glob(f"*/{run_id}/{FILE_NAME}")):
        return path
    return None
