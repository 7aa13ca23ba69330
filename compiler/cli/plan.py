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

from exo.compiler.cli import report as report_commands
from exo.compiler.cli.options import (
    CALIBRATION_OPTION,
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    choose,
    format_option,
    output_option,
    resolve_time_limit,
    time_limit_option,
)
from exo.compiler.cli.support import (
    Exit,
    calibrate_or_exit,
    compile_or_exit,
    stderr_console,
    write_file,
)

if TYPE_CHECKING:
    from exo.compiler.frontend import Compiled
    from exo.compiler.plan import Plan

#: text, json, html, markdown (md); every format but plain JSON is rendered by exo.compiler.report.
FORMATS = report_commands.FORMATS


def plan_json(plan: Plan) -> str:
    """The DESIGN §4 object: sorted keys, one trailing newline."""
    return json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def keep(compiled: Compiled, notes: list[str], limit: float | None, result: Plan) -> None:
    """Keep the plan shown, for the verbs that run it (:mod:`exo.compiler.plancache`)."""
    from exo.compiler.plancache import PlanCache

    cache = PlanCache.from_environ()
    if cache is not None:
        cache.store(cache.key(compiled.program, compiled.catalog, notes), limit, result)


def plan(
    ctx: typer.Context,
    file: FILE,
    fmt: Annotated[str, format_option("text|json|html|markdown", "The report format.")] = "text",
    output: Annotated[Path | None, output_option("PATH", "Write the report to this file.")] = None,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: Annotated[
        float | None,
        time_limit_option(
            "default 60; 'inf' for no limit; Ctrl-C also stops it with the best plan so far"
        ),
    ] = None,
    what_if: list[str] = report_commands.WHAT_IF_OPTION,
    compare: Path | None = report_commands.COMPARE_OPTION,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Plan a workflow: the cheapest placement meeting deadline, budget and quotas."""
    choose(fmt, FORMATS)
    limit = resolve_time_limit(time_limit)
    sweeps = report_commands.parse_sweeps(what_if)
    earlier = report_commands.load_compare(compare)
    from exo.compiler.cli.planning import planning
    from exo.compiler.pipeline import plan_compiled

    compiled, notes = calibrate_or_exit(compile_or_exit(file, params, catalog), calibration)
    with planning() as ui:
        result = plan_compiled(
            compiled,
            time_limit_s=limit,
            notes=notes,
            progress=ui.progress,
            stop=ui.stop,
            started=ctx.obj if isinstance(ctx.obj, float) else None,  # see cli.main
        )
    if not ui.interrupted[0]:
        keep(compiled, notes, limit, result)
    code = Exit.INFEASIBLE if result.status == "infeasible" else Exit.OK
    if fmt != "json" or sweeps or earlier is not None:
        report_commands.emit(
            fmt,
            result,
            compiled,
            sweeps=sweeps,
            compare=earlier,
            compare_label=str(compare),
            output=output,
            time_limit_s=limit,
        )
        raise typer.Exit(code)
    text = plan_json(result)  # the DESIGN §4 object, exactly
    if output is not None:
        write_file(output, text)
        stderr_console().print(f"plan written to {output} ({result.status})")
    else:
        sys.stdout.write(text)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(plan)
