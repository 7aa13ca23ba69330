"""``exoc backends``, ``compile``, ``run``, ``status`` and ``cancel``.

Every verb plans the workflow the same way (:func:`plan_for`), picks a backend
from the registry, and resolves that backend's options from the workflow's
``backend NAME { ... }`` block overridden by ``--NAME-FIELD`` flags. The flags
are generated from the installed backends' ``Options`` models when a command's
options are first needed, so third-party backends get flags too.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import click
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from exo.compiler.calibration import annotate, calibrate_compiled
from exo.compiler.cli_help import ExoCommand
from exo.compiler.cli_support import (
    CALIBRATION_OPTION,
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    Exit,
    parse_params,
    report,
    stderr_console,
    stdout_console,
)
from exo.compiler.diagnostics import CompileError, Diagnostic, Severity, relabel
from exo.compiler.plan import Plan

from .api import Artifact, Backend, PlannedWorkflow, RunContext, RunnableBackend, RunReport
from .registry import (
    Registry,
    flag_name,
    installed,
    option_rows,
    resolve_options,
    unknown_blocks,
    value_label,
)

TARGET_OPTION = typer.Option(
    "--target", "-t", metavar="NAME", help="The backend (`exoc backends` lists them)."
)
TIME_LIMIT_OPTION = typer.Option(
    None, "--time-limit", metavar="SECONDS", help="Stop the optimizer after this long."
)
STATE_DIR_OPTION = typer.Option(
    None,
    "--state-dir",
    metavar="DIR",
    help="Where run state, logs and staging live (default: .exo/<file stem> next to FILE).",
)


class Infeasible(Exception):
    """The optimizer found no plan; ``plan.explanation`` says why."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        super().__init__("; ".join(plan.explanation) or "no feasible plan")


def plan_for(
    path: Path,
    params: Mapping[str, str],
    catalog: str | None = None,
    time_limit: float | None = None,
    calibration: Path | None = None,
) -> tuple[PlannedWorkflow, dict[str, str]]:
    """Compile and optimize ``path``: the one way every backend verb gets its plan.

    Returns the planned workflow and the source texts (for rendering later
    diagnostics). Raises :class:`CompileError` or :class:`Infeasible`.
    """
    from exo.compiler.frontend import compile_file  # loaded when a command runs, not for --help
    from exo.compiler.optimizer import optimize

    compiled = compile_file(path, params, catalog=catalog, label=str(path))
    compiled, notes = calibrate_compiled(compiled, calibration)
    if time_limit is None:
        plan = optimize(compiled.program, compiled.catalog)
    else:
        plan = optimize(compiled.program, compiled.catalog, time_limit_s=time_limit)
    plan = annotate(plan, notes)
    if plan.status == "infeasible":
        raise Infeasible(plan)
    planned = PlannedWorkflow(
        program=compiled.program,
        plan=plan,
        catalog=compiled.catalog,
        base_dir=str(Path(compiled.base_dir).resolve()),
    )
    return planned, dict(compiled.sources)


def default_state_dir(workflow_file: Path) -> Path:
    """``.exo/<stem>`` beside the workflow file: one state directory per workflow."""
    return workflow_file.resolve().parent / ".exo" / workflow_file.stem


# --- dynamic --<backend>-<field> flags ---------------------------------------------------

_META_KEY = "exo.backend_flags"


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    args = typing.get_args(annotation)
    return bool(args) and set(args) <= {bool, type(None)}


def _is_multiple(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (list, tuple, set, frozenset)


def _is_json(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel))


@dataclass(frozen=True, slots=True)
class FlagSpec:
    backend: str
    field: str
    #: Parameter name in the parsed command line.
    dest: str


def _flag_parameters(registry: Registry) -> tuple[list[FlagSpec], list[Any]]:
    """``--<backend>-<field>`` parameters of every installed backend.

    They are built by typer itself from a synthetic signature (the public
    ``typer.main.get_command``), so they behave and render like every other option.
    """
    specs: list[FlagSpec] = []
    params: list[inspect.Parameter] = []
    for name, backend in registry.backends.items():
        rows = {r[0]: r for r in option_rows(backend)}
        for fname, info in backend.Options.model_fields.items():
            flag = flag_name(name, fname)
            _, _, default, desc = rows[flag]
            dest = f"exo_backend__{name}__{fname}".replace("-", "_")
            ann = info.annotation
            help_text = option_help(desc, default, ann)
            annotation: Any
            metavar = value_label(ann)
            if _is_bool(ann):
                decl = [f"{flag}/--no-{flag[2:]}"]
                annotation = bool | None
            elif _is_multiple(ann):
                decl = [flag]
                annotation = list[str] | None
            else:
                decl = [flag]
                annotation = str | None
            option = typer.Option(
                None,
                *decl,
                help=help_text,
                metavar=metavar,
                show_default=False,
                rich_help_panel=f"Options of backend {name}",
            )
            params.append(
                inspect.Parameter(
                    dest, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
                )
            )
            specs.append(FlagSpec(name, fname, dest))
    if not params:
        return specs, []

    def holder(**kwargs: Any) -> None:
        """Carries the signature typer turns into options."""

    holder.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    holder.__annotations__ = {p.name: p.annotation for p in params}
    app = typer.Typer(add_completion=False)
    app.command()(holder)
    built = typer.main.get_command(app)
    return specs, list(built.params)


class BackendFlagsCommand(ExoCommand):
    """A typer command that also accepts ``--<backend>-<field>`` for every backend.

    The flags are computed on first use (parsing or ``--help``), so commands that
    do not need backends never load the plugins.
    """

    _flags: tuple[list[FlagSpec], list[Any]] | None = None

    def _backend_flags(self) -> tuple[list[FlagSpec], list[Any]]:
        if self._flags is None:
            self._flags = _flag_parameters(installed())
        return self._flags

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        return [*params, *self._backend_flags()[1]]

    def invoke(self, ctx: Any) -> Any:
        given: dict[str, dict[str, object]] = {}
        for spec in self._backend_flags()[0]:
            value = ctx.params.pop(spec.dest, None)
            if value is None or value == () or value == []:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    value = json.loads(value)
            given.setdefault(spec.backend, {})[spec.field] = value
        ctx.meta[_META_KEY] = given
        return super().invoke(ctx)


def option_help(description: str, default: str, annotation: Any) -> str:
    """A backend option's description, its default (unless it says it already or there
    is none) and whether the flag repeats."""
    text = description
    if default not in ("null", "", "[]", "{}") and "default" not in description:
        text = f"{text} (default: {default})".strip()
    return f"{text} (repeatable)" if _is_multiple(annotation) else text


def options_listing(backend: Backend, width: int) -> str:
    """``--flag VALUE`` and what it does, for every option: names in full, descriptions
    wrapped (a long name puts its description on the next line)."""
    rows: list[tuple[str, str]] = []
    for fname, info in backend.Options.model_fields.items():
        flag = flag_name(backend.name, fname)
        _, _, default, desc = next(r for r in option_rows(backend) if r[0] == flag)
        label = value_label(info.annotation)
        term = f"{flag} {label}" if label else f"{flag} / --no-{flag[2:]}"
        rows.append((term, option_help(desc, default, info.annotation)))
    if not rows:
        return ""
    formatter = click.HelpFormatter(width=max(min(width, 100), 60))
    with formatter.indentation():
        formatter.write_dl(rows, col_max=36)
    return formatter.getvalue()


def _given_flags(ctx: typer.Context) -> dict[str, dict[str, object]]:
    flags: dict[str, dict[str, object]] = ctx.meta.get(_META_KEY, {})
    return flags


# --- shared steps of the verbs -------------------------------------------------------------


def _fail(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str] | None = None) -> None:
    report(list(diagnostics), dict(sources or {}))
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if errors:
        raise typer.Exit(Exit.DIAGNOSTICS)


def _plan_or_exit(
    file: Path,
    params: Sequence[str],
    catalog: str | None,
    time_limit: float | None,
    calibration: Path | None = None,
) -> tuple[PlannedWorkflow, dict[str, str]]:
    if time_limit is not None and not time_limit > 0:
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--time-limit")
    try:
        return plan_for(file, parse_params(params), catalog, time_limit, calibration)
    except CompileError as e:
        _fail(e.diagnostics, e.sources)
        raise AssertionError("unreachable") from None
    except Infeasible as e:
        console = stderr_console()
        console.print(f"[bold red]no feasible plan[/bold red] for {file}", highlight=False)
        for line in e.plan.explanation:
            console.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(Exit.INFEASIBLE) from None


def _backend_or_exit(registry: Registry, target: str) -> Backend:
    found = registry.lookup(target)
    if isinstance(found, list):
        _fail(found)
        raise AssertionError("unreachable")
    return found


def _options_or_exit(
    ctx: typer.Context,
    registry: Registry,
    backend: Backend,
    planned: PlannedWorkflow,
    sources: Mapping[str, str],
) -> BaseModel:
    flags = _given_flags(ctx)
    diagnostics: list[Diagnostic] = []
    for other in sorted(set(flags) - {backend.name}):
        for fname in sorted(flags[other]):
            diagnostics.append(
                Diagnostic(
                    "E701",
                    f"{flag_name(other, fname)} is an option of backend `{other}`, "
                    f"but the target is `{backend.name}`",
                    help=(f"use `--target {other}`, or drop the flag",),
                )
            )
    blocks = planned.program.backend_options
    diagnostics.extend(unknown_blocks(registry, blocks))
    options, problems = resolve_options(backend, blocks.get(backend.name), flags.get(backend.name))
    diagnostics.extend(problems)
    if any(d.severity is Severity.ERROR for d in diagnostics) or options is None:
        _fail(diagnostics, sources)
        raise AssertionError("unreachable")
    if diagnostics:
        report(diagnostics, dict(sources))
    return options


def _shown(diagnostics: Sequence[Diagnostic], file: Path) -> list[Diagnostic]:
    """A backend's diagnostics point into modules by key (``wf.exo``); name the files
    as the user named the workflow (``x/wf.exo``), like the compiler's own."""
    from exo.compiler.modules import module_label

    return relabel(diagnostics, functools.partial(module_label, str(file)))


def _check_or_exit(
    backend: Backend,
    planned: PlannedWorkflow,
    options: BaseModel,
    sources: Mapping[str, str],
    file: Path,
) -> None:
    problems = _shown(backend.check(planned, options), file)
    if any(d.severity is Severity.ERROR for d in problems):
        _fail(problems, sources)
    elif problems:
        report(problems, dict(sources))


def _runnable_or_exit(backend: Backend, verb: str) -> RunnableBackend:
    if not isinstance(backend, RunnableBackend) or not backend.capabilities.run:
        _fail(
            [
                Diagnostic(
                    "E702",
                    f"backend `{backend.name}` cannot {verb} workflows",
                    help=(f"use `exoc compile FILE --target {backend.name} -o DIR` instead",),
                )
            ]
        )
        raise AssertionError("unreachable")
    return backend


def safe_artifact_path(out_dir: Path, artifact: Artifact) -> Path | None:
    """Where an artifact goes, or ``None`` if its path would leave ``out_dir``."""
    rel = PurePosixPath(artifact.path)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        return None
    return out_dir.joinpath(*rel.parts)


def write_artifacts(backend: Backend, artifacts: Sequence[Artifact], out_dir: Path) -> list[Path]:
    """Write artifacts under ``out_dir``; a path escaping it is a broken plugin (E703)."""
    targets: list[tuple[Path, Artifact]] = []
    bad: list[Diagnostic] = []
    seen: set[str] = set()
    for a in artifacts:
        target = safe_artifact_path(out_dir, a)
        if target is None or a.path in seen:
            what = "a duplicate" if a.path in seen else "outside the output directory"
            bad.append(
                Diagnostic(
                    "E703",
                    f"backend plugin `{backend.name}` is broken: "
                    f"artifact path {a.path!r} is {what}",
                )
            )
            continue
        seen.add(a.path)
        targets.append((target, a))
    if bad:
        raise CompileError(bad)
    written: list[Path] = []
    try:
        for target, a in sorted(targets, key=lambda t: t[1].path):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(a.content, encoding="utf-8")
            tmp.chmod(0o755 if a.executable else 0o644)
            tmp.replace(target)
            written.append(target)
    except OSError as e:  # -o names a file, a read-only place, ...: the user's to fix
        where = e.filename or out_dir
        stderr_console().print(f"[bold red]error[/]: cannot write {where}: {e.strerror or e}")
        raise typer.Exit(Exit.USAGE) from None
    return written


def _run_context(
    file: Path,
    state_dir: Path | None,
    jobs: int | None,
    fresh: bool,
) -> RunContext:
    return RunContext(
        workflow_file=str(file.resolve()),
        state_dir=str((state_dir or default_state_dir(file)).resolve()),
        jobs=jobs,
        fresh=fresh,
        progress="rich" if sys.stderr.isatty() else "plain",
        environ=dict(os.environ),
    )


_STATE_STYLE = {
    "done": "green",
    "running": "cyan",
    "submitted": "cyan",
    "failed": "red",
    "blocked": "yellow",
    "interrupted": "yellow",
    "cancelled": "yellow",
}


def print_report(rep: RunReport, console: Console) -> None:
    style = _STATE_STYLE.get(rep.state, "")
    head = f"{rep.workflow}: [{style}]{rep.state}[/{style}]" if style else rep.state
    if rep.run_id:
        head += f" (run {rep.run_id})"
    console.print(head, highlight=False)
    if rep.steps:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("step", "state", "shards", "running", "retries", "preempted"):
            table.add_column(col, justify="left" if col in ("step", "state") else "right")
        for s in rep.steps:
            st = _STATE_STYLE.get(s.state, "")
            table.add_row(
                s.name,
                f"[{st}]{s.state}[/{st}]" if st else s.state,
                f"{s.shards_done}/{s.shards_total}",
                str(s.shards_running),
                str(s.retries),
                str(s.preemptions),
            )
        console.print(table)
    for f in rep.failures:
        console.print(
            f"[red]failed[/red]: step {f.step} shard {f.shard} after {f.attempts} attempt(s): "
            f"{f.reason}",
            highlight=False,
        )
        if f.log:
            console.print(f"  log: {f.log}", highlight=False, markup=False)
    for m in rep.messages:
        console.print(m, highlight=False, markup=False)


def _emit_report(rep: RunReport, fmt: str, planned: PlannedWorkflow | None = None) -> None:
    from . import status_view  # planned vs actual, from the run's ledger

    if fmt == "html" and planned is not None:
        sys.stdout.write(status_view.html(rep, planned))
        if not rep.ledger or not Path(rep.ledger).is_file():
            stderr_console().print("no run ledger yet: the page shows the plan only")
        return
    act = status_view.actuals_for(rep, planned) if planned is not None else None
    if fmt == "json":
        data = rep.model_dump(mode="json")
        if planned is not None:
            data["plan_vs_actual"] = act.model_dump(mode="json") if act else None
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        print_report(rep, stdout_console())
        if act is not None:
            status_view.render(act, stdout_console())


# --- the verbs -----------------------------------------------------------------------------


def backends(
    fmt: Annotated[
        str, typer.Option("--format", metavar="text|json", help="The output format.")
    ] = "text",
) -> None:
    """List the installed backends and their options (exit 1 if a plugin is broken)."""
    registry = installed()
    if fmt == "json":
        data = [
            {
                "name": b.name,
                "api_version": b.api_version,
                "description": b.description,
                "capabilities": b.capabilities.model_dump(),
                "options": [
                    {"flag": f, "type": t, "default": d, "description": h}
                    for f, t, d, h in option_rows(b)
                ],
            }
            for b in registry.backends.values()
        ]
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


def compile_(
    ctx: typer.Context,
    file: FILE,
    target: Annotated[str, TARGET_OPTION],
    out_dir: Annotated[
        Path,
        typer.Option(
            "-o", "--output", metavar="DIR", help="Directory to write the artifacts into."
        ),
    ],
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: float | None = TIME_LIMIT_OPTION,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Plan the workflow and write the target backend's artifacts, deterministically."""
    registry = installed()
    backend = _backend_or_exit(registry, target)
    planned, sources = _plan_or_exit(file, params, catalog, time_limit, calibration)
    options = _options_or_exit(ctx, registry, backend, planned, sources)
    _check_or_exit(backend, planned, options, sources, file)
    try:
        written = write_artifacts(backend, backend.emit(planned, options), out_dir)
    except CompileError as e:
        _fail(_shown(e.diagnostics, file), e.sources or sources)
        return
    stderr_console().print(
        f"[green]wrote[/green] {len(written)} file{'s' if len(written) != 1 else ''} "
        f"for {backend.name} to {out_dir}",
        highlight=False,
    )


def run(
    ctx: typer.Context,
    file: FILE,
    target: Annotated[str, TARGET_OPTION] = "local",
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help="Concurrent shards (default: CPU count, or a step's shard count if larger).",
        ),
    ] = None,
    state_dir: Path | None = STATE_DIR_OPTION,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new run instead of resuming.")
    ] = False,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: float | None = TIME_LIMIT_OPTION,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Execute the workflow (local processes by default); resumes an unfinished run."""
    registry = installed()
    backend = _runnable_or_exit(_backend_or_exit(registry, target), "run")
    planned, sources = _plan_or_exit(file, params, catalog, time_limit, calibration)
    options = _options_or_exit(ctx, registry, backend, planned, sources)
    _check_or_exit(backend, planned, options, sources, file)
    try:
        rep = backend.run(planned, options, _run_context(file, state_dir, jobs, fresh))
    except CompileError as e:
        _fail(_shown(e.diagnostics, file), e.sources or sources)
        return
    print_report(rep, stdout_console())
    raise typer.Exit(rep.exit_code)


def status(
    ctx: typer.Context,
    file: FILE,
    target: Annotated[str, TARGET_OPTION] = "local",
    state_dir: Path | None = STATE_DIR_OPTION,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="text|json|html",
            help="The output format (html: the plan report with planned vs actual and its Gantt).",
        ),
    ] = "text",
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: float | None = TIME_LIMIT_OPTION,
) -> None:
    """Show the state of the workflow's last run."""
    if fmt not in ("text", "json", "html"):
        raise typer.BadParameter("choose one of text, json, html", param_hint="--format")
    registry = installed()
    backend = _runnable_or_exit(_backend_or_exit(registry, target), "report the status of")
    planned, sources = _plan_or_exit(file, params, catalog, time_limit)
    options = _options_or_exit(ctx, registry, backend, planned, sources)
    try:
        rep = backend.status(planned, options, _run_context(file, state_dir, None, False))
    except CompileError as e:
        _fail(_shown(e.diagnostics, file), e.sources or sources)
        return
    _emit_report(rep, fmt, planned)


def cancel(
    ctx: typer.Context,
    file: FILE,
    target: Annotated[str, TARGET_OPTION] = "local",
    state_dir: Path | None = STATE_DIR_OPTION,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: float | None = TIME_LIMIT_OPTION,
) -> None:
    """Stop the workflow's running run (for backends that support it)."""
    registry = installed()
    backend = _runnable_or_exit(_backend_or_exit(registry, target), "cancel")
    if not backend.capabilities.cancel:
        _fail([Diagnostic("E702", f"backend `{backend.name}` cannot cancel runs")])
    planned, sources = _plan_or_exit(file, params, catalog, time_limit)
    options = _options_or_exit(ctx, registry, backend, planned, sources)
    try:
        rep = backend.cancel(planned, options, _run_context(file, state_dir, None, False))
    except CompileError as e:
        _fail(_shown(e.diagnostics, file), e.sources or sources)
        return
    print_report(rep, stdout_console())


def register(app: typer.Typer) -> None:
    app.command()(backends)
    app.command("compile", cls=BackendFlagsCommand)(compile_)
    for verb in (run, status, cancel):
        app.command(cls=BackendFlagsCommand)(verb)
