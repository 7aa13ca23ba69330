"""The ``exoc`` command line (DESIGN §5): the CLI's room.

Exit codes: 0 success, 1 diagnostics, 2 usage error, 3 infeasible plan,
130 interrupted. Commands live in their own modules of this package and are
listed here, in one table, so that the whole surface is visible in one place. A
command's module is imported when the command runs (or shows its own help), so
that every command starts as fast as what it needs allows: ``exoc check`` never
loads the optimizer, the report writers or the backends.

The package is the only part of the compiler that imports ``exo.backends``
(``tests/test_layers.py``); the stages it drives are the library's entry
points in :mod:`exo.compiler.pipeline`. Options shared by several commands are
declared once, in :mod:`exo.compiler.cli.options`.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Sequence

import typer

from exo.compiler import __version__
from exo.compiler.cli.help import ExoGroup

#: Every command, in the order of ``--help``: name -> (the module whose ``register(app)``
#: defines it, the first sentence of its help). ``tests/test_startup.py`` checks that
#: each sentence is the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": (
        "exo.compiler.cli.frontend",
        "Validate workflows: exit 0, or 1 with every problem reported.",
    ),
    "graph": (
        "exo.compiler.cli.frontend",
        "Print the workflow DAG (steps and datasets) as Graphviz dot or Mermaid.",
    ),
    "ir": (
        "exo.compiler.cli.frontend",
        "Print the typed IR as canonical JSON (sorted keys) for tools.",
    ),
    "plan": (
        "exo.compiler.cli.plan",
        "Plan a workflow: the cheapest placement meeting deadline, budget and quotas.",
    ),
    "simulate": (
        "exo.compiler.cli.simulate",
        "Monte Carlo of the plan: deadline and makespan met, cost spread, fallback hours.",
    ),
    "diff": (
        "exo.compiler.cli.diff",
        "Compare two saved plans: what changed per step (tier, batch, replicas, cost, time) "
        "and in total.",
    ),
    "backends": (
        "exo.compiler.cli.backends",
        "List the installed backends and their options (exit 1 if a plugin is broken).",
    ),
    "compile": (
        "exo.compiler.cli.compile",
        "Plan the workflow and write the target backend's artifacts, deterministically.",
    ),
    "run": (
        "exo.compiler.cli.runs",
        "Execute the workflow (local processes by default); resumes an unfinished run.",
    ),
    "status": ("exo.compiler.cli.runs", "Show the state of the workflow's last run."),
    "cancel": (
        "exo.compiler.cli.runs",
        "Stop the workflow's running run (for backends that support it).",
    ),
    "profile": (
        "exo.compiler.cli.calibrate",
        "Run a step's command here on a small sample per batch size; print its measured figures.",
    ),
    "calibrate": (
        "exo.compiler.cli.calibrate",
        "Turn a run's ledger into a calibration file for `--calibration`.",
    ),
}


class ExocGroup(ExoGroup):
    lazy = COMMANDS


app = typer.Typer(
    name="exoc",
    cls=ExocGroup,
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


#: Commands whose process has nothing left to do but the interpreter's teardown when
#: they return, which frees every object of every module one by one (0.1-0.15 s of CPU
#: after ``exoc check``, 0.5 s and more once numpy, scipy and networkx are loaded) in a
#: process about to end anyway; :func:`leave` ends them without it. ``""`` is ``exoc``
#: itself (``--help``, ``--version``). They write stdout, stderr and files they close;
#: ``run`` also writes its ledger and state through unbuffered descriptors and a SQLite
#: store it closes, and its shards are separate processes it has waited for or stopped
#: when it returns. Commands not listed (``status``, ``profile``, ...) end as usual.
QUICK_EXIT = frozenset(
    {"", "check", "graph", "ir", "plan", "simulate", "diff", "backends", "compile", "run"}
)
#: Commands that compile and report, nothing else, and end through :func:`leave`: the
#: cyclic garbage collector is off for their whole process. ``compile_file`` pauses it
#: while it works; before, it would only walk the modules being imported, and after,
#: every object ``exoc check`` keeps to the end (the syntax trees it holds, see
#: ``cli/frontend.py``): about 1% and 1.5% of a 2,000-step check's instructions. Such a
#: process makes no garbage worth collecting (a few objects in cycles, freed with it).
UNCOLLECTED = frozenset({"check"})


#: Commands that load the front end (:func:`~exo.compiler.cli.support.load_front_end`)
#: before anything else that takes long: the cyclic garbage collector, paused while
#: ``exoc`` starts (:mod:`exo.compiler.launch`), resumes there. Any other resumes it as
#: soon as :func:`main` runs.
FRONT_END_FIRST = frozenset(
    {"check", "graph", "ir", "plan", "simulate", "compile", "run", "status", "cancel"}
)


def command_of(argv: Sequence[str]) -> str:
    """The command an argument list runs (``""``: none). ``exoc``'s own options
    (``--help``, ``--version``) take no value, so the command is the first argument that
    is not an option."""
    return next((a for a in argv if not a.startswith("-")), "")


def leave(code: int) -> None:
    """End the process with ``code`` now, without the interpreter's teardown, if
    nothing but that teardown is left to do; otherwise return.

    What the teardown would do that matters is done here first: ``atexit`` callbacks
    (which also run ``weakref.finalize`` finalizers such as temporary folders' clean-up,
    and ``logging``'s flush) and flushing stdout and stderr. Another live thread could
    still be writing, so then the interpreter joins it as usual; so it does when
    flushing fails (a closed pipe), to report it as Python always does."""
    if threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def process_started() -> float:
    """When this process started, as a ``time.perf_counter()`` value (now, if unknown).

    Linux: ``/proc/self/stat``'s start time (clock ticks after boot) against
    ``/proc/uptime``; the interpreter's start-up and the imports count.
    """
    from pathlib import Path  # (already loaded by the CLI's imports)

    now = time.perf_counter()
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii")
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - age if 0.0 < age < 3600.0 else now


def main(quick_exit: bool = True) -> None:
    """``exoc``: run the command of ``sys.argv``, then exit (``quick_exit``: without the
    interpreter's teardown where :data:`QUICK_EXIT` allows it)."""
    from exo.compiler.cli import pydantic_loader
    from exo.compiler.launch import resume, stay_off

    command = command_of(sys.argv[1:])
    if command not in FRONT_END_FIRST:
        resume()
    pydantic_loader.install()  # before typer builds its first parameter's adapter
    if quick_exit and command in UNCOLLECTED:
        stay_off()
    try:
        # the context's object: when this process started (``exoc plan --time-limit``
        # counts from there: start-up and compiling are time the user waits too)
        app(standalone_mode=True, obj=process_started())
    except SystemExit as e:
        code = e.code
        quick = quick_exit and command in QUICK_EXIT
        if quick and (code is None or isinstance(code, int)):
            leave(code or 0)
        raise
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
