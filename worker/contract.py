"""The checkpoint folder's file contract (format 1): names, records, and how to read them.

This module is the one definition of the layout; the worker helper writes it
and exo's runners read it. It is documented for commands in any language in
``docs/resumable-commands.md``::

    $EXO_CHECKPOINT/
      batches/<start>-<end>/         a committed micro-batch: items [start, end)
        exo-batch.json               its commit record, written last: the batch is
                                     committed if and only if this file exists and
                                     holds a JSON object
        ...                          the batch's result files (any names)
      attempts/<name>.json           one record per attempt of the shard (timestamps)
      tmp/                           scratch; anything in it may be deleted when an
                                     attempt starts

On a file system the helper writes a batch's files and its record into a
folder under ``tmp/`` and renames that folder into ``batches/``: one rename
commits it whole. On an object store (no rename) the record object is written
after the result objects. Records are JSON objects; times are seconds since
the Unix epoch (floats). Readers ignore files they do not know, so later
formats may add some.

Standard library only: this is imported by users' commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Version of the layout; every record carries it as ``"format"``.
FORMAT = 1

BATCHES = "batches"
ATTEMPTS = "attempts"
TMP = "tmp"
#: The commit record inside a batch's folder (no result file may have this name).
RECORD = "exo-batch.json"

_BATCH_FOLDER = re.compile(r"^(\d+)-(\d+)$")


def batch_name(start: int, end: int) -> str:
    """``<start>-<end>``: the name of a batch's folder (decimal, no padding)."""
    return f"{start}-{end}"


@dataclass(frozen=True)
class BatchRecord:
    """A committed micro-batch: items ``[start, end)``."""

    start: int
    end: int
    #: ``EXO_ATTEMPT`` of the attempt that committed it.
    attempt: int
    #: When the command was handed the batch, and when its result was committed.
    started_at: float | None
    committed_at: float | None
    #: The batch's folder: its result files and its record.
    folder: Path

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt (one process) of a shard, as the helper recorded it."""

    name: str
    attempt: int
    host: str
    pid: int
    #: When the process started (from the operating system; ``None`` if unknown).
    process_started_at: float | None
    #: When the command opened the shard (``exo.worker.shard()``).
    opened_at: float | None
    #: When the command asked for its first pending batch: startup is paid by then.
    first_batch_at: float | None
    #: When the shard's output was assembled (the attempt finished its work).
    finished_at: float | None
    #: Items already committed when this attempt opened the shard.
    resumed_items: int


@dataclass(frozen=True)
class Progress:
    """What a checkpoint folder says about a shard (read from outside, by a runner)."""

    batches: tuple[BatchRecord, ...]
    attempts: tuple[AttemptRecord, ...]

    @property
    def items_committed(self) -> int:
        return sum(b.size for b in self.batches)

    @property
    def last_commit_at(self) -> float | None:
        times = [b.committed_at for b in self.batches if b.committed_at is not None]
        return max(times) if times else None

    def within(self, start: int, end: int) -> Progress:
        """Only the batches inside ``[start, end)`` (a shard's range)."""
        kept = tuple(b for b in self.batches if start <= b.start and b.end <= end)
        return Progress(kept, self.attempts)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def read_batches(folder: Path) -> list[BatchRecord]:
    """Committed batches, by start item (folders without a readable record are not)."""
    out: list[BatchRecord] = []
    directory = folder / BATCHES
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        m = _BATCH_FOLDER.match(name)
        if m is None:
            continue
        data = _load(directory / name / RECORD)
        if data is None:
            continue  # not committed (an object store's partial batch, or a crash)
        out.append(
            BatchRecord(
                start=int(m.group(1)),
                end=int(m.group(2)),
                attempt=_int(data.get("attempt")),
                started_at=_float(data.get("started_at")),
                committed_at=_float(data.get("committed_at")),
                folder=directory / name,
            )
        )
    out.sort(key=lambda b: (b.start, b.end))
    return out


def committed_ranges(folder: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of the committed batches, without reading their records (quicker)."""
    directory = os.path.join(folder, BATCHES)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    out = []
    for name in names:
        m = _BATCH_FOLDER.match(name)
        if m is not None and _size(Path(directory, name, RECORD)):
            out.append((int(m.group(1)), int(m.group(2))))
    return sorted(out)


def read_attempts(folder: Path) -> list[AttemptRecord]:
    """Attempt records, oldest first."""
    out: list[AttemptRecord] = []
    directory = folder / ATTEMPTS
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        data = _load(directory / name)
        if data is None:
            continue
        host = data.get("host")
        out.append(
            AttemptRecord(
                name=name[: -len(".json")],
                attempt=_int(data.get("attempt")),
                host=host if isinstance(host, str) else "",
                pid=_int(data.get("pid")),
                process_started_at=_float(data.get("process_started_at")),
                opened_at=_float(data.get("opened_at")),
                first_batch_at=_float(data.get("first_batch_at")),
                finished_at=_float(data.get("finished_at")),
                resumed_items=_int(data.get("resumed_items")),
            )
        )
    out.sort(key=lambda a: (a.opened_at or 0.0, a.name))
    return out


def read_progress(folder: str | os.PathLike[str]) -> Progress:
    """Everything recorded in a checkpoint folder (empty if it does not exist)."""
    if not os.path.isdir(folder):  # one stat: most shards of most runs keep nothing
        return Progress((), ())
    path = Path(folder)
    return Progress(tuple(read_batches(path)), tuple(read_attempts(path)))


def leftover_folders(folder: Path) -> list[Path]:
    """Batch folders without a readable record: not committed, to be done again."""
    directory = folder / BATCHES
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [
        directory / name
        for name in names
        if _BATCH_FOLDER.match(name) and not _size(directory / name / RECORD)
    ]


def record_text(data: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT, **data}, sort_keys=True) + "\n"


def write_json(folder: Path, path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, through a temporary file in ``folder/tmp``.

    No ``fsync``: a record survives its process and the runner being killed at
    any moment; after an operating-system crash a record may be lost or empty,
    and an unreadable record counts as not written.
    """
    tmp = folder / TMP / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    text = record_text(data)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
