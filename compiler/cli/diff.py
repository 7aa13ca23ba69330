"""``exoc diff``: what changed between two saved plans, per step and in total."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exo.compiler.cli.options import choose, format_option, output_option
from exo.compiler.cli.report import file_width, load_compare
from exo.compiler.cli.support import Exit, write_file

DIFF_FORMATS = ("text", "json", "markdown", "md")


def diff(
    old: Annotated[
        Path, typer.Argument(metavar="OLD", help="The earlier plan (exoc plan --format json).")
    ],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The later plan.")],
    fmt: Annotated[str, format_option("text|markdown|json", "The diff format.")] = "text",
    output: Annotated[Path | None, output_option("PATH", "Write the diff to this file.")] = None,
    unchanged: Annotated[
        bool, typer.Option("--unchanged", help="List unchanged steps too.")
    ] = False,
) -> None:
    """Compare two saved plans: what changed per step (tier, batch, replicas, cost, time) and in total."""
    choose(fmt, DIFF_FORMATS)
    from exo.compiler.report import diff as diffmod
    from exo.compiler.report import markdown, text

    a = load_compare(old)
    b = load_compare(new)
    assert a is not None and b is not None
    d = diffmod.diff_plans(a, b, str(old), str(new))
    if fmt == "json":
        content = json.dumps(diffmod.to_json(d), indent=2, sort_keys=True) + "\n"
    elif fmt in ("markdown", "md"):
        content = markdown.render_diff(d, unchanged=unchanged)
    else:
        console = Console(highlight=False)
        if output is None and console.is_terminal:
            console.print(text.diff_renderable(d, unchanged=unchanged))
            raise typer.Exit(Exit.OK)
        content = text.render_plain_renderable(
            text.diff_renderable(d, unchanged=unchanged), file_width()
        )
    if output is None:
        sys.stdout.write(content)
    else:
        write_file(output, content)
    raise typer.Exit(Exit.OK)


def register(app: typer.Typer) -> None:
    app.command()(diff)
