"""``exoc profile`` and ``exoc calibrate``: measured figures for the next plan (#13).

``profile FILE STEP`` measures a step's startup and items/s here, per batch
size; ``calibrate FILE`` turns a run's ledger into a calibration file.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from exo.backends.runtime import profiling
from exo.backends.runtime.profiling import Measurement
from exo.compiler import calibration
from exo.compiler.cli.backend_flags import BackendFlagsCommand
from exo.compiler.cli.options import (
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    STATE_DIR_OPTION,
    TARGET,
    output_option,
)
from exo.compiler.cli.runs import Run, default_state_dir, drive
from exo.compiler.cli.support import Exit, fail, parse_params, plan_or_exit
from exo.compiler.cli.targets import Request
from exo.compiler.diagnostics import CompileError, Diagnostic
from exo.compiler.ir import Step
from exo.compiler.pipeline import compile_file
from exo.compiler.plan import Plan

DEFAULT_ITEMS_PER_BATCH = 4


def _step_or_fail(steps: dict[str, Step], name: str) -> Step:
    step = steps.get(name)
    if step is None:
        fail(
            [
                Diagnostic(
                    "E741",
                    f"there is no step `{name}` in the workflow",
                    help=(f"steps: {', '.join(sorted(steps)) or 'none'}",),
                )
            ]
        )
    if step.throughput is None or not step.command:
        what = "has no `command`" if not step.command else "declares a duration, not a throughput"
        fail([Diagnostic("E741", f"step `{name}` {what}; there is nothing to measure")])
    return step


def _hardware_or_fail(step: Step, file: Path) -> str:
    gpus = profiling.local_accelerators()
    key = profiling.hardware_key(step, gpus)
    if key is not None:
        return key
    here = ", ".join(gpus) if gpus else "no GPU"
    fail(
        [
            Diagnostic(
                "E740",
                f"step `{step.name}` runs on {' or '.join(step.accelerators)}; this machine has "
                f"{here}",
                help=(
                    f"run `exoc profile {file} {step.name}` on a machine with "
                    f"{' or '.join(step.accelerators)} (and copy the lines it prints, or its "
                    "`-o` file, back)",
                    "or run the workflow there and turn its ledger into a calibration file: "
                    f"`exoc calibrate {file}`",
                ),
            )
        ]
    )


def default_batch_sizes(step: Step, key: str) -> list[int]:
    if step.batch_sizes:
        return sorted(step.batch_sizes)
    tp = step.throughput
    if tp is not None and key in tp.per_batch:
        return sorted(tp.per_batch[key])
    return [1]


def _input_or_fail(step: Step, given: Path | None, datasets: dict[str, str]) -> str:
    if given is not None:
        return str(given.resolve())
    if step.input is None:
        return ""
    if step.input.kind == "dataset":
        return datasets.get(step.input.name, "")
    fail(
        [
            Diagnostic(
                "E742",
                f"step `{step.name}` reads the output of step `{step.input.name}`, which a "
                "profile does not produce",
                help=("give a folder with a sample of it: `--input DIR`",),
            )
        ]
    )


def is_batched(step: Step, key: str, sizes: Sequence[int]) -> bool:
    """Whether the measured throughput is keyed by batch size (else one rate)."""
    tp = step.throughput
    return bool(step.batch_sizes) or (tp is not None and key in tp.per_batch) or len(sizes) > 1


def lines(key: str, results: Sequence[Measurement], items: int, batched: bool) -> list[str]:
    """The ``throughput`` and ``startup`` lines to paste into the step."""
    rates = {m.batch_size: m.items_per_s for m in results if m.items_per_s}
    if batched:
        body = ", ".join(f"{b}: {r:.4g}" for b, r in sorted(rates.items()))
        tp = f"throughput {{ {key} = {{ {body} }} }}"
    else:
        tp = f"throughput {{ {key} = {statistics.fmean(rates.values()):.4g} }}"
    startups = [m.startup_s for m in results if m.startup_s is not None]
    out = [
        f"# measured by `exoc profile` on this machine ({key}), {items} items per batch size",
        tp,
    ]
    if startups:
        out.append(f"startup = {statistics.median(startups):.3g}s")
    return out


def _check(results: Sequence[Measurement]) -> None:
    bad = [m for m in results if m.exit_code != 0 or not m.items_per_s]
    if bad:
        m = bad[0]
        why = (
            f"exited with code {m.exit_code}" if m.exit_code else "committed too little to measure"
        )
        tail = [ln for ln in m.log.splitlines() if ln.strip()][-8:]
        fail(
            [
                Diagnostic(
                    "E743",
                    f"at batch size {m.batch_size} the command {why} ({m.items} items committed)",
                    help=(
                        "commands are measured through the worker helper's records "
                        "(`from exo.worker import shard`); see docs/resumable-commands.md",
                    ),
                    notes=tuple(tail),
                )
            ]
        )


def _calibration(
    step: Step, key: str, results: Sequence[Measurement], batched: bool
) -> calibration.Calibration:
    rates = {
        str(m.batch_size) if batched else calibration.UNBATCHED: m.items_per_s
        for m in results
        if m.items_per_s
    }
    if not batched:
        rates = {calibration.UNBATCHED: statistics.fmean(v for v in rates.values() if v)}
    startups = [m.startup_s for m in results if m.startup_s is not None]
    sc = calibration.StepCalibration(
        startup_s=statistics.median(startups) if startups else None,
        throughput={key: {k: float(v) for k, v in rates.items() if v}},
    )
    return calibration.Calibration(source="exoc profile", steps={step.name: sc})


def profile(
    file: FILE,
    step_name: Annotated[str, typer.Argument(metavar="STEP", help="The step to measure.")],
    batch_sizes: Annotated[
        str | None,
        typer.Option(
            "--batch-sizes",
            metavar="B,B,...",
            help="Batch sizes to measure (default: the step's declared ones).",
        ),
    ] = None,
    items: Annotated[
        int | None,
        typer.Option(
            "--items",
            min=1,
            metavar="N",
            help="Items per batch size (default: 4 batches of the largest).",
        ),
    ] = None,
    input_dir: Annotated[
        Path | None,
        typer.Option("--input", metavar="DIR", help="A sample of the step's input ({input})."),
    ] = None,
    output: Annotated[
        Path | None, output_option("PATH", "Also write (or update) this calibration file.")
    ] = None,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
) -> None:
    """Run a step's command here on a small sample per batch size; print its measured figures."""
    try:
        compiled = compile_file(file, parse_params(params), catalog=catalog, label=str(file))
    except CompileError as e:
        fail(e.diagnostics, e.sources)
    program = compiled.program
    step = _step_or_fail({s.name: s for s in program.steps}, step_name)
    key = _hardware_or_fail(step, file)
    sizes = _parse_sizes(batch_sizes) if batch_sizes else default_batch_sizes(step, key)
    n = items or DEFAULT_ITEMS_PER_BATCH * max(sizes)
    datasets = {name: d.uri or "" for name, d in program.datasets.items()}
    in_path = _input_or_fail(step, input_dir, datasets)
    sys.stderr.write(
        f"profiling `{step.name}` on {key}: {n} items at batch size(s) {', '.join(map(str, sizes))}\n"
    )
    results = profiling.profile(
        step, sizes, n, cwd=Path(compiled.base_dir), input_path=in_path, environ=dict(os.environ)
    )
    _print_measurements(step, key, results)
    _check(results)
    batched = is_batched(step, key, sizes)
    sys.stdout.write("\n".join(lines(key, results, n, batched)) + "\n")
    if output is not None:
        _write_calibration(output, _calibration(step, key, results, batched))
        sys.stderr.write(f"wrote {output}\n")


def _print_measurements(step: Step, key: str, results: Sequence[Measurement]) -> None:
    """One line per batch size on stderr, with the declared rate beside the measured one."""
    for m in results:
        declared = step.throughput.rate(key, m.batch_size) if step.throughput else None
        sys.stderr.write(
            f"  batch {m.batch_size}: {m.items} items, startup "
            f"{'-' if m.startup_s is None else f'{m.startup_s:.3g}s'}, "
            f"{'-' if m.items_per_s is None else f'{m.items_per_s:.4g}'} items/s"
            + (f" (declared {declared:g})" if declared else "")
            + "\n"
        )


def _write_calibration(path: Path, cal: calibration.Calibration) -> calibration.Calibration:
    """Write ``cal`` to ``path``, merged into the calibration file already there."""
    if path.exists():
        try:
            cal = calibration.load(path).merged(cal)
        except CompileError as e:
            fail(e.diagnostics)
    path.write_text(cal.to_json(), "utf-8")
    return cal


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        sys.stderr.write(
            f"error: --batch-sizes wants positive integers separated by commas, not {text!r}\n"
        )
        raise typer.Exit(Exit.USAGE)
    return sizes


def calibrate(
    ctx: typer.Context,
    file: FILE,
    target: TARGET = "local",
    state_dir: Path | None = STATE_DIR_OPTION,
    run_id: Annotated[
        str | None,
        typer.Option("--run", metavar="ID", help="This run instead of the latest one."),
    ] = None,
    output: Annotated[
        Path | None,
        output_option(
            "PATH",
            "The calibration file to write or update (default: FILE's stem + "
            "`.calibration.json`, beside it).",
        ),
    ] = None,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
) -> None:
    """Turn a run's ledger into a calibration file for `--calibration`."""
    from exo.backends.runtime import calibrate as calibrate_mod
    from exo.backends.runtime import ledger

    if run_id is not None:
        planned, _ = plan_or_exit(file, params, catalog, None)
        folder = (state_dir or default_state_dir(file)).resolve()
        path = calibrate_mod.find_ledger(folder, run_id)
    else:
        rep, planned = drive(ctx, Request(file, target, params, catalog), "read", Run(state_dir))
        path = Path(rep.ledger) if rep.ledger else None
    if path is None or not path.is_file():
        which = f"run {run_id}" if run_id else "the latest run"
        fail(
            [
                Diagnostic(
                    "E702",
                    f"no ledger of {which} of {file} (target {target})",
                    help=("run it first with `exoc run`; `exoc status` shows the runs",),
                )
            ]
        )
    book = ledger.load(path)
    plan = Plan.model_validate(book.plan) if book.plan else planned.plan
    out = output or file.with_name(f"{file.stem}.calibration.json")
    cal = _write_calibration(
        out, calibrate_mod.from_ledger(planned.program, plan, planned.catalog, book)
    )
    sys.stderr.write(
        f"wrote {out}: {len(cal.steps)} step(s), {len(cal.instance_types)} spot instance type(s); "
        f"plan with `exoc plan {file} --calibration {out}`\n"
    )


def register(app: typer.Typer) -> None:
    app.command()(profile)
    app.command(cls=BackendFlagsCommand)(calibrate)
