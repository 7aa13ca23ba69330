"""``exoc backends``: the installed backends, what they can do and their options."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from exo.backends.api import Backend
from exo.backends.registry import installed, option_rows
from exo.compiler.cli.backend_flags import options_listing
from exo.compiler.cli.options import format_option
from exo.compiler.cli.support import Exit, report, stdout_console


def describe(b: Backend) -> dict[str, object]:
    """One backend in ``exoc backends --format json``."""
    return {
        "name": b.name,
        "api_version": b.api_version,
        "description": b.description,
        "capabilities": b.capabilities.model_dump(),
        "options": [
            {"flag": f, "type": t, "default": d, "description": h} for f, t, d, h in option_rows(b)
        ],
    }


def backends(
    fmt: Annotated[str, format_option("text|json", "The output format.")] = "text",
) -> None:
    """List the installed backends and their options (exit 1 if a plugin is broken)."""
    registry = installed()
    if fmt == "json":
        data = [describe(b) for b in registry.backends.values()]
        sys.stdout.write(json.dumps({"backends": data}, indent=2, sort_keys=True) + "\n")
    else:
        console = stdout_console()
        for b in registry.backends.values():
            caps = [k for k, v in b.capabilities.model_dump().items() if v]
            console.print(
                f"[bold]{b.name}[/bold] (API {b.api_version}; "
                f"{', '.join(caps) if caps else 'emit only'}): {b.description}",
                highlight=False,
            )
            console.print(options_listing(b, console.width), end="", markup=False, highlight=False)
    if registry.problems:
        report(list(registry.problems), {})
        raise typer.Exit(Exit.DIAGNOSTICS)


def register(app: typer.Typer) -> None:
    app.command()(backends)
