"""Locks on output folders: one runner publishes into a folder at a time.

The state directory's lock keeps two runners off one state; it does not stop
two runs of one workflow reached through different paths (a symlink to the
file, another ``--state-dir``) from publishing into the same output folder at
once, each running the same shards. Every output folder a runner publishes
into is locked too, with ``flock`` on the folder itself: no file is added to
the user's folder, the lock follows the folder whatever path names it, and
the kernel drops it when the runner dies (even by ``kill -9``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


class OutputsLocked(Exception):
    """Another process holds the lock of an output folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} is locked by another run")


def _lock_one(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputsLocked(path) from None
    return fd


@contextlib.contextmanager
def locked(folders: Iterable[Path]) -> Iterator[None]:
    """Hold the lock of every folder (which must exist) for the block; :class:`OutputsLocked`.

    Folders are locked once each (by device and inode, so two names of one folder
    are one lock) and in a fixed order, so two runners never wait on each other.
    """
    seen: dict[tuple[int, int], Path] = {}
    for folder in folders:
        st = folder.stat()
        seen.setdefault((st.st_dev, st.st_ino), folder)
    fds: list[int] = []
    try:
        for key in sorted(seen):
            fds.append(_lock_one(seen[key]))
        yield
    finally:
        for fd in fds:
            os.close(fd)
