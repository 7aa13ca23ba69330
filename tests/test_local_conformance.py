"""The local backend passes the shared backend conformance suite on every example,
and its emitted task lists are pinned by snapshots."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.backends.conformance import BackendConformance
from exo.backends.conformance_run import ExecutionConformance, ProcessDriver, ShardDriver
from exo.backends.local import LocalBackend, LocalOptions
from exo.backends.local.procs import processes_with_env

from .conftest import all_examples, example_id
from .golden import golden
from .localrun import driver_command, plan


class TestLocalConformance(BackendConformance):
    backend_name = "local"
    bad_options = [  # noqa: RUF012 - the base declares it a ClassVar
        {"backoff_s": -1},
        {"grace_s": "soon"},
        {"clean_env": "perhaps"},
        {"backof_s": 2},
    ]

    def example_files(self) -> list[Path]:
        return all_examples()


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_local_plan_snapshot(path: Path, snapshot: SnapshotAssertion) -> None:
    planned = plan(path)
    [artifact] = LocalBackend().emit(planned, LocalOptions())
    assert artifact.path == "local-plan.json"
    data = json.loads(artifact.content)
    # One entry per step, in dependency order, with the plan's shard counts.
    assert [s["name"] for s in data["steps"]] == [s.name for s in planned.program.steps]
    assert artifact.content == golden(snapshot, "json")


# --- run-time conformance: shards, checkpoints, preemptions, a killed runner ---------------


class LocalDriver(ProcessDriver):
    """The runner in a child process (planned here once, so that it starts quickly);
    a preemption is SIGKILL from outside, as a spot reclaim or the OOM killer would be."""

    def command(self, workflow: Path) -> list[str]:
        planned_json = self.folder / "planned.json"
        if not planned_json.exists():
            planned_json.write_text(plan(workflow).model_dump_json(), "utf-8")
        return driver_command(planned_json, workflow, self.folder / "state", 64)

    def published(self, step: str) -> Path:
        return self.folder / "out" / step

    def checkpoint(self, step: str, index: int) -> Path | None:
        found = sorted((self.folder / "state").glob(f"checkpoints/*/{step}/shard-{index}"))
        return found[0] if found else None

    def preempt(self, step: str, index: int) -> None:
        mine = set(processes_with_env("EXO_STEP", step, {os.getpid()}))
        pids = mine & set(processes_with_env("EXO_BATCH_INDEX", str(index), {os.getpid()}))
        assert pids, f"no running process of {step} shard {index}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


class TestLocalExecution(ExecutionConformance):
    def driver(self, folder: Path) -> ShardDriver:
        return LocalDriver(folder)
