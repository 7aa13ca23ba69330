"""Hostile machines (#12) for the Slurm runner's own state, without a cluster.

The run's ``latest`` pointer and ``jobs.tsv`` are files a careless user or a
crash can damage: each damage is E750 naming the file and the fix, never a
traceback and never a job id handed to ``scancel`` that the runner did not
write. A published output folder deleted after a run is done again on resume
(tests/test_slurm_cluster.py runs that against real jobs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exo.backends.slurm import runner
from exo.backends.slurm.scheduler import Cluster
from exo.compiler.diagnostics import CompileError

from .test_slurm_runner import _jobs, _record


def _config(tmp_path: Path) -> runner.RunConfig:
    return runner.RunConfig(
        workflow_file=tmp_path / "wf.exo",
        state_dir=tmp_path / "state",
        fresh=False,
        poll_s=0.1,
        cluster=Cluster(env={"PATH": os.defpath}),
        environ={},
    )


def _latest(config: runner.RunConfig, content: bytes | None) -> Path:
    config.root.mkdir(parents=True, exist_ok=True)
    path = config.root / "latest"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff\xfe garbage", b"../../../etc\n", b"20261126-161159-7f3153; rm -rf /\n", None],
    ids=["binary", "traversal", "injected", "folder"],
)
def test_a_damaged_latest_pointer_is_e750(tmp_path: Path, content: bytes | None) -> None:
    config = _config(tmp_path)
    path = _latest(config, content)
    with pytest.raises(CompileError) as caught:
        runner.latest_run(config)
    [diag] = caught.value.diagnostics
    assert diag.code == "E750" and str(path) in diag.message
    assert any("--fresh" in h for h in diag.help) and any("mv " in h for h in diag.help)
    # status and cancel say the same instead of a traceback (they read `latest` first).
    with pytest.raises(CompileError):
        runner.status(_jobs(tmp_path), "w", config)
    with pytest.raises(CompileError):
        runner.cancel(_jobs(tmp_path), "w", config)


def test_a_good_latest_pointer_to_a_removed_run_starts_over(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _latest(config, b"20261126-161159-7f3153\n")
    assert runner.latest_run(config) is None
    (config.root / "20261126-161159-7f3153").mkdir()
    assert runner.latest_run(config) == config.root / "20261126-161159-7f3153"


@pytest.mark.parametrize("content", [b"a\t10\nb\t11;rm\n", b"a\t\xff\xfe\n"], ids=["id", "binary"])
def test_a_damaged_jobs_file_is_e750(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "jobs.tsv").write_bytes(content)
    with pytest.raises(CompileError) as caught:
        runner.read_jobs(tmp_path)
    [diag] = caught.value.diagnostics
    assert diag.code == "E750" and "jobs.tsv" in diag.message


def test_binary_state_records_do_not_crash_the_follower(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _record(run, "a", 0, "done")
    d = run / "state" / "a"
    (d / "shard-1.failed").write_bytes(b"\xff\xfe attempts=\xff exit=3")
    (d / "shard-2.errors").write_bytes(b"\xff\xfe")
    files = runner.step_files(run, "a")
    assert files.done == {0} and set(files.failed) == {1} and files.errors == 0


def test_done_shards_whose_output_is_gone_are_done_again(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    run = tmp_path / "run"
    out = run / "outputs" / "a"
    for i in range(3):
        _record(run, "a", i, "done")
        (out / f"shard-{i}").mkdir(parents=True)
    assert runner.forget_missing_outputs(run, jobs, tmp_path) == []
    (out / "shard-1").rmdir()
    messages = runner.forget_missing_outputs(run, jobs, tmp_path)
    assert messages == [f"a: 1 published shard(s) are missing from {out}; running them again"]
    assert runner.step_files(run, "a").done == {0, 2}
