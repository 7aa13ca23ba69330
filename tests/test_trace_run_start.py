"""``benchmarks/trace_run_start.py`` still finds what it wraps: a real ``exoc run``, traced."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import trace_run_start  # noqa: E402  (benchmark scripts, not a package)
from bench_local import WORKFLOW  # noqa: E402


def test_every_phase_is_marked_in_order_and_every_shard_spawned(tmp_path: Path) -> None:
    (tmp_path / "noop.exo").write_text(WORKFLOW.format(shards=4))
    first = trace_run_start.traced(tmp_path, 2)  # plans, and keeps the plan
    again = trace_run_start.traced(tmp_path, 2)  # the kept plan, --fresh
    for marks in (first, again):
        assert marks["spawns"] == 4 and marks["code"] == 0
        order = [marks[b] for _, _, b in trace_run_start.PHASES]
        assert order == sorted(order) and order[0] > 0.0, marks
