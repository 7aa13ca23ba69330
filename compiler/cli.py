"""The ``exoc`` command line (DESIGN §5).

Exit codes: 0 success, 1 diagnostics, 2 usage error, 3 infeasible plan,
130 interrupted. Commands live in their own modules and are registered here,
in one list, so that the whole surface is visible in one place.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperCommand

from exo.backends import commands as backend_commands
from exo.compiler import __version__, commands_frontend, commands_plan, commands_simulate
from exo.compiler.cli_help import ExoCommand, ExoGroup
from exo.compiler.report import commands as report_commands

app = typer.Typer(
    name="exoc",
    cls=ExoGroup,
    help="exo: compile batch AI workflows into the cheapest plan that meets the deadline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
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


#: Every command module, in the order their commands appear in ``--help``;
#: each exposes ``register(app)``.
COMMAND_MODULES = (
    commands_frontend,
    commands_plan,
    commands_simulate,
    report_commands,
    backend_commands,
)

for _module in COMMAND_MODULES:
    _module.register(app)
# Every command writes its help with argument names and full option names.
for _info in app.registered_commands:
    if _info.cls in (None, TyperCommand):
        _info.cls = ExoCommand


def main() -> None:
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as e:  # a bug in exoc, never a user error: no traceback by default
        if os.environ.get("EXO_DEBUG"):
            raise
        sys.stderr.write(
            f"error[E901]: internal compiler error: {type(e).__name__}: {e}\n"
            "  help: this is a bug in exoc; please report it with the input that triggers it\n"
            "  help: set EXO_DEBUG=1 to see the traceback\n"
        )
        sys.exit(1)
