"""Deleting a previous run's published shards without holding up the new run.

``exoc run --fresh`` (and a step whose definition changed) must clear the
``shard-<i>`` entries of an output folder before new ones are published there.
Deleting a thousand folders on the critical path took more than half of a
``--fresh`` run of a thousand no-op shards (issue #16). Here the entries are
renamed into one hidden folder beside them (a rename in the same folder: cheap
and atomic), which moves into the state directory's trash when it is on the
same file system, and a background ``rm -rf`` process, at a lower priority,
deletes it while the run goes on. A process, not a thread of the runner: the
deletion then takes no time from the runner's interpreter (in a thread it cost
the runner more CPU than it saved, issue #16's fifth round, docs/benchmarks.md),
and under load the shards come first. The runner waits for it before it returns,
as it did for the thread. Whatever a crash leaves in a trash is deleted by the
next runner, also in the background. Where ``rm`` cannot be started, a thread
deletes it with :func:`shutil.rmtree`, as before.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

_SHARD = re.compile(r"^shard-\d+$")
#: Prefix of the hidden folder published shards are moved into inside an output folder.
ASIDE_PREFIX = ".exo-trash-"
#: Niceness added to the deleting process: the run's shards come first.
NICE = 10
#: Paths per ``rm`` process (its argument list stays far below the system's limit).
_BATCH = 1000
_STDIO = (0, 1, 2)


class Trash:
    """A state directory's trash: move things into it now, delete them in the background.

    Paths to delete are queued; :meth:`flush` hands the queue to one background
    ``rm -rf`` (the runner calls it once the run's folders are ready), and leaving
    the ``with`` block flushes what is left and waits for every deletion.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.queue: list[str] = []
        self.pids: list[int] = []
        self.pool: ThreadPoolExecutor | None = None
        #: Where ``rm`` is (``None``: deleted by a thread instead).
        self.rm = shutil.which("rm", path=os.defpath)

    def __enter__(self) -> Trash:
        self._sweep_leftovers()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.flush()
        while self.pids:
            pid = self.pids.pop()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()  # only when empty

    def flush(self) -> None:
        """Start deleting everything queued so far (in one background process)."""
        paths, self.queue = self.queue, []
        for at in range(0, len(paths), _BATCH):
            self._delete(paths[at : at + _BATCH])

    def _delete(self, paths: list[str]) -> None:
        if self.rm is not None:
            try:
                pid = os.posix_spawn(
                    self.rm,
                    ["rm", "-rf", "--", *paths],
                    {"PATH": os.defpath, "LC_ALL": "C"},
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in _STDIO
                    ],
                    setsid=True,  # a Ctrl-C at the terminal stops the shards, not the clean-up
                )
            except OSError:
                pass
            else:
                self.pids.append(pid)
                with contextlib.suppress(OSError):  # it may have finished already
                    nice = min(os.getpriority(os.PRIO_PROCESS, 0) + NICE, 19)
                    os.setpriority(os.PRIO_PROCESS, pid, nice)
                return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exo-trash")
        for path in paths:
            self.pool.submit(shutil.rmtree, path, ignore_errors=True)

    def _sweep_leftovers(self) -> None:
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        self.queue.extend(entry.path for entry in entries)

    def _aside(self, folder: Path) -> Path:
        """A new, empty hidden folder inside ``folder``, moved into the trash when it can be."""
        aside = folder / f"{ASIDE_PREFIX}{secrets.token_hex(4)}"
        aside.mkdir()
        return aside

    def clear_shards(self, folder: Path) -> None:
        """Remove the ``shard-<i>`` entries of ``folder`` (and old aside folders) from sight."""
        try:
            entries = [e.name for e in os.scandir(folder)]
        except (FileNotFoundError, NotADirectoryError):
            return
        old = [n for n in entries if n.startswith(ASIDE_PREFIX)]
        shards = [n for n in entries if _SHARD.match(n)]
        if not shards and not old:
            return
        aside = self._aside(folder)
        # Strings and os.rename, not Path objects: one per published shard (see benchmarks).
        src, dst = str(folder), str(aside)
        for name in shards:
            os.rename(f"{src}/{name}", f"{dst}/{name}")  # noqa: PTH104
        # Left by a runner that died before deleting them.
        self.queue.extend(f"{src}/{name}" for name in old)
        self._delete_later(aside)

    def discard(self, path: Path) -> None:
        """Move ``path`` (a folder) out of sight and delete it in the background."""
        if not path.exists():
            return
        target = path.with_name(f"{ASIDE_PREFIX}{path.name}.{secrets.token_hex(4)}")
        try:
            path.rename(target)
        except OSError:
            target = path
        self._delete_later(target)

    def _delete_later(self, path: Path) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            moved = self.root / f"{path.name}.{secrets.token_hex(4)}"
            path.rename(moved)
            path = moved
        except OSError:  # another file system: deleted where it is
            pass
        self.queue.append(str(path))
