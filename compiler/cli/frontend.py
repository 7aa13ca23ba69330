"""``exoc check``, ``exoc graph`` and ``exoc ir``: the front end's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from exo.compiler.cli.options import (
    CATALOG_OPTION,
    DIAG_FORMAT_OPTION,
    FILE,
    PARAM_OPTION,
    choose,
    format_option,
    resolve_time_limit,
    time_limit_option,
)
from exo.compiler.cli.support import (
    Exit,
    Line,
    compile_or_exit,
    infeasible_exit,
    load_front_end,
    parse_params,
    print_line,
    report,
)
from exo.compiler.diagnostics import CompileError, Diagnostic, Severity

if TYPE_CHECKING:
    from exo.compiler.plan import Plan

#: The front end of the last file ``exoc check`` compiled (``compile_file``'s ``hold``):
#: kept until the process ends, which it does without freeing anything (``cli.leave``).
_HELD: list[object] = []

# Each command imports the stages it runs when it runs: `exoc check` never loads the
# optimizer (numpy, scipy, cvxpy) nor the report writers.


def check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Workflow files to check.")],
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    diagnostics_format: str = DIAG_FORMAT_OPTION,
) -> None:
    """Validate workflows: exit 0, or 1 with every problem reported."""
    load_front_end()
    from exo.compiler.pipeline import compile_file

    every: list[Diagnostic] = []
    failed: list[tuple[Path, int]] = []
    warned = 0
    for f in files:
        try:
            compiled = compile_file(
                f, parse_params(params), catalog=catalog, label=str(f), hold=_HELD
            )
        except CompileError as e:
            failed.append((f, sum(1 for d in e.diagnostics if d.severity is Severity.ERROR)))
            if diagnostics_format == "json":
                every.extend(e.diagnostics)
            else:
                report(e.diagnostics, e.sources)
            continue
        warned += len(compiled.warnings)
        if diagnostics_format == "json":
            every.extend(compiled.warnings)
        elif compiled.warnings:
            report(compiled.warnings, compiled.sources)
    if diagnostics_format == "json":
        report(every, {}, "json")
    elif summary := check_summary(len(files), failed, warned):
        print_line(summary)
    raise typer.Exit(Exit.DIAGNOSTICS if failed else Exit.OK)


def check_summary(checked: int, failed: list[tuple[Path, int]], warned: int = 0) -> Line:
    """The last line of ``exoc check``: ``ok``, or, for several files, the grand total."""
    files = f"{checked} file{'s' if checked != 1 else ''} checked"
    if not failed:
        note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        return (("ok", "green"), (f": {files}{note}", ""))
    if checked == 1:
        return ()  # the file's own "N errors found" is the total
    errors = sum(n for _, n in failed)
    return (
        (f"{errors} error{'s' if errors != 1 else ''}", "bold red"),
        (f" in {len(failed)} of {files}: " + ", ".join(str(f) for f, _ in failed), ""),
    )


def graph(
    file: FILE,
    fmt: Annotated[str, format_option("dot|mermaid", "The graph language.")] = "dot",
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Draw the plan: each step's tier, replicas, batch size, start, duration at "
            "the plan's confidence (P) and cost, the critical path in bold.",
        ),
    ] = False,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: Annotated[float | None, time_limit_option("with --plan; default: no limit")] = None,
) -> None:
    """Print the workflow DAG (steps and datasets) as Graphviz dot or Mermaid.

    Without --plan each step shows the hardware it may use; with --plan, where the
    plan puts it. Exit 3 when --plan finds no feasible plan.
    """
    choose(fmt, ("dot", "mermaid"))
    limit = resolve_time_limit(time_limit, unlimited=True)
    from exo.compiler.graphviz import to_dot, to_mermaid

    compiled = compile_or_exit(file, params, catalog)
    planned: Plan | None = None
    if plan:
        from exo.compiler.pipeline import plan_compiled

        planned = plan_compiled(compiled, time_limit_s=limit)
        if planned.status == "infeasible":
            infeasible_exit(file, planned)
    render = to_dot if fmt == "dot" else to_mermaid
    sys.stdout.write(render(compiled.program, planned))


def ir(
    file: FILE,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
) -> None:
    """Print the typed IR as canonical JSON (sorted keys) for tools."""
    compiled = compile_or_exit(file, params, catalog)
    data = compiled.program.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(graph)
    app.command()(ir)
