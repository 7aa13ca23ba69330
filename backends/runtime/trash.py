"""Deleting a previous run's published shards without holding up the new run.

``exoc run --fresh`` (and a step whose definition changed) must clear the
``shard-<i>`` entries of an output folder before new ones are published there.
Deleting a thousand folders on the critical path took more than half of a
``--fresh`` run of a thousand no-op shards (issue #16). Here the entries are
renamed into one hidden folder beside them (a rename in the same folder: cheap
and atomic), which moves into the state directory's trash when it is on the
same file system, and a background thread deletes it while the run goes on.
Whatever a crash leaves in a trash is deleted by the next runner, also in the
background.
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


class Trash:
    """A state directory's trash: move things into it now, delete them in the background."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exo-trash")

    def __enter__(self) -> Trash:
        self._sweep_leftovers()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pool.shutdown(wait=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()  # only when empty

    def _sweep_leftovers(self) -> None:
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        for entry in entries:
            self.pool.submit(shutil.rmtree, entry.path, ignore_errors=True)

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
        for name in old:  # left by a runner that died before deleting them
            self.pool.submit(shutil.rmtree, folder / name, ignore_errors=True)
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
        self.pool.submit(shutil.rmtree, path, ignore_errors=True)
