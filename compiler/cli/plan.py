"""``exoc plan``: the dry-run cost report (DESIGN §4, §5).

``--format json`` prints exactly ``Plan.model_dump(mode="json")`` with sorted
keys; the other formats are the report (``exo.compiler.report``). Exit 0 with a plan,
3 when the workflow is infeasible (the explanation says why), 1 for diagnostics.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from exo.compiler import calibration as calibration_mod
from exo.compiler.cli_support import (
    CALIBRATION_OPTION,
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    Exit,
    calibrate_or_exit,
    compile_or_exit,
    stderr_console,
)
from exo.compiler.report import commands as report_commands

if TYPE_CHECKING:
    from exo.compiler.plan import Plan

#: text, json, html, markdown (md); every format but plain JSON is rendered by exo.compiler.report.
FORMATS = report_commands.FORMATS


def resolve_time_limit(seconds: float | None) -> float | None:
    """``--time-limit``: the default when absent, no limit for ``inf``."""
    if seconds is None:
        from exo.compiler.optimizer import DEFAULT_TIME_LIMIT_S

        return DEFAULT_TIME_LIMIT_S
    if not seconds > 0:  # zero, negative or NaN
        raise typer.BadParameter(
            "must be a positive number of seconds ('inf' for no limit)", param_hint="--time-limit"
        )
    return None if seconds == float("inf") else seconds


def plan_json(plan: Plan) -> str:
    """The DESIGN §4 object: sorted keys, one trailing newline."""
    return json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def plan(
    file: FILE,
    fmt: Annotated[
        str, typer.Option("--format", metavar="text|json|html|markdown", help="The report format.")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="PATH", help="Write the report to this file."),
    ] = None,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            metavar="SECONDS",
            help=(
                "Stop the search after this long with the best plan and its proven gap "
                "(default 60; 'inf' for no limit). Ctrl-C also stops it with the best plan so far."
            ),
        ),
    ] = None,
    what_if: list[str] = report_commands.WHAT_IF_OPTION,
    compare: Path | None = report_commands.COMPARE_OPTION,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Plan a workflow: the cheapest placement meeting deadline, budget and quotas."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    limit = resolve_time_limit(time_limit)
    sweeps = report_commands.parse_sweeps(what_if)
    earlier = report_commands.load_compare(compare)
    from exo.compiler.optimizer import optimize
    from exo.compiler.planning_ui import planning

    compiled, notes = calibrate_or_exit(compile_or_exit(file, params, catalog), calibration)
    with planning() as ui:
        result = optimize(
            compiled.program,
            compiled.catalog,
            time_limit_s=limit,
            progress=ui.progress,
            stop=ui.stop,
        )
    result = calibration_mod.annotate(result, notes)
    time_limit = limit
    if fmt != "json" or sweeps or earlier is not None:
        report_commands.emit(
            fmt,
            result,
            compiled,
            sweeps=sweeps,
            compare=earlier,
            compare_label=str(compare),
            output=output,
            time_limit_s=time_limit,
        )
        raise typer.Exit(Exit.INFEASIBLE if result.status == "infeasible" else Exit.OK)
    text = plan_json(result)  # the DESIGN §4 object, exactly
    if output is not None:
        report_commands.write_file(output, text)
        stderr_console().print(f"plan written to {output} ({result.status})")
    else:
        sys.stdout.write(text)
    raise typer.Exit(Exit.INFEASIBLE if result.status == "infeasible" else Exit.OK)


def register(app: typer.Typer) -> None:
    app.command()(plan)
