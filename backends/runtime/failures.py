"""What a hostile machine does to a run, said as a diagnostic instead of a traceback.

Runners meet file systems they do not control: a state file that is not what
they wrote (truncated, corrupt, another program's, a folder), output folders
under a regular file, on a read-only mount or on a full disk, folders deleted
while a run uses them, and another runner writing the same outputs. Each is the
user's to fix, and each is one of the codes here, naming the path, what is
wrong and how to recover. Published outputs are never removed to get past one.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from exo.compiler.diagnostics import Diagnostic

#: ``errno`` -> (what is wrong, how to fix it) for folders a run writes.
_FOLDER_HELP: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free some space; `exoc run` then resumes where it stopped"),
    errno.EDQUOT: (
        "the disk quota is used up",
        "free some space or raise the quota; `exoc run` then resumes",
    ),
    errno.EROFS: (
        "it is on a read-only file system",
        "remount it read-write or point the step's `output` (or `--state-dir`) elsewhere",
    ),
    errno.EACCES: (
        "permission denied",
        "give this user write access to it, or point the step's `output` (or `--state-dir`) "
        "elsewhere",
    ),
    errno.EPERM: (
        "the operation is not permitted",
        "give this user write access to it, or point the step's `output` (or `--state-dir`) "
        "elsewhere",
    ),
    errno.ENOTDIR: (
        "a part of the path is a regular file, not a folder",
        "move that file aside or point the step's `output` (or `--state-dir`) elsewhere",
    ),
    errno.EEXIST: (
        "a file of that name is in the way",
        "move that file aside or point the step's `output` (or `--state-dir`) elsewhere",
    ),
    errno.ENOENT: (
        "it was removed while the run was using it",
        "run `exoc run` again: published shards still on disk are kept, missing ones are redone",
    ),
    errno.EIO: ("the disk reported an I/O error", "check the disk, then `exoc run` resumes"),
}


def _explain(err: OSError) -> tuple[str, str]:
    if err.errno in _FOLDER_HELP:
        return _FOLDER_HELP[err.errno]
    return (err.strerror or str(err), "fix the folder, then `exoc run` resumes where it stopped")


def folder_unusable(what: str, err: OSError) -> Diagnostic:
    """E751: a folder or file the run must write cannot be written."""
    path = err.filename or "?"
    why, fix = _explain(err)
    if err.filename2:
        path = f"{path} -> {err.filename2}"
    return Diagnostic(
        "E751",
        f"cannot write {what} {path}: {why}",
        help=(fix,),
        notes=("published shards are never removed to get past this",),
    )


def is_disk_full(err: sqlite3.Error) -> bool:
    return getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(
        err
    )


def database_unwritable(path: Path, err: sqlite3.Error) -> Diagnostic:
    """E751 for the state database (a full disk, a read-only mount) met while running."""
    if is_disk_full(err):
        why, fix = _FOLDER_HELP[errno.ENOSPC]
    elif "readonly" in str(err).replace(" ", "") or "read-only" in str(err):
        why, fix = _FOLDER_HELP[errno.EROFS]
    else:
        why, fix = str(err), "fix the state directory, then `exoc run` resumes where it stopped"
    return Diagnostic(
        "E751",
        f"cannot write the run state {path}: {why}",
        help=(fix,),
        notes=("shards stopped; what was published before is kept",),
    )


#: What ``exoc run --fresh`` does with broken state, per backend.
FRESH_KEEPS = "or run `exoc run --fresh`, which keeps it as `<name>.broken-<time>`"
FRESH_REPLACES = "or run `exoc run --fresh`, which starts a new run beside it"


def state_unreadable(path: Path, problem: str, *, fresh: str = FRESH_KEEPS) -> Diagnostic:
    """E750: the run's state is not what a runner wrote (corrupt, truncated, foreign, a folder)."""
    fixes = (f"move it aside and start over: `mv {path} {path}.broken`", fresh)
    return Diagnostic(
        "E750",
        f"the run state {path} cannot be used: {problem}",
        help=fixes,
        notes=(
            "nothing was changed; published outputs are kept, but a new run redoes their shards",
        ),
    )


def outputs_locked(path: Path, holder: str) -> Diagnostic:
    """E752: another runner is writing the same output folder."""
    return Diagnostic(
        "E752",
        f"another run is writing the output folder {path} ({holder})",
        help=(
            "wait for it to finish or stop it with `exoc cancel` (two runs publishing into one "
            "folder would run the same shards twice)",
            "or give this workflow's step another `output`",
        ),
    )
