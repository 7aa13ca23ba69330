"""The ``exoc`` command line (DESIGN §5).

Exit codes: 0 success, 1 diagnostics, 2 usage error, 3 infeasible plan,
130 interrupted. Commands live in their own modules and are registered here,
in one list, so that the whole surface is visible in one place.
"""

from __future__ import annotations

import sys

import typer
from exo.compiler import __version__

app = typer.Typer(
    name="exoc",
    help="exo: compile batch AI workflows into the cheapest plan that meets the deadline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"exoc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """exo: compile batch AI workflows into the cheapest plan that meets the deadline."""


def _register_commands() -> None:
    # One line per command module; each exposes ``register(app)``.
    from exo.compiler import commands_frontend

    commands_frontend.register(app)
    from exo.backends import commands as commands_backends

    commands_backends.register(app)
    from exo.compiler import commands_plan

    commands_plan.register(app)
    from exo.compiler.report import commands as commands_report

    commands_report.register(app)


_register_commands()


def main() -> None:
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
