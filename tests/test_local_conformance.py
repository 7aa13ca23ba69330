"""The local backend passes the shared backend conformance suite on every example,
and its emitted task lists are pinned by snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.backends.conformance import BackendConformance
from exo.backends.local import LocalBackend, LocalOptions

from .conftest import all_examples, example_id
from .localrun import plan


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
    assert artifact.content == snapshot
