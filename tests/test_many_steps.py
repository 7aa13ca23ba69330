"""Runs of many steps: the loop looks only at candidate steps, reports list what matters.

A run of thousands of steps scanned every step on every turn of the loop and
listed every step in its reports (5,000 one-shard steps: 26 s, and 65,000 lines
of ``exoc status``); see docs/benchmarks.md.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from exo.backends.api import RunReport, StepProgress
from exo.backends.local.candidates import Candidates
from exo.compiler.cli import app
from exo.compiler.cli.runs import TABLE_STEPS, print_report


def test_candidates_come_out_once_each_in_the_graphs_order() -> None:
    c = Candidates(["a", "b", "c", "d"])
    for name in ("d", "b", "d", "a"):
        c.add(name)
    assert sorted(c) == ["a", "b", "d"]
    assert [c.take(), c.take()] == ["a", "b"]
    c.keep(["a"])
    assert [c.take(), c.take(), c.take()] == ["a", "d", None]
    assert not c


def _report(states: list[str]) -> str:
    steps = [
        StepProgress(name=f"s{i}", state=st, shards_total=2, shards_done=2 * (st == "done"))
        for i, st in enumerate(states)
    ]
    out = io.StringIO()
    print_report(
        RunReport(workflow="w", run_id="r", state="failed", steps=steps),
        Console(file=out, width=120, color_system=None),
    )
    return out.getvalue()


def test_a_report_of_few_steps_lists_every_step() -> None:
    text = _report(["done"] * TABLE_STEPS)
    assert len(re.findall(r"^s\d+ ", text, re.MULTILINE)) == TABLE_STEPS
    assert "more steps" not in text


def test_a_report_of_many_steps_lists_those_neither_done_nor_pending() -> None:
    text = _report(["done"] * 40 + ["failed", "blocked", "blocked"] + ["pending"] * 7)
    assert re.findall(r"^(s\d+) +(\w+)", text, re.MULTILINE) == [
        ("s40", "failed"),
        ("s41", "blocked"),
        ("s42", "blocked"),
    ]
    assert "47 more steps: 40 done, 7 pending (`exoc status FILE --format json`" in text


def _chains(folder: Path, chains: int, length: int, failing: str) -> Path:
    """``chains`` chains of ``length`` one-shard steps, each writing its name to
    ``ran.txt`` as it runs; the step ``failing`` exits 1 instead."""
    blocks = ["workflow many {\n  deadline = 24h\n  budget = $1000\n}\n"]
    for c in range(chains):
        for k in range(length):
            name = f"c{c}s{k}"
            script = "exit 1" if name == failing else f"echo {name} >> {folder / 'ran.txt'}"
            after = f"\n  after = [c{c}s{k - 1}]" if k else ""
            blocks.append(
                f'step {name} {{\n  command = ["sh", "-c", "{script}"]\n  duration = 1m\n'
                f"  cpu = 1{after}\n}}\n"
            )
    flow = folder / "many.exo"
    flow.write_text("\n".join(blocks))
    return flow


def test_a_run_of_many_steps_runs_each_after_its_needs(tmp_path: Path) -> None:
    flow = _chains(tmp_path, chains=8, length=6, failing="c3s2")
    r = CliRunner().invoke(app, ["run", str(flow), "--jobs", "3"])
    assert r.exit_code == 1, r.output
    listed = dict(re.findall(r"^(c\d+s\d+) +(\w+)", r.stdout, re.MULTILINE))
    assert listed == {"c3s2": "failed", "c3s3": "blocked", "c3s4": "blocked", "c3s5": "blocked"}
    assert "44 more steps: 44 done" in r.stdout
    ran = (tmp_path / "ran.txt").read_text().split()
    assert sorted(ran) == sorted(f"c{c}s{k}" for c in range(8) for k in range(6) if c != 3 or k < 2)
    for c in range(8):  # each chain in its order
        mine = [n for n in ran if n.startswith(f"c{c}s")]
        assert mine == sorted(mine, key=lambda n: int(n.split("s")[1]))
    status = CliRunner().invoke(app, ["status", str(flow), "--format", "json"])
    steps = {s["name"]: s["state"] for s in json.loads(status.stdout)["steps"]}
    assert len(steps) == 48
    assert [steps[f"c3s{k}"] for k in range(6)] == ["done", "done", "failed"] + ["blocked"] * 3
