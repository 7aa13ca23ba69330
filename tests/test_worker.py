"""The worker helper (exo.worker): resumable shards on the checkpoint file contract.

Commands import it, so it must stand alone: standard library only, importable
without pydantic, numpy or the optimizer, and working from the copy the local
and Slurm backends put on a shard's PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exo.backends.runtime.checkpoints import helper_files, install_helper, progress
from exo.worker import WorkerError, process_start_time, read_progress, shard
from exo.worker.shard import gaps, split

HEAVY = ("pydantic", "numpy", "scipy", "cvxpy", "networkx", "lark", "jinja2", "rich", "typer")


def env(tmp: Path, start: int = 0, end: int = 10, size: int = 3, **extra: str) -> dict[str, str]:
    return {
        "EXO_CHECKPOINT": str(tmp / "ckpt"),
        "EXO_BATCH_START": str(start),
        "EXO_BATCH_END": str(end),
        "EXO_BATCH_SIZE": str(size),
        "EXO_BATCH_INDEX": "0",
        "EXO_SHARD_COUNT": "1",
        "EXO_OUTPUT": str(tmp / "out"),
        **extra,
    }


def test_imports_alone_without_the_optimizer_stack() -> None:
    code = (
        "import sys, json; import exo.worker; from exo.worker import shard; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == []
    assert [m for m in loaded if m.startswith("exo.")] == [
        "exo.worker",
        "exo.worker.contract",
        "exo.worker.shard",
    ]


def test_the_copy_on_a_shards_pythonpath_works_without_site_packages(tmp_path: Path) -> None:
    lib = install_helper(tmp_path / "lib")
    assert sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*.py")) == sorted(
        k for k in helper_files() if k.endswith(".py")
    )
    assert not (lib / "exo" / "__init__.py").exists()  # a namespace: other `exo` parts still import
    code = (
        "import exo.worker, sys; from exo.worker import shard; s = shard(); "
        "[b.commit({'x': str(b.start)}) for b in s]; s.assemble(); print(exo.worker.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],  # -S: no site-packages, so only lib/ has exo.worker
        env={**env(tmp_path), "PYTHONPATH": str(lib)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().startswith(str(lib))
    assert (tmp_path / "out" / "x").read_text() == "036" + "9"


def test_micro_batches_commit_and_assemble_in_item_order(tmp_path: Path) -> None:
    s = shard(env(tmp_path, 4, 14, 3))
    assert (s.start, s.end, s.batch_size) == (4, 14, 3)
    seen = []
    for b in s:
        seen.append((b.start, b.end))
        b.commit({"part.txt": "".join(f"{i}\n" for i in b.items), "sub/n": f"{b.size},"})
    assert seen == [(4, 7), (7, 10), (10, 13), (13, 14)]
    assert s.complete and s.pending() == []
    out = s.assemble()
    assert (out / "part.txt").read_text().split() == [str(i) for i in range(4, 14)]
    assert (out / "sub" / "n").read_text() == "3,3,3,1,"


def test_a_restart_skips_what_is_committed(tmp_path: Path) -> None:
    e = env(tmp_path, 0, 10, 2, EXO_ATTEMPT="1")
    first = shard(e)
    for b in first:
        if b.start >= 6:
            break  # stopped (preempted) after three batches
        b.commit({"p": f"{b.start} "})
    second = shard({**e, "EXO_ATTEMPT": "2"})
    assert second.pending() == [(6, 8), (8, 10)]
    for b in second:
        b.commit({"p": f"{b.start} "})
    assert (second.assemble() / "p").read_text() == "0 2 4 6 8 "
    prog = read_progress(tmp_path / "ckpt")
    assert prog.items_committed == 10
    assert [b.attempt for b in prog.batches] == [1, 1, 1, 2, 2]
    assert [a.attempt for a in prog.attempts] == [1, 2]
    a1, a2 = prog.attempts
    assert a2.resumed_items == 6 and a1.resumed_items == 0
    for a in prog.attempts:
        assert a.opened_at is not None and a.first_batch_at is not None
        assert a.opened_at <= a.first_batch_at
        assert a.process_started_at is not None and a.process_started_at <= a.opened_at + 1
    assert a2.finished_at is not None and a1.finished_at is None
    for b in prog.batches:
        assert b.started_at is not None and b.committed_at is not None
        assert b.started_at <= b.committed_at


def test_a_new_batch_size_still_covers_every_item_once(tmp_path: Path) -> None:
    first = shard(env(tmp_path, 0, 10, 4))
    next(iter(first)).commit({"p": "a"})  # [0, 4)
    second = shard(env(tmp_path, 0, 10, 3))
    assert second.pending() == [(4, 7), (7, 10)]


def test_uncommitted_work_is_not_assembled(tmp_path: Path) -> None:
    s = shard(env(tmp_path, 0, 5, 2))
    batch = next(iter(s))
    with pytest.raises(RuntimeError), batch.folder() as folder:
        (folder / "half").write_text("x")
        raise RuntimeError("the model crashed")
    assert s.pending() == [(0, 2), (2, 4), (4, 5)]
    with pytest.raises(WorkerError, match=r"items \[0, 5\) were never committed"):
        s.assemble()
    assert not (tmp_path / "out").exists()


def test_a_process_killed_mid_batch_leaves_only_whole_commits(tmp_path: Path) -> None:
    code = (
        "import time, sys; from exo.worker import shard; s = shard()\n"
        "for b in s:\n"
        "    with b.folder() as f:\n"
        "        (f / 'p').write_text('x' * b.size)\n"
        "        print(b.start, flush=True)\n"
        "        time.sleep(0.3 if b.start < 4 else 60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, **env(tmp_path, 0, 10, 2)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "4":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = tmp_path / "ckpt"
    assert list((ckpt / "tmp").iterdir())  # the batch in progress, never committed
    assert [(b.start, b.end) for b in read_progress(ckpt).batches] == [(0, 2), (2, 4)]
    # A result folder whose record was never written (a crash between the two renames).
    (ckpt / "batches" / "4-6").mkdir()
    again = shard(env(tmp_path, 0, 10, 2))
    assert list((ckpt / "tmp").iterdir()) == [] and not (ckpt / "batches" / "4-6").exists()
    assert again.pending() == [(4, 6), (6, 8), (8, 10)]


def test_the_checkpoint_signal_does_not_end_the_command(tmp_path: Path) -> None:
    code = (
        "import os, signal, time; from exo.worker import shard; s = shard()\n"
        "os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.1); print('alive')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "alive"


def test_clear_errors_outside_exo(tmp_path: Path) -> None:
    with pytest.raises(WorkerError, match="EXO_CHECKPOINT is not set"):
        shard({})
    with pytest.raises(WorkerError, match="not a file system path"):
        shard(env(tmp_path, EXO_CHECKPOINT="s3://bucket/ckpt"))
    with pytest.raises(WorkerError, match="EXO_BATCH_END"):
        shard({"EXO_CHECKPOINT": str(tmp_path), "EXO_BATCH_START": "0"})
    with pytest.raises(WorkerError, match="not a whole number"):
        shard(env(tmp_path, EXO_BATCH_SIZE="lots"))
    s = shard(env(tmp_path))
    with pytest.raises(WorkerError, match="outside the batch's folder"):
        next(iter(s)).commit({"../escape": "x"})
    by_hand = shard({}, checkpoint=tmp_path / "mine", start=0, end=3, output=str(tmp_path / "o"))
    assert by_hand.pending() == [(0, 3)]


def test_progress_is_read_from_outside_within_the_shard(tmp_path: Path) -> None:
    s = shard(env(tmp_path, 0, 6, 2))
    for b in s:
        b.commit()
    assert progress(tmp_path / "ckpt", 0, 6).items_committed == 6
    assert progress(tmp_path / "ckpt", 2, 6).items_committed == 4
    assert progress(tmp_path / "nothing", 0, 6).items_committed == 0
    prog = read_progress(tmp_path / "ckpt")
    assert prog.last_commit_at is not None and prog.last_commit_at <= time.time()
    record = json.loads((tmp_path / "ckpt" / "batches" / "0-2" / "exo-batch.json").read_text())
    assert record["format"] == 1 and (record["start"], record["end"]) == (0, 2)


@given(
    start=st.integers(0, 50),
    size=st.integers(0, 60),
    batch=st.integers(1, 9),
    done=st.lists(st.integers(0, 12), max_size=6),
)
def test_pending_and_committed_partition_the_shard(
    start: int, size: int, batch: int, done: list[int]
) -> None:
    end = start + size
    pieces = split(start, end, batch)
    committed = [pieces[i] for i in sorted(set(done)) if i < len(pieces)]
    pending = [p for s, e in gaps(start, end, committed) for p in split(s, e, batch)]
    covered = sorted(i for s, e in [*committed, *pending] for i in range(s, e))
    assert covered == list(range(start, end))
    assert all(0 < e - s <= batch for s, e in pending)
    assert set(pending).isdisjoint(committed)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")
def test_process_start_time_is_the_launch_not_a_second_off() -> None:
    """A process's start from the kernel's ticks since boot, against the boot clock: not
    ``btime``, whole seconds that put every start up to a second early (the synthetic
    step then cut its declared startup short and ``exoc profile`` measured 0.62 s of 1)."""
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    after = time.time()
    try:
        started = process_start_time(child.pid)
        assert started is not None
        # the kernel's tick is 1/CLK_TCK (10 ms at 100 Hz): that much either side
        tick = 1.0 / os.sysconf("SC_CLK_TCK")
        assert before - tick - 0.02 <= started <= after + tick + 0.02
        mine = process_start_time()
        assert mine is not None and mine <= before
    finally:
        child.kill()
        child.wait()
