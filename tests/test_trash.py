"""The trash: earlier shards leave sight at once and are deleted in the background (#16).

Deletion runs in its own ``rm -rf`` process (not a thread of the runner), started
by ``flush`` and waited for when the ``with`` block ends; without ``rm`` a thread
deletes instead. Either way: what was cleared is gone afterwards, nothing outside
is touched (symbolic links are not followed), and a crash's leftovers are swept
by the next runner.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exo.backends.runtime.trash import ASIDE_PREFIX, Trash


def _published(folder: Path, count: int, outside: Path) -> None:
    for i in range(count):
        shard = folder / f"shard-{i}"
        shard.mkdir(parents=True)
        (shard / "part.txt").write_text(f"{i}\n")
    (folder / "shard-0" / "link").symlink_to(outside)  # must not be followed
    (folder / "notes.txt").write_text("the user's own file\n")


@pytest.mark.parametrize("with_rm", [True, False])
def test_cleared_shards_leave_at_once_and_are_deleted_by_the_end(
    tmp_path: Path, with_rm: bool
) -> None:
    out, state, outside = tmp_path / "out", tmp_path / "state", tmp_path / "keep"
    outside.mkdir()
    (outside / "precious.txt").write_text("not ours\n")
    _published(out, 50, outside)
    with Trash(state / "trash") as trash:
        if not with_rm:
            trash.rm = None  # a system without rm: a thread of the runner deletes
        trash.clear_shards(out)
        # Out of sight before anything is deleted: only the user's file is left.
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
        trash.flush()
        if with_rm:
            assert len(trash.pids) == 1
            # Its own session: a Ctrl-C at the terminal reaches the runner, not the clean-up.
            assert os.getsid(trash.pids[0]) == trash.pids[0]
        else:
            assert trash.pids == [] and trash.pool is not None
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert not (state / "trash").exists()  # emptied, then removed
    assert (outside / "precious.txt").read_text() == "not ours\n"


def test_what_is_not_flushed_is_deleted_on_leaving(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "checkpoints" / "r1"
    (folder / "step" / "shard-3").mkdir(parents=True)
    with Trash(tmp_path / "state" / "trash") as trash:
        trash.discard(folder)
        assert not folder.exists()
        assert trash.pids == [] and len(trash.queue) == 1
    assert not (tmp_path / "state" / "trash").exists()


def test_a_crashs_leftovers_are_swept_by_the_next_runner(tmp_path: Path) -> None:
    root, out = tmp_path / "state" / "trash", tmp_path / "out"
    (root / "shard-1.abcd" / "deep").mkdir(parents=True)
    (out / f"{ASIDE_PREFIX}0123" / "shard-2").mkdir(parents=True)  # renamed aside, then killed
    (out / "shard-5").mkdir()
    with Trash(root) as trash:
        trash.clear_shards(out)
        trash.flush()
    assert list(out.iterdir()) == []
    assert not root.exists()


def test_many_paths_go_to_several_processes(tmp_path: Path) -> None:
    root = tmp_path / "trash"
    for i in range(1001):
        (root / f"x{i}").mkdir(parents=True)
    with Trash(root) as trash:
        trash.flush()
        assert len(trash.pids) == 2  # 1,000 paths per rm: its argument list stays short
    assert not root.exists()
