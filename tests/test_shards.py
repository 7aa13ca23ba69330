"""Shards are replicas (DESIGN §6): the ranges, and what every example compiles to.

A throughput step planned with n replicas runs n shards, shard i over
[floor(W*i/n), floor(W*(i+1)/n)); a duration step runs one. The snapshot shows,
for every example, each step's planned replicas and micro-batch, its shards,
its Slurm ``--array`` and its Indexed Job's completions / parallelism.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from exo.backends.api import PlannedWorkflow, micro_batch_size, shard_count, shard_range, shards
from exo.backends.kubernetes import KubernetesBackend, KubernetesOptions
from exo.backends.slurm import SlurmBackend, SlurmOptions
from exo.compiler.pipeline import plan_for

from .conftest import all_examples, example_id
from .golden import golden


@given(items=st.integers(0, 10_000), count=st.integers(1, 300))
def test_shards_cover_every_item_exactly_once(items: int, count: int) -> None:
    ranges = [shard_range(items, count, i) for i in range(count)]
    assert ranges[0].start == 0 and ranges[-1].end == items
    for a, b in itertools.pairwise(ranges):
        assert a.end == b.start  # contiguous, no overlap
    sizes = [r.size for r in ranges]
    assert sum(sizes) == items and max(sizes) - min(sizes) <= 1  # even split


@pytest.mark.parametrize(("items", "count"), [(5, 8), (1, 3), (13, 5), (97, 7), (1, 1), (0, 2)])
def test_awkward_item_and_replica_counts(items: int, count: int) -> None:
    got = [(r.start, r.end) for r in (shard_range(items, count, i) for i in range(count))]
    assert len(got) == count
    assert sorted(i for s, e in got for i in range(s, e)) == list(range(items))


@functools.cache
def planned(path: Path) -> PlannedWorkflow:
    return plan_for(path, {})[0]


def _table(path: Path) -> str:
    pw = planned(path)
    slurm = {a.path: a.content for a in SlurmBackend().emit(pw, SlurmOptions(spot_partition="p"))}
    k8s = {
        a.path: a.content
        for a in KubernetesBackend().emit(pw, KubernetesOptions(storage_pvc="data"))
        if a.path.startswith("jobs/")
    }
    indexed = {}
    for text in k8s.values():
        job = yaml.safe_load(text)
        indexed[job["metadata"]["annotations"]["exo.dev/step-name"]] = job["spec"]
    lines = ["step | kind | replicas | micro-batch | shards | slurm | indexed job"]
    for step in pw.program.steps:
        sp = pw.step_plan(step.name)
        n = shard_count(step, sp)
        script = slurm[f"steps/{step.name}.sbatch"]
        array = next((ln.split()[1] for ln in script.splitlines() if "--array=" in ln), "no array")
        spec = indexed[step.name]
        kind = "throughput" if step.throughput is not None else "duration"
        lines.append(
            f"{step.name} | {kind} | {sp.replicas} | {micro_batch_size(step, sp)} | {n} | "
            f"{array} | completions {spec['completions']}, parallelism {spec['parallelism']}"
        )
        # DESIGN §6: one shard per replica (duration steps: one), in every backend.
        assert n == (sp.replicas if step.throughput is not None else 1)
        assert spec["completions"] == spec["parallelism"] == n
        assert array == ("no array" if n == 1 else f"--array=0-{n - 1}")
        assert len(shards(step, sp)) == n
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_every_example_runs_one_shard_per_replica(path: Path, snapshot: SnapshotAssertion) -> None:
    assert _table(path) == golden(snapshot, "txt")
