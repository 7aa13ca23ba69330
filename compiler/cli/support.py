"""What every ``exoc`` command shares: params, compiling with diagnostics, exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from exo.compiler.diagnostics import (
    CompileError,
    Diagnostic,
    print_diagnostics,
    render_json,
)

if TYPE_CHECKING:  # the front end loads when a command compiles, not for --help
    from exo.compiler.frontend import Compiled


class Exit(IntEnum):
    OK = 0
    DIAGNOSTICS = 1
    USAGE = 2
    INFEASIBLE = 3
    INTERRUPTED = 130


def stderr_console() -> Console:
    """Colour only on a terminal (rich's own detection; NO_COLOR is honoured)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


#: The workflow file argument of every command that takes one.
FILE = Annotated[
    Path, typer.Argument(metavar="FILE", help="The workflow file (.exo).", show_default=False)
]
PARAM_OPTION = typer.Option(
    [], "-p", "--param", metavar="NAME=VALUE", help="Override a param (repeatable)."
)
CATALOG_OPTION = typer.Option(
    None, "--catalog", metavar="PATH", help="Use this catalog (built-in name or CSV path)."
)
CALIBRATION_OPTION = typer.Option(
    None,
    "--calibration",
    metavar="FILE",
    help="Plan with the measured figures of this file (`exoc profile -o`, `exoc calibrate`).",
)
DIAG_FORMAT_OPTION = typer.Option(
    "text", "--diagnostics-format", metavar="text|json", help="How errors are printed."
)


def parse_params(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="-p")
        out[name.strip()] = value
    return out


def report(diagnostics: Sequence[Diagnostic], sources: dict[str, str], fmt: str = "text") -> None:
    if fmt == "json":
        sys.stdout.write(render_json(diagnostics) + "\n")
    else:
        print_diagnostics(diagnostics, sources, stderr_console())


def compile_or_exit(
    file: Path,
    params: Sequence[str] = (),
    catalog: str | None = None,
    fmt: str = "text",
) -> Compiled:
    """Compile, or print every diagnostic and exit 1; warnings go to stderr either way."""
    from exo.compiler.frontend import compile_file

    try:
        compiled = compile_file(file, parse_params(params), catalog=catalog, label=str(file))
    except CompileError as e:
        report(e.diagnostics, e.sources, fmt)
        raise typer.Exit(Exit.DIAGNOSTICS) from None
    if compiled.warnings:
        print_diagnostics(compiled.warnings, compiled.sources, stderr_console())
    return compiled


def calibrate_or_exit(compiled: Compiled, path: Path | None) -> tuple[Compiled, list[str]]:
    """``compiled`` with a calibration file's figures (E230 and exit 1 if it is not one)."""
    from exo.compiler.calibration import calibrate_compiled

    try:
        return calibrate_compiled(compiled, path)
    except CompileError as e:
        report(e.diagnostics, e.sources)
        raise typer.Exit(Exit.DIAGNOSTICS) from None
