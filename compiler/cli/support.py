"""What every ``exoc`` command shares: exit codes, consoles, reporting diagnostics, and
the library's entry points (:mod:`exo.compiler.pipeline`) with their failures turned
into exit codes.

The front end and the optimizer load when a command calls them, not when a command's
module is imported, so that ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from exo.compiler.cli.options import resolve_time_limit
from exo.compiler.diagnostics import (
    CompileError,
    Diagnostic,
    Severity,
    print_diagnostics,
    render_json,
)

if TYPE_CHECKING:  # the front end loads when a command compiles, not for --help
    from rich.console import Console

    from exo.compiler.frontend import Compiled
    from exo.compiler.plan import Plan
    from exo.compiler.planned import PlannedWorkflow


class Exit(IntEnum):
    OK = 0
    DIAGNOSTICS = 1
    USAGE = 2
    INFEASIBLE = 3
    INTERRUPTED = 130


#: One line of styled text: (text, rich style) parts, the style ``""`` for none.
Line = tuple[tuple[str, str], ...]


def stderr_console() -> Console:
    """Colour only on a terminal (rich's own detection; NO_COLOR is honoured)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def plain_stderr() -> bool:
    """Would rich print to stderr without escape codes? Not a terminal, and neither
    ``TTY_COMPATIBLE`` nor ``FORCE_COLOR`` (the variables rich reads) says otherwise."""
    env = os.environ
    if env.get("TTY_COMPATIBLE") in ("0", "1"):
        return env["TTY_COMPATIBLE"] == "0"
    if "FORCE_COLOR" in env:
        return env["FORCE_COLOR"] == ""
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):
        return True


def print_line(line: Line) -> None:
    """``line`` on stderr: styled through rich on a terminal, else as plain text, the
    same characters rich would write, without loading rich (30-50 ms of start-up)."""
    if plain_stderr():
        sys.stderr.write("".join(text for text, _ in line) + "\n")
        return
    from rich.text import Text

    stderr_console().print(Text.assemble(*line))


#: The variable with which pydantic skips its plugins (``"__all__"``: every one).
PYDANTIC_PLUGINS_VAR = "PYDANTIC_DISABLE_PLUGINS"


@contextmanager
def pydantic_plugins_off() -> Iterator[None]:
    """pydantic's plugins off for the models built inside, the environment as it was
    after (a user's own value kept, nothing left for a child process to inherit).

    pydantic looks for plugins when the first model class is built: it reads every
    installed distribution's entry points (about 2% of ``exoc check`` of a small file,
    more with many packages installed). typer does the same for its own adapters."""
    previous = os.environ.get(PYDANTIC_PLUGINS_VAR)
    os.environ[PYDANTIC_PLUGINS_VAR] = "__all__"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[PYDANTIC_PLUGINS_VAR]
        else:
            os.environ[PYDANTIC_PLUGINS_VAR] = previous


def load_front_end() -> None:
    """Import :mod:`exo.compiler.pipeline` (the front end: IR and catalog models) with
    pydantic's plugins off: ``exoc`` uses none, and the search for them is start-up
    time. The compiling commands call this before they import the pipeline (``profile``
    and ``calibrate`` import it with their module, with pydantic's default).

    The start-up is over then: the cyclic garbage collector, paused by the ``exoc``
    script (:mod:`exo.compiler.launch`), resumes."""
    from exo.compiler.launch import resume

    try:
        with pydantic_plugins_off():
            import exo.compiler.pipeline  # noqa: F401
    finally:
        resume()


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``-p NAME=VALUE`` options as a mapping (a usage error if one has no ``=``)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="-p")
        out[name.strip()] = value
    return out


def report(
    diagnostics: Sequence[Diagnostic], sources: Mapping[str, str], fmt: str = "text"
) -> None:
    """Print diagnostics: rendered with their source lines on stderr, or JSON on stdout."""
    if fmt == "json":
        sys.stdout.write(render_json(diagnostics) + "\n")
    else:
        print_diagnostics(diagnostics, dict(sources), stderr_console())


def fail(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str] | None = None) -> NoReturn:
    """Print the diagnostics and exit 1."""
    report(list(diagnostics), sources or {})
    raise typer.Exit(Exit.DIAGNOSTICS)


def report_or_fail(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str]) -> None:
    """Print the diagnostics; exit 1 if one of them is an error (warnings only: go on)."""
    if any(d.severity is Severity.ERROR for d in diagnostics):
        fail(diagnostics, sources)
    if diagnostics:
        report(list(diagnostics), sources)


def write_file(path: Path, content: str) -> None:
    """Write an ``-o`` file; a path that cannot be written is a usage error (exit 2)."""
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as e:
        cannot_write(path, e)


def cannot_write(where: Path | str, e: OSError) -> NoReturn:
    """``-o`` names a file, a read-only place, ...: the user's to fix (exit 2)."""
    stderr_console().print(f"[bold red]error[/]: cannot write {where}: {e.strerror or e}")
    raise typer.Exit(Exit.USAGE) from None


def infeasible_exit(file: Path, plan: Plan) -> NoReturn:
    """``no feasible plan for FILE`` and the plan's explanation on stderr, exit 3."""
    console = stderr_console()
    console.print(f"[bold red]no feasible plan[/bold red] for {file}", highlight=False)
    for line in plan.explanation:
        console.print(f"  {line}", markup=False, highlight=False)
    raise typer.Exit(Exit.INFEASIBLE)


def compile_or_exit(
    file: Path,
    params: Sequence[str] = (),
    catalog: str | None = None,
    fmt: str = "text",
) -> Compiled:
    """Compile, or print every diagnostic and exit 1; warnings go to stderr either way."""
    load_front_end()
    from exo.compiler.pipeline import compile_file

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
    load_front_end()
    from exo.compiler.pipeline import calibrated

    try:
        return calibrated(compiled, path)
    except CompileError as e:
        fail(e.diagnostics, e.sources)


def plan_or_exit(
    file: Path,
    params: Sequence[str],
    catalog: str | None,
    time_limit: float | None,
    calibration: Path | None = None,
) -> tuple[PlannedWorkflow, dict[str, str]]:
    """:func:`~exo.compiler.pipeline.plan_for`, or its diagnostics (exit 1) or why no
    plan exists (exit 3)."""
    load_front_end()
    from exo.compiler.pipeline import Infeasible, plan_for
    from exo.compiler.plancache import PlanCache

    limit = resolve_time_limit(time_limit, unlimited=True)
    cache = PlanCache.from_environ()
    try:
        return plan_for(file, parse_params(params), catalog, limit, calibration, cache)
    except CompileError as e:
        fail(e.diagnostics, e.sources)
    except Infeasible as e:
        infeasible_exit(file, e.plan)
