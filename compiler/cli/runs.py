"""``exoc run``, ``status`` and ``cancel``: one skeleton, three verbs of a runnable backend.

Each verb prepares the same way (:func:`exo.compiler.cli.targets.prepare`: the
``--target`` backend, the plan, the backend's options), hands the backend a
:class:`RunContext` (the workflow file, the state folder, ``--jobs``, ``--fresh``,
the environment) and prints the :class:`RunReport` it returns; ``status`` adds
the run's planned vs actual (:mod:`exo.compiler.cli.status_view`).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from exo.backends.api import (
    PlannedWorkflow,
    RunContext,
    RunnableBackend,
    RunReport,
    StepProgress,
)
from exo.compiler.cli.backend_flags import BackendFlagsCommand
from exo.compiler.cli.options import (
    CALIBRATION_OPTION,
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    STATE_DIR_OPTION,
    TARGET,
    TIME_LIMIT,
    choose,
    format_option,
)
from exo.compiler.cli.support import fail, stderr_console, stdout_console
from exo.compiler.cli.targets import Request, prepare, shown
from exo.compiler.diagnostics import CompileError


@dataclass(frozen=True, slots=True)
class Run:
    """Where a verb acts: the state folder, and for ``run`` its concurrency and ``--fresh``."""

    state_dir: Path | None = None
    jobs: int | None = None
    fresh: bool = False


def default_state_dir(workflow_file: Path) -> Path:
    """``.exo/<stem>`` beside the workflow file: one state directory per workflow."""
    return workflow_file.resolve().parent / ".exo" / workflow_file.stem


def run_context(file: Path, run: Run) -> RunContext:
    return RunContext(
        workflow_file=str(file.resolve()),
        state_dir=str((run.state_dir or default_state_dir(file)).resolve()),
        jobs=run.jobs,
        fresh=run.fresh,
        progress="rich" if sys.stderr.isatty() else "plain",
        environ=dict(os.environ),
    )


#: What each verb says when the backend cannot do it ("cannot {…} workflows").
VERB_PHRASE = {"run": "run", "status": "report the status of", "cancel": "cancel", "read": "read"}


def drive(
    ctx: typer.Context,
    req: Request,
    verb: Literal["run", "status", "cancel", "read"],
    run: Run = Run(),
) -> tuple[RunReport, PlannedWorkflow]:
    """The one skeleton: prepare, call the backend's ``verb`` (``read``: its status, for
    ``calibrate``), and turn its diagnostics into exit 1."""
    p = prepare(ctx, req, runnable=VERB_PHRASE[verb], check=verb == "run")
    backend, context = p.backend, run_context(req.file, run)
    assert isinstance(backend, RunnableBackend)  # prepare(runnable=...) made sure
    act = {"run": backend.run, "cancel": backend.cancel}.get(verb, backend.status)
    try:
        return act(p.planned, p.options, context), p.planned
    except CompileError as e:
        fail(shown(e.diagnostics, req.file), e.sources or p.sources)


_STATE_STYLE = {
    "done": "green",
    "running": "cyan",
    "submitted": "cyan",
    "failed": "red",
    "blocked": "yellow",
    "interrupted": "yellow",
    "cancelled": "yellow",
}


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/{style}]" if style else state


#: A run report of more steps than this lists only those neither done nor pending, and
#: counts the others: 5,000 rows took 4 s to lay out and scrolled everything else away.
TABLE_STEPS = 30


def _listed(steps: list[StepProgress]) -> tuple[list[StepProgress], str]:
    """The steps the report's table lists, and a line counting those it leaves out."""
    if len(steps) <= TABLE_STEPS:
        return steps, ""
    listed = [s for s in steps if s.state not in ("done", "pending")][:TABLE_STEPS]
    left = Counter(s.state for s in steps) - Counter(s.state for s in listed)
    counts = ", ".join(f"{n:,} {state}" for state, n in sorted(left.items()))
    return listed, (
        f"{sum(left.values()):,} more steps: {counts} "
        "(`exoc status FILE --format json` lists every step)"
    )


def print_report(rep: RunReport, console: Console) -> None:
    head = f"{rep.workflow}: {_styled(rep.state)}" if rep.state in _STATE_STYLE else rep.state
    if rep.run_id:
        head += f" (run {rep.run_id})"
    console.print(head, highlight=False)
    listed, left = _listed(rep.steps)
    if listed:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("step", "state", "shards", "running", "retries", "preempted"):
            table.add_column(col, justify="left" if col in ("step", "state") else "right")
        for s in listed:
            table.add_row(
                s.name,
                _styled(s.state),
                f"{s.shards_done}/{s.shards_total}",
                str(s.shards_running),
                str(s.retries),
                str(s.preemptions),
            )
        console.print(table)
    if left:
        console.print(left, highlight=False, markup=False)
    for f in rep.failures:
        console.print(
            f"[red]failed[/red]: step {f.step} shard {f.shard} after {f.attempts} attempt(s): "
            f"{f.reason}",
            highlight=False,
        )
        if f.log:
            console.print(f"  log: {f.log}", highlight=False, markup=False)
    for m in rep.messages:
        console.print(m, highlight=False, markup=False)


def emit_status(rep: RunReport, fmt: str, planned: PlannedWorkflow) -> None:
    """``exoc status`` in ``fmt``: the report with the run's planned vs actual."""
    from exo.compiler.cli import status_view  # planned vs actual, from the run's ledger

    found = status_view.ledger_of(rep, planned)  # read once: the ledger may be long
    warning = status_view.calibration_warning(found, planned)
    if warning is not None:
        stderr_console().print(warning, highlight=False, markup=False)
    if fmt == "html":
        sys.stdout.write(status_view.html(found, rep, planned))
        if found is None:
            stderr_console().print("no run ledger yet: the page shows the plan only")
        return
    act = status_view.actuals_for(found, rep, planned)
    if fmt == "json":
        data = rep.model_dump(mode="json")
        data["plan_vs_actual"] = act.model_dump(mode="json") if act else None
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        print_report(rep, stdout_console())
        if act is not None:
            status_view.render(act, stdout_console())


# --- the verbs -----------------------------------------------------------------------------


def run(
    ctx: typer.Context,
    file: FILE,
    target: TARGET = "local",
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help="Concurrent shards (default: CPU count, or a step's shard count if larger).",
        ),
    ] = None,
    state_dir: Path | None = STATE_DIR_OPTION,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new run instead of resuming.")
    ] = False,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: TIME_LIMIT = None,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Execute the workflow (local processes by default); resumes an unfinished run."""
    req = Request(file, target, params, catalog, time_limit, calibration)
    rep, _ = drive(ctx, req, "run", Run(state_dir, jobs, fresh))
    print_report(rep, stdout_console())
    raise typer.Exit(rep.exit_code)


def status(
    ctx: typer.Context,
    file: FILE,
    target: TARGET = "local",
    state_dir: Path | None = STATE_DIR_OPTION,
    fmt: Annotated[
        str,
        format_option(
            "text|json|html",
            "The output format (html: the plan report with planned vs actual and its Gantt).",
        ),
    ] = "text",
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: TIME_LIMIT = None,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Show the state of the workflow's last run."""
    choose(fmt, ("text", "json", "html"))
    req = Request(file, target, params, catalog, time_limit, calibration)
    rep, planned = drive(ctx, req, "status", Run(state_dir))
    emit_status(rep, fmt, planned)


def cancel(
    ctx: typer.Context,
    file: FILE,
    target: TARGET = "local",
    state_dir: Path | None = STATE_DIR_OPTION,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: TIME_LIMIT = None,
) -> None:
    """Stop the workflow's running run (for backends that support it)."""
    req = Request(file, target, params, catalog, time_limit)
    rep, _ = drive(ctx, req, "cancel", Run(state_dir))
    print_report(rep, stdout_console())


def register(app: typer.Typer) -> None:
    for verb in (run, status, cancel):
        app.command(cls=BackendFlagsCommand)(verb)
