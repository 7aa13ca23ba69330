"""``exoc compile``: plan the workflow and write the target backend's artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

from exo.backends.api import Artifact, Backend
from exo.compiler.cli.backend_flags import BackendFlagsCommand
from exo.compiler.cli.options import (
    CALIBRATION_OPTION,
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    TARGET,
    TIME_LIMIT,
    output_option,
)
from exo.compiler.cli.support import cannot_write, fail, stderr_console
from exo.compiler.cli.targets import Request, prepare, shown
from exo.compiler.diagnostics import CompileError, Diagnostic


def safe_artifact_path(out_dir: Path, artifact: Artifact) -> Path | None:
    """Where an artifact goes, or ``None`` if its path would leave ``out_dir``."""
    rel = PurePosixPath(artifact.path)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        return None
    return out_dir.joinpath(*rel.parts)


def _targets(
    backend: Backend, artifacts: Sequence[Artifact], out_dir: Path
) -> list[tuple[Path, Artifact]]:
    """Each artifact with its path under ``out_dir``; an escaping or repeated path is a
    broken plugin (E703, raised as one :class:`CompileError`)."""
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
    return targets


def write_artifacts(backend: Backend, artifacts: Sequence[Artifact], out_dir: Path) -> list[Path]:
    """Write artifacts under ``out_dir``; a path escaping it is a broken plugin (E703)."""
    written: list[Path] = []
    try:
        for target, a in sorted(_targets(backend, artifacts, out_dir), key=lambda t: t[1].path):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(a.content, encoding="utf-8")
            tmp.chmod(0o755 if a.executable else 0o644)
            tmp.replace(target)
            written.append(target)
    except OSError as e:  # -o names a file, a read-only place, ...: the user's to fix
        cannot_write(e.filename or out_dir, e)
    return written


def compile_(
    ctx: typer.Context,
    file: FILE,
    target: TARGET,
    out_dir: Annotated[Path, output_option("DIR", "Directory to write the artifacts into.")],
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: TIME_LIMIT = None,
    calibration: Path | None = CALIBRATION_OPTION,
) -> None:
    """Plan the workflow and write the target backend's artifacts, deterministically."""
    req = Request(file, target, params, catalog, time_limit, calibration)
    p = prepare(ctx, req, check=True)
    try:
        written = write_artifacts(p.backend, p.backend.emit(p.planned, p.options), out_dir)
    except CompileError as e:
        fail(shown(e.diagnostics, file), e.sources or p.sources)
    stderr_console().print(
        f"[green]wrote[/green] {len(written)} file{'s' if len(written) != 1 else ''} "
        f"for {p.backend.name} to {out_dir}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("compile", cls=BackendFlagsCommand)(compile_)
