"""Calibration files: measured figures that replace declared ones in the next plan (#13).

Written by ``exoc profile -o`` (measured here, per batch size) and ``exoc
calibrate`` (from a run's ledger); read by ``--calibration FILE`` on plan,
compile and run. A pure transformation: :func:`apply` returns a new program
and catalog with the measured figures in place of the declared ones, and the
list of what it changed, which the plan's explanation repeats.

Format (JSON, ``docs/calibrating.md``)::

    {"format": 1, "source": "exoc profile", "steps": {
       "embed": {"startup_s": 41.0,
                 "throughput": {"A10G": {"32": 1.21, "64": 2.02}, "cpu": {"*": 3.5}}}},
     "instance_types": {"g5.xlarge": {"spot_hours": 12.5, "preemptions": 2}}}

Throughput keys are what the ``.exo`` may key a throughput by (an accelerator,
an instance type, or ``cpu``), then the batch size, or ``*`` for a rate that
does not depend on it; figures are items/s per replica. Preemptions observed
over spot hours blend with the catalog's rate (:func:`blended_rate`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from exo.compiler.frozen import Frozen

from .catalog import Catalog
from .diagnostics import CompileError, Diagnostic
from .frontend import Compiled
from .inputs import MAX_CATALOG_BYTES, InputRefused, read_regular_file
from .ir import Program, Step, Throughput
from .plan import Plan

FORMAT: Literal[1] = 1
#: Weight, in observed instance-hours, of the catalog's preemption rate when blending.
PRIOR_HOURS = 10.0
UNBATCHED = "*"


class StepCalibration(Frozen):
    startup_s: float | None = Field(default=None, ge=0)
    #: hardware key -> batch size (decimal, or ``*``) -> items/s per replica.
    throughput: dict[str, dict[str, float]] = Field(default_factory=dict)


class TierCalibration(Frozen):
    spot_hours: float = Field(ge=0)
    preemptions: int = Field(ge=0)


class Calibration(Frozen):
    format: Literal[1] = FORMAT
    source: str = ""
    steps: dict[str, StepCalibration] = Field(default_factory=dict)
    instance_types: dict[str, TierCalibration] = Field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    def merged(self, other: Calibration) -> Calibration:
        """``other``'s figures over this one's (per step and hardware key, per tier)."""
        steps = dict(self.steps)
        for name, cal in other.steps.items():
            old = steps.get(name, StepCalibration())
            tp = {k: dict(v) for k, v in old.throughput.items()}
            for key, rates in cal.throughput.items():
                tp.setdefault(key, {}).update(rates)
            start = cal.startup_s if cal.startup_s is not None else old.startup_s
            steps[name] = StepCalibration(startup_s=start, throughput=tp)
        return Calibration(
            source=other.source or self.source,
            steps=steps,
            instance_types={**self.instance_types, **other.instance_types},
        )


def load(path: Path) -> Calibration:
    """Read a calibration file; raises CompileError (E230) when it is not one."""
    try:
        text = read_regular_file(path, MAX_CATALOG_BYTES).decode("utf-8", errors="replace")
    except InputRefused as e:
        raise CompileError([Diagnostic("E230", f"cannot read {path}: it {e.reason}")]) from None
    except OSError as e:
        raise CompileError([Diagnostic("E230", f"cannot read {path}: {e.strerror or e}")]) from None
    try:
        cal = Calibration.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise CompileError(
            [
                Diagnostic(
                    "E230",
                    f"{path} is not a calibration file: {where}: {first['msg']}",
                    help=("write it with `exoc profile -o` or `exoc calibrate`",),
                )
            ]
        ) from None
    for name, sc in cal.steps.items():
        for key, rates in sc.throughput.items():
            for batch, rate in rates.items():
                if (batch != UNBATCHED and not batch.isdigit()) or not rate > 0:
                    raise CompileError(
                        [
                            Diagnostic(
                                "E230",
                                f"{path}: steps.{name}.throughput.{key}.{batch}: "
                                "a batch size (or `*`) and a positive items/s are expected",
                            )
                        ]
                    )
    return cal


def blended_rate(catalog_rate: float, spot_hours: float, preemptions: int) -> float:
    """Preemptions per hour: the catalog's rate as ``PRIOR_HOURS`` of evidence, plus what was seen.

    ``(catalog_rate * PRIOR_HOURS + preemptions) / (PRIOR_HOURS + spot_hours)``:
    the mean of the Gamma posterior whose prior has the catalog's mean.
    """
    return (catalog_rate * PRIOR_HOURS + preemptions) / (PRIOR_HOURS + spot_hours)


def _pct(new: float, old: float | None) -> str:
    if not old:
        return "not declared before"
    return f"{(new - old) / old * 100:+.0f}%"


def _step_throughput(step: Step, cal: StepCalibration, notes: list[str]) -> Throughput | None:
    if step.throughput is None or not cal.throughput:
        return step.throughput
    per_batch = {k: dict(v) for k, v in step.throughput.per_batch.items()}
    flat = dict(step.throughput.flat)
    for key, rates in sorted(cal.throughput.items()):
        for batch, rate in sorted(rates.items(), key=lambda kv: (len(kv[0]), kv[0])):
            if batch == UNBATCHED:
                old = flat.get(key)
                flat[key] = rate
                per_batch.pop(key, None)
                notes.append(
                    f"{step.name}: throughput on {key} {old or '-'} -> {rate:.4g} items/s ({_pct(rate, old)})"
                )
            else:
                b = int(batch)
                old = per_batch.get(key, {}).get(b)
                per_batch.setdefault(key, {})[b] = rate
                flat.pop(key, None)
                notes.append(
                    f"{step.name}: throughput on {key} at batch {b} {old if old is not None else '-'} -> "
                    f"{rate:.4g} items/s ({_pct(rate, old)})"
                )
    return Throughput(per_batch=per_batch, flat=flat)


def _derived_batch_sizes(tp: Throughput | None) -> tuple[int, ...]:
    """The batch sizes the front end gives a step that declares none (``steps.py``)."""
    if tp is None:
        return ()
    return tuple(sorted({b for t in tp.per_batch.values() for b in t}))


def apply(
    program: Program, catalog: Catalog, cal: Calibration
) -> tuple[Program, Catalog, list[str]]:
    """The program and catalog with measured figures in place; one note per figure replaced."""
    notes: list[str] = []
    steps = []
    for step in program.steps:
        sc = cal.steps.get(step.name)
        if sc is None:
            steps.append(step)
            continue
        tp = _step_throughput(step, sc, notes)
        update: dict[str, object] = {"throughput": tp}
        if tp is not None and step.batch_sizes == _derived_batch_sizes(step.throughput):
            # Not declared: the front end takes them from the table, so a measured size joins.
            update["batch_sizes"] = _derived_batch_sizes(tp)
        if sc.startup_s is not None:
            old_s = step.startup_h * 3600.0
            update["startup_h"] = sc.startup_s / 3600.0
            notes.append(
                f"{step.name}: startup {old_s:g}s -> {sc.startup_s:.4g}s ({_pct(sc.startup_s, old_s)})"
            )
        steps.append(step.model_copy(update=update))
    rows = []
    for row in catalog.instances:
        tc = cal.instance_types.get(row.instance_type)
        if tc is None or row.spot_usd_per_hour is None:
            rows.append(row)
            continue
        rate = blended_rate(row.spot_preemptions_per_hour, tc.spot_hours, tc.preemptions)
        notes.append(
            f"{row.instance_type}: spot preemptions {row.spot_preemptions_per_hour:g}/h -> {rate:.4g}/h "
            f"({tc.preemptions} seen in {tc.spot_hours:.3g} spot hours, blended with the catalog's)"
        )
        rows.append(row.model_copy(update={"spot_preemptions_per_hour": rate}))
    return (
        program.model_copy(update={"steps": tuple(steps)}),
        catalog.model_copy(update={"instances": tuple(rows)}),
        notes,
    )


def calibrate_compiled(compiled: Compiled, path: Path | None) -> tuple[Compiled, list[str]]:
    """``compiled`` planned with the figures of the calibration file at ``path`` (if any)."""
    if path is None:
        return compiled, []
    program, catalog, notes = apply(compiled.program, compiled.catalog, load(path))
    return replace(compiled, program=program, catalog=catalog), notes


#: How a plan's explanation line names a declared figure that calibration replaced.
CALIBRATED = "calibrated: "


def annotate(plan: Plan, notes: list[str]) -> Plan:
    """The plan, its explanation saying which declared figures calibration replaced."""
    if not notes:
        return plan
    lines = [f"{CALIBRATED}{n}" for n in notes]
    return plan.model_copy(update={"explanation": (*plan.explanation, *lines)})


def calibration_notes(plan: Plan) -> list[str]:
    """The notes :func:`annotate` added to ``plan`` (empty: planned with declared figures)."""
    return [
        line.removeprefix(CALIBRATED) for line in plan.explanation if line.startswith(CALIBRATED)
    ]
