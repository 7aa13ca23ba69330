"""``exoc check``, ``exoc graph`` and ``exoc ir``: the front end's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from exo.compiler.cli_support import (
    CATALOG_OPTION,
    DIAG_FORMAT_OPTION,
    PARAM_OPTION,
    Exit,
    compile_or_exit,
    parse_params,
    report,
    stderr_console,
)
from exo.compiler.diagnostics import CompileError, Diagnostic
from exo.compiler.frontend import compile_file
from exo.compiler.graphviz import to_dot, to_mermaid

FILE = Annotated[Path, typer.Argument(help="The workflow file (.exo).", show_default=False)]


def check(
    files: Annotated[list[Path], typer.Argument(help="Workflow files to check.")],
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    diagnostics_format: str = DIAG_FORMAT_OPTION,
) -> None:
    """Validate workflows: exit 0, or 1 with every problem reported."""
    failed = False
    every: list[Diagnostic] = []
    warned = 0
    for f in files:
        try:
            compiled = compile_file(f, parse_params(params), catalog=catalog, label=str(f))
        except CompileError as e:
            failed = True
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
    elif not failed:
        note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        stderr_console().print(
            f"[green]ok[/green]: {len(files)} file{'s' if len(files) != 1 else ''} checked{note}"
        )
    raise typer.Exit(Exit.DIAGNOSTICS if failed else Exit.OK)


def graph(
    file: FILE,
    fmt: Annotated[str, typer.Option("--format", help="dot or mermaid.")] = "dot",
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
) -> None:
    """Print the workflow DAG (steps and datasets) as Graphviz dot or Mermaid."""
    if fmt not in ("dot", "mermaid"):
        raise typer.BadParameter("choose dot or mermaid", param_hint="--format")
    compiled = compile_or_exit(file, params, catalog)
    out = to_dot(compiled.program) if fmt == "dot" else to_mermaid(compiled.program)
    sys.stdout.write(out)


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
