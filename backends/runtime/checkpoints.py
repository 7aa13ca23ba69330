"""Checkpoint folders and the worker helper, as every backend that runs shards lays them out.

Each shard of a run has a private checkpoint folder (``{checkpoint}`` /
``EXO_CHECKPOINT``, DESIGN §6) that survives every attempt of the shard and is
removed once the shard is published. Its contents follow the worker helper's
file contract (:mod:`exo.worker.contract`), so a runner can read a shard's
progress from outside with :func:`progress`.

Layout, under a run's checkpoint root (the local backend:
``<state dir>/checkpoints/<run id>``; Slurm: ``<run dir>/checkpoints``;
Kubernetes: ``<storage>/<run id>/checkpoints``)::

    <root>/<step>/shard-<index>/

The worker helper (``exo.worker``, standard library only) is put on the
``PYTHONPATH`` of every shard by the local and Slurm backends: :func:`helper_files`
is its source, laid out as a ``PYTHONPATH`` entry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from exo.worker.contract import Progress, read_progress

#: Folder of a run's checkpoints (under the state or run directory).
CHECKPOINTS = "checkpoints"
#: Under a run's checkpoint root: folders of published shards, being deleted.
TRASH = ".trash"
#: Folder (under the state or run directory) that holds the worker helper for PYTHONPATH.
HELPER_LIB = "lib"


def shard_folder_name(index: int) -> str:
    return f"shard-{index}"


def step_checkpoints(root: Path, step: str) -> Path:
    """The folder holding every shard checkpoint of ``step`` in a run."""
    return root / step


def shard_checkpoint(root: Path, step: str, index: int) -> Path:
    """The checkpoint folder of shard ``index`` of ``step``."""
    return root / step / shard_folder_name(index)


def remove(path: Path) -> None:
    """Remove a checkpoint folder (after publication, or when its step is redone)."""
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the step's folder, once its last shard is gone


class Remover:
    """Removes published shards' checkpoint folders without holding up the runner.

    A checkpoint may hold thousands of committed batches: the folder is renamed
    into ``<root>/.trash/`` at once (so it is gone from where shards look) and
    deleted by a background thread. Whatever a crash leaves in the trash is
    removed with the run's checkpoints.
    """

    def __init__(self, root: Path) -> None:
        self.trash = root / TRASH
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exo-checkpoints")
        self.seq = 0

    def discard(self, folder: str | Path) -> None:
        # Plain os calls: this runs once per published shard (see docs/benchmarks.md).
        try:
            os.rmdir(folder)  # noqa: PTH106 - the common case of a command that kept nothing
            return
        except FileNotFoundError:
            return
        except OSError:
            pass
        path = Path(folder)
        self.seq += 1
        aside = self.trash / f"{path.parent.name}.{path.name}.{os.getpid()}.{self.seq}"
        try:
            self.trash.mkdir(parents=True, exist_ok=True)
            path.rename(aside)
        except FileNotFoundError:
            return
        except OSError:
            aside = path
        self.pool.submit(shutil.rmtree, aside, ignore_errors=True)

    def close(self) -> None:
        """Wait for the removals under way."""
        self.pool.shutdown(wait=True)


def progress(path: Path, start: int, end: int) -> Progress:
    """What shard ``[start, end)`` has committed so far (empty if nothing yet)."""
    return read_progress(path).within(start, end)


def helper_files() -> dict[str, str]:
    """The worker helper's source, as ``relative path -> text`` under a PYTHONPATH entry.

    ``exo/`` gets no ``__init__.py``: it stays a namespace package, so an ``exo``
    installed elsewhere on the path still imports.
    """
    package = resources.files("exo.worker")
    out: dict[str, str] = {}
    for entry in sorted(package.iterdir(), key=lambda e: e.name):
        if entry.is_file() and (entry.name.endswith(".py") or entry.name == "py.typed"):
            out[f"exo/worker/{entry.name}"] = entry.read_text("utf-8")
    return out


def install_helper(lib: Path) -> Path:
    """Write the worker helper under ``lib`` (unchanged files are left alone); returns ``lib``."""
    for rel, text in helper_files().items():
        path = lib / rel
        try:
            if path.read_text("utf-8") == text:
                continue
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, "utf-8")
        tmp.replace(path)
    return lib


def python_path(lib: str, existing: str | None) -> str:
    """``PYTHONPATH`` with ``lib`` first (the helper), then what was there."""
    return lib if not existing else f"{lib}{os.pathsep}{existing}"
