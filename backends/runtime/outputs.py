"""Output folders, as every backend that runs shards decides and reads them.

A step publishes each shard as ``<output>/shard-<index>`` (DESIGN §6). Where
``<output>`` is (``output`` of the step):

- a relative path -> that folder, relative to the workflow file's folder;
- an absolute path or a ``file://`` URI -> that folder;
- absent, or a non-local URI such as ``s3://...`` -> ``outputs/<step>`` under the
  run's state (the local state directory, the Slurm run directory): the runners
  that use this module upload nowhere.

``{run_id}`` and ``{step}`` may appear in ``output``; other runtime placeholders
cannot (one folder holds every shard of a step). The decision is kept relative
(:class:`OutputDir`) so emitted artifacts hold no machine path; a runner makes
it a path with :func:`output_folder`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from exo.compiler.frozen import Frozen
from exo.compiler.ir import Step

from .placeholders import expand

#: Inside an output folder: attempt folders before they are published (when the
#: state is on another file system, or on Slurm).
STAGING = ".exo-staging"

_SHARD = re.compile(r"^shard-(\d+)$")


class OutputDir(Frozen):
    """Where a step publishes ``shard-<index>`` folders."""

    #: ``workflow``: relative to the workflow's folder; ``state``: relative to the
    #: run's state folder; ``absolute``: as written.
    root: Literal["workflow", "state", "absolute"]
    #: May contain ``{run_id}`` and ``{step}``.
    path: str
    #: Why the state folder is used (``None`` when the step chose the path).
    note: str | None = None


def output_dir(step: Step) -> OutputDir:
    """Where ``step`` publishes its shards, relative to the workflow or the state."""
    raw = step.output
    if raw is None or not raw.strip():
        return OutputDir(
            root="state", path=f"outputs/{step.name}", note="the step declares no output"
        )
    parsed = urlparse(raw)
    if parsed.scheme == "file":
        return OutputDir(root="absolute", path=unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1 and parsed.netloc:
        return OutputDir(
            root="state",
            path=f"outputs/{step.name}",
            note=f"`{raw}` is not a local path; the local runner keeps outputs on this machine",
        )
    if raw.startswith("/"):
        return OutputDir(root="absolute", path=raw)
    return OutputDir(root="workflow", path=raw)


def output_folder(
    out: OutputDir, *, workflow_dir: Path, state_dir: Path, run_id: str, step: str
) -> Path:
    """The folder ``out`` names for one run (``{run_id}``, ``{step}`` filled in)."""
    path = expand(out.path, {"run_id": run_id, "step": step})
    if out.root == "workflow":
        return workflow_dir / path
    if out.root == "state":
        return state_dir / path
    return Path(path)


def shard_name(index: int) -> str:
    """A published shard's name in its output folder."""
    return f"shard-{index}"


def shard_index(name: str) -> int | None:
    """The index of a published shard's name (``None``: not a shard)."""
    m = _SHARD.match(name)
    return int(m.group(1)) if m else None


def published(folder: Path) -> set[str]:
    """The names in an output folder (one listing, not one look-up per shard).

    Empty when the folder does not exist; any other error (a file in its place,
    no permission) is raised: the runner decides what it means.
    """
    try:
        return set(os.listdir(folder))  # noqa: PTH208 - names only, once per step
    except FileNotFoundError:
        return set()


def missing_note(step: str, count: int, folder: Path) -> str:
    """What a runner says when shards recorded as published are gone (they run again)."""
    return f"{step}: {count} published shard(s) are missing from {folder}; running them again"
