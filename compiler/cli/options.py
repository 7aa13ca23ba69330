"""Every option more than one ``exoc`` command takes, declared once.

A command names these in its signature (``params: list[str] = PARAM_OPTION``,
``target: TARGET = "local"``), so that one option reads, parses and is checked
the same way in every command. The values an option accepts are checked here
too (:func:`choose`, :func:`resolve_time_limit`): a bad value is a usage error
(exit 2) that names the option.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

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
#: The backend of ``compile``, ``run``, ``status``, ``cancel`` and ``calibrate``.
TARGET = Annotated[
    str,
    typer.Option(
        "--target", "-t", metavar="NAME", help="The backend (`exoc backends` lists them)."
    ),
]
STATE_DIR_OPTION = typer.Option(
    None,
    "--state-dir",
    metavar="DIR",
    help="Where run state, logs and staging live (default: .exo/<file stem> next to FILE).",
)


def time_limit_option(default: str) -> Any:
    """``--time-limit SECONDS``; ``default`` says what happens without it (the value is
    checked by :func:`resolve_time_limit`, the same way for every command)."""
    return typer.Option(
        "--time-limit",
        metavar="SECONDS",
        help=f"Stop the search after this long with the best plan found and its gap ({default}).",
    )


#: ``--time-limit`` of the commands that plan to the end unless told otherwise.
TIME_LIMIT = Annotated[float | None, time_limit_option("default: no limit")]


def format_option(metavar: str, help: str) -> Any:
    """``--format``: every command that prints in several formats names them in ``metavar``."""
    return typer.Option("--format", metavar=metavar, help=help)


def output_option(metavar: str, help: str) -> Any:
    """``-o``/``--output``: where a command writes instead of stdout."""
    return typer.Option("-o", "--output", metavar=metavar, help=help)


def choose(value: str, allowed: Sequence[str], flag: str = "--format") -> str:
    """``value`` if it is one of ``allowed``, else a usage error naming the choices."""
    if value not in allowed:
        raise typer.BadParameter(f"choose one of {', '.join(allowed)}", param_hint=flag)
    return value


def resolve_time_limit(seconds: float | None, *, unlimited: bool = False) -> float | None:
    """``--time-limit`` in seconds, or ``None`` for no limit (``inf``).

    Without the option: the optimizer's default (60 s), or no limit when
    ``unlimited`` (the commands that plan to the end unless told). Zero,
    negative or NaN is a usage error."""
    if seconds is None:
        if unlimited:
            return None
        from exo.compiler.optimizer import DEFAULT_TIME_LIMIT_S

        return DEFAULT_TIME_LIMIT_S
    if not seconds > 0:  # zero, negative or NaN
        raise typer.BadParameter(
            "must be a positive number of seconds ('inf' for no limit)", param_hint="--time-limit"
        )
    return None if seconds == float("inf") else seconds
