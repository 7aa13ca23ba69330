"""A resumable shard: iterate its pending micro-batches, commit each, assemble the output.

A shard is one long-lived process over items ``[start, end)`` (DESIGN §6). It
pays its startup once, then works through micro-batches of the planned batch
size; each finished batch is committed atomically into the shard's checkpoint
folder, which survives every attempt. Started again (a preemption, an error
retry, a resumed run), the shard skips what is committed. At the end the
committed results are assembled into the shard's output folder once.

Standard library only: this is imported by users' commands.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from . import contract
from .contract import BatchRecord

_HOST_BAD = re.compile(r"[^A-Za-z0-9._-]")


class WorkerError(Exception):
    """The shard cannot be opened, committed or assembled as asked."""


def process_start_time(pid: int | None = None) -> float | None:
    """When process ``pid`` (default: this one) started, in seconds since the epoch (Linux).

    The kernel gives a process's start in clock ticks since boot; its age is the time
    since boot now (``CLOCK_BOOTTIME``, which counts the same way) less that, and its
    start is the wall clock less its age. (``/proc/stat``'s ``btime`` is whole seconds:
    added to the ticks, it put starts up to a second early.)
    """
    try:
        stat = Path(f"/proc/{pid or os.getpid()}/stat").read_text()
        ticks = int(stat[stat.rfind(")") + 2 :].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - max(age, 0.0)
    except (OSError, ValueError, IndexError, AttributeError):  # AttributeError: no BOOTTIME
        return None


def split(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` in consecutive pieces of ``size`` items (the last may be shorter)."""
    step = max(1, size)
    return [(s, min(end, s + step)) for s in range(start, end, step)]


def gaps(start: int, end: int, done: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` that no range in ``done`` covers."""
    out: list[tuple[int, int]] = []
    at = start
    for s, e in sorted(done):
        if e <= at or s >= end:
            continue
        if s > at:
            out.append((at, s))
        at = max(at, e)
    if at < end:
        out.append((at, end))
    return out


class Batch:
    """A pending micro-batch: items ``[start, end)``. Commit it once its work is done."""

    def __init__(self, shard: Shard, start: int, end: int) -> None:
        self.shard = shard
        self.start = start
        self.end = end
        self.started_at = time.time()
        self.committed = False

    def __repr__(self) -> str:
        return f"Batch({self.start}, {self.end})"

    @property
    def items(self) -> range:
        return range(self.start, self.end)

    @property
    def size(self) -> int:
        return self.end - self.start

    @contextlib.contextmanager
    def folder(self) -> Iterator[Path]:
        """An empty private folder for the batch's result files; committed when the block ends.

        If the block raises, nothing is committed (the batch stays pending).
        """
        if self.committed:
            raise WorkerError(f"{self!r} is already committed")
        tmp = self.shard.scratch(f"batch-{self.start}-{self.end}")
        os.mkdir(tmp)
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.shard.commit_folder(self, tmp)
        self.committed = True

    def commit(self, files: Mapping[str, str | bytes] | None = None) -> None:
        """Commit the batch with these result files (relative name -> text or bytes)."""
        for name in files or {}:
            parts = Path(name).parts
            if not parts or Path(name).is_absolute() or ".." in parts:
                raise WorkerError(f"result file {name!r} is outside the batch's folder")
            if name == contract.RECORD:
                raise WorkerError(f"{contract.RECORD!r} is the commit record's name")
        with self.folder() as tmp:
            for name, content in (files or {}).items():
                path = tmp / name
                if len(Path(name).parts) > 1:
                    path.parent.mkdir(parents=True, exist_ok=True)
                data = content.encode("utf-8") if isinstance(content, str) else content
                with open(path, "wb") as f:
                    f.write(data)


Combine = Callable[[Sequence[BatchRecord], Path], None]


class Shard:
    """One shard's items, micro-batches and checkpoint folder. Make one with :func:`shard`."""

    def __init__(
        self,
        *,
        checkpoint: str | os.PathLike[str],
        start: int,
        end: int,
        batch_size: int | None = None,
        index: int = 0,
        count: int = 1,
        attempt: int = 1,
        output: str | None = None,
        input: str | None = None,
        run_id: str | None = None,
        step: str | None = None,
    ) -> None:
        if end < start or start < 0:
            raise WorkerError(f"not an item range: [{start}, {end})")
        self.checkpoint = Path(checkpoint)
        self.start = start
        self.end = end
        self.batch_size = batch_size if batch_size and batch_size > 0 else max(1, end - start)
        self.index = index
        self.count = count
        self.attempt = attempt
        self.output = output
        self.input = input
        self.run_id = run_id
        self.step = step
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._record: dict[str, object] = {}
        self._record_path: Path | None = None

    def __repr__(self) -> str:
        return (
            f"Shard(index={self.index}, items=[{self.start}, {self.end}), "
            f"batch_size={self.batch_size}, checkpoint={str(self.checkpoint)!r})"
        )

    # --- opening -------------------------------------------------------------------------

    def open(self) -> Shard:
        """Create the checkpoint folder's layout, clear scratch space, record this attempt."""
        for sub in (contract.BATCHES, contract.ATTEMPTS, contract.TMP):
            (self.checkpoint / sub).mkdir(parents=True, exist_ok=True)
        # One attempt of a shard runs at a time: what is in tmp/ belongs to dead ones.
        for entry in os.scandir(self.checkpoint / contract.TMP):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        for leftover in contract.leftover_folders(self.checkpoint):
            shutil.rmtree(leftover, ignore_errors=True)
        now = time.time()
        host = socket.gethostname()
        name = f"{int(now * 1e6):017d}-{self.attempt}-{_HOST_BAD.sub('_', host)}-{os.getpid()}"
        self._record_path = self.checkpoint / contract.ATTEMPTS / f"{name}.json"
        self._record = {
            "attempt": self.attempt,
            "host": host,
            "pid": os.getpid(),
            "process_started_at": process_start_time(),
            "opened_at": now,
            "first_batch_at": None,
            "finished_at": None,
            "resumed_items": (self.end - self.start) - sum(e - s for s, e in self.missing()),
            "shard": {"index": self.index, "start": self.start, "end": self.end},
            "batch_size": self.batch_size,
        }
        self._write_record()
        return self

    def _write_record(self, **changes: object) -> None:
        if self._record_path is None:
            return
        with self._lock:
            self._record.update(changes)
            contract.write_json(self.checkpoint, self._record_path, dict(self._record))

    def scratch(self, stem: str) -> Path:
        """A fresh name in the checkpoint's scratch folder (same file system: renames are atomic)."""
        return self.checkpoint / contract.TMP / f"{stem}.{os.getpid()}.{next(self._seq)}"

    # --- batches -------------------------------------------------------------------------

    def committed(self) -> list[BatchRecord]:
        """Committed batches inside this shard's range, by first item."""
        return [
            b
            for b in contract.read_batches(self.checkpoint)
            if self.start <= b.start and b.end <= self.end
        ]

    def missing(self) -> list[tuple[int, int]]:
        """Item ranges of the shard not committed yet."""
        return gaps(self.start, self.end, contract.committed_ranges(self.checkpoint))

    def pending(self) -> list[tuple[int, int]]:
        """The micro-batches still to do, as ``(start, end)`` ranges, in item order."""
        return [p for s, e in self.missing() for p in split(s, e, self.batch_size)]

    @property
    def complete(self) -> bool:
        return not self.missing()

    def __iter__(self) -> Iterator[Batch]:
        """The pending micro-batches; commit each one (``batch.commit(...)``) when it is done.

        A batch that is not committed is done again by the next attempt.
        """
        for s, e in self.pending():
            if self._record.get("first_batch_at") is None:
                self._write_record(first_batch_at=time.time())
            yield Batch(self, s, e)

    batches = __iter__

    def commit_folder(self, batch: Batch, folder: Path) -> None:
        """Make ``folder`` the committed result of ``batch``: its record, then one rename."""
        record = {
            "start": batch.start,
            "end": batch.end,
            "attempt": self.attempt,
            "started_at": batch.started_at,
            "committed_at": time.time(),
        }
        with open(folder / contract.RECORD, "w", encoding="utf-8") as f:
            f.write(contract.record_text(record))
        target = self.checkpoint / contract.BATCHES / contract.batch_name(batch.start, batch.end)
        try:
            os.rename(folder, target)
        except OSError:
            if (target / contract.RECORD).exists():
                # Committed already (by an attempt that overlapped this one): keep the first.
                shutil.rmtree(folder, ignore_errors=True)
                return
            shutil.rmtree(target)  # an uncommitted leftover
            os.rename(folder, target)

    # --- the end -------------------------------------------------------------------------

    def assemble(self, combine: Combine | None = None, into: str | None = None) -> Path:
        """Write the shard's output from every committed batch, once all are committed.

        By default each result file name found in the batches becomes one file in
        the output folder (``into``, default ``EXO_OUTPUT``): the batches' files
        of that name concatenated in item order (right for JSON lines, CSV
        without a header, text). ``combine(batches, folder)`` does it another way.
        """
        missing = self.missing()
        if missing:
            shown = ", ".join(f"[{s}, {e})" for s, e in missing[:5])
            raise WorkerError(
                f"shard {self.index} is not complete: items {shown}"
                + (" ..." if len(missing) > 5 else "")
                + " were never committed"
            )
        target = into if into is not None else self.output
        if not target:
            raise WorkerError("no output folder: EXO_OUTPUT is not set and `into` was not given")
        if "://" in target:
            raise WorkerError(
                f"the output {target!r} is not a folder; pass combine= to write it yourself"
            )
        out = Path(target)
        out.mkdir(parents=True, exist_ok=True)
        batches = self.committed()
        if combine is not None:
            combine(batches, out)
        else:
            concatenate(batches, out, lambda stem: self.scratch(stem))
        self._write_record(finished_at=time.time())
        return out


def concatenate(batches: Sequence[BatchRecord], out: Path, scratch: Callable[[str], Path]) -> None:
    """Each relative file name of the batches' folders: their contents in batch order."""
    names: set[Path] = set()
    for b in batches:
        if b.folder.is_dir():
            names.update(p.relative_to(b.folder) for p in b.folder.rglob("*") if p.is_file())
    names.discard(Path(contract.RECORD))
    for name in sorted(names):
        tmp = scratch("assemble")
        with open(tmp, "wb") as dst:
            for b in batches:
                part = b.folder / name
                if part.is_file():
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, dst)
        final = out / name
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(tmp, final)


def _env_int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = env.get(name, "")
    if not raw.strip():
        if default is None:
            raise WorkerError(
                f"{name} is not set: run this command through exo (`exoc run`), or call "
                "shard(checkpoint=..., start=..., end=...) to try it by hand"
            )
        return default
    try:
        return int(raw)
    except ValueError:
        raise WorkerError(f"{name}={raw!r} is not a whole number") from None


def _ignore_checkpoint_signal() -> None:
    """Progress is committed after every batch: Slurm's USR1 warning needs no action."""
    usr1 = getattr(signal, "SIGUSR1", None)
    if usr1 is None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(usr1) is signal.SIG_DFL:
        signal.signal(usr1, signal.SIG_IGN)


def shard(
    environ: Mapping[str, str] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    start: int | None = None,
    end: int | None = None,
    batch_size: int | None = None,
    output: str | None = None,
    ignore_checkpoint_signal: bool = True,
) -> Shard:
    """This process's shard, from the ``EXO_*`` variables exo sets (or the arguments).

    Opening records the attempt in the checkpoint folder. With
    ``ignore_checkpoint_signal`` (the default) a ``SIGUSR1`` (Slurm's warning
    before a preemption or the time limit) no longer ends the process: every
    committed batch is already safe, so it goes on working until stopped.
    """
    env = os.environ if environ is None else environ
    folder = checkpoint if checkpoint is not None else env.get("EXO_CHECKPOINT", "")
    if not str(folder).strip():
        raise WorkerError(
            "EXO_CHECKPOINT is not set: run this command through exo (`exoc run`), or call "
            "shard(checkpoint=..., start=..., end=...) to try it by hand"
        )
    if "://" in str(folder):
        raise WorkerError(
            f"the checkpoint {folder!r} is not a file system path: mount the storage "
            "(a PersistentVolumeClaim, or the bucket through a CSI driver), or follow the "
            "checkpoint contract with your object-store client (docs/resumable-commands.md)"
        )
    s = Shard(
        checkpoint=folder,
        start=start if start is not None else _env_int(env, "EXO_BATCH_START"),
        end=end if end is not None else _env_int(env, "EXO_BATCH_END"),
        batch_size=batch_size if batch_size is not None else _env_int(env, "EXO_BATCH_SIZE", 0),
        index=_env_int(env, "EXO_BATCH_INDEX", 0),
        count=_env_int(env, "EXO_SHARD_COUNT", 1),
        attempt=_env_int(env, "EXO_ATTEMPT", 1),
        output=output if output is not None else env.get("EXO_OUTPUT") or None,
        input=env.get("EXO_INPUT"),
        run_id=env.get("EXO_RUN_ID"),
        step=env.get("EXO_STEP"),
    )
    s.open()
    if ignore_checkpoint_signal:
        _ignore_checkpoint_signal()
    return s
