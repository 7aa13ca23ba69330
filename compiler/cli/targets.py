"""The steps every command that drives a backend shares, in one skeleton.

``compile``, ``run``, ``status``, ``cancel`` and ``calibrate`` all go the same
way (:func:`prepare`): look the ``--target`` backend up in the registry (and,
for the run verbs, check that it runs workflows), plan the workflow
(:func:`exo.compiler.pipeline.plan_for`), resolve the backend's options from
the workflow's ``backend NAME { ... }`` block overridden by ``--NAME-FIELD``
flags, and (for ``compile`` and ``run``) let the backend check the plan. Every
failure is printed as diagnostics and ends the command with its exit code.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from pydantic import BaseModel

from exo.backends.api import Backend, PlannedWorkflow, RunnableBackend
from exo.backends.registry import Registry, flag_name, installed, resolve_options, unknown_blocks
from exo.compiler.cli.backend_flags import given_flags
from exo.compiler.cli.support import fail, plan_or_exit, report, report_or_fail
from exo.compiler.diagnostics import Diagnostic, Severity, relabel


@dataclass(frozen=True, slots=True)
class Request:
    """What a backend command was asked: the workflow, how to plan it, which backend."""

    file: Path
    target: str
    params: Sequence[str] = ()
    catalog: str | None = None
    time_limit: float | None = None
    calibration: Path | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A backend, the plan it gets and its resolved options."""

    backend: Backend
    planned: PlannedWorkflow
    options: BaseModel
    #: Source texts, for rendering the backend's diagnostics.
    sources: Mapping[str, str]


def backend_or_exit(registry: Registry, target: str) -> Backend:
    found = registry.lookup(target)
    if isinstance(found, list):
        fail(found)
    return found


def runnable_or_exit(backend: Backend, verb: str) -> RunnableBackend:
    """The backend, if it runs workflows (E702 and exit 1 if it cannot ``verb`` them)."""
    if not isinstance(backend, RunnableBackend) or not backend.capabilities.run:
        fail(
            [
                Diagnostic(
                    "E702",
                    f"backend `{backend.name}` cannot {verb} workflows",
                    help=(f"use `exoc compile FILE --target {backend.name} -o DIR` instead",),
                )
            ]
        )
    return backend


def options_or_exit(
    ctx: typer.Context,
    registry: Registry,
    backend: Backend,
    planned: PlannedWorkflow,
    sources: Mapping[str, str],
) -> BaseModel:
    """The backend's options: its block in the workflow, overridden by its flags (E701)."""
    flags = given_flags(ctx)
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
        fail(diagnostics, sources)
    if diagnostics:
        report(diagnostics, sources)
    return options


def shown(diagnostics: Sequence[Diagnostic], file: Path) -> list[Diagnostic]:
    """A backend's diagnostics point into modules by key (``wf.exo``); name the files
    as the user named the workflow (``x/wf.exo``), like the compiler's own."""
    from exo.compiler.modules import module_label

    return relabel(diagnostics, functools.partial(module_label, str(file)))


def prepare(
    ctx: typer.Context, req: Request, *, runnable: str | None = None, check: bool = False
) -> Prepared:
    """Backend, plan and options for ``req``, or the diagnostics and exit code.

    ``runnable``: the verb, for commands that need a backend that runs workflows;
    ``check``: let the backend check the plan first (its errors end the command).
    """
    registry = installed()
    backend = backend_or_exit(registry, req.target)
    if runnable is not None:
        backend = runnable_or_exit(backend, runnable)
        if runnable == "cancel" and not backend.capabilities.cancel:
            fail([Diagnostic("E702", f"backend `{backend.name}` cannot cancel runs")])
    planned, sources = plan_or_exit(
        req.file, req.params, req.catalog, req.time_limit, req.calibration
    )
    options = options_or_exit(ctx, registry, backend, planned, sources)
    if check:
        report_or_fail(shown(backend.check(planned, options), req.file), sources)
    return Prepared(backend, planned, options, sources)
