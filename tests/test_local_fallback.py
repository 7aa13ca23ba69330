"""The deadline-aware fallback in the local runner, with emulated spot (backends/local/spot.py).

End to end (real processes): a spot trace that removes capacity for a long gap
reclaims the shard's spot attempt; while it waits, the rule of
``compiler/fallback.py`` stops holding, so the shard moves to on-demand, resumes
from its checkpoint there, and the run finishes with every item once. The
ledger records the move (``spot`` false, the reason) and ``exoc status``'s
actuals cost it at the on-demand price. The placement logic is unit-tested on a
fake clock at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exo.backends.local.backend import LocalOptions, spot_config
from exo.backends.runtime import actuals, ledger
from exo.compiler.diagnostics import CompileError

from .localrun import plan, run, state_dir_of, write

CATALOG = """instance_type,accelerator,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,spot_usd_per_hour,spot_preemptions_per_hour
cpu2,,0,2,4,0.10,0.03,0.47
"""

#: 20 items at a planned 1 item/s in batches of 2 (c = 2 s), startup 1 s: T = 21 s,
#: due at the 30 s deadline, margin 2r + c = 4 s. The command works faster than
#: planned (0.4 s a batch), and writes each item with the attempt that did it.
WORKFLOW = """
workflow t {
  deadline = 30s
  catalog  = "./cat.csv"
}
step work {
  items      = 20
  command    = ["python3", "-c", "import os, time; from exo.worker import shard; s = shard(); [(time.sleep(0.4), b.commit({{'items.tsv': ''.join('%d\\\\t%s\\\\n' % (i, os.environ['EXO_ATTEMPT']) for i in b.items)}})) for b in s]; s.assemble()"]
  cpu        = 1
  memory     = 1GiB
  throughput { cpu = { 2: 1 } }
  startup    = 1s
  checkpoint = batch
  spot       = only
  output     = "out/work"
}
"""


def _project(tmp: Path, up_s: int, gap_s: int) -> tuple[Path, Path]:
    write(tmp / "cat.csv", CATALOG)
    wf = write(tmp / "t.exo", WORKFLOW)
    trace = tmp / "trace.json"
    trace.write_text(json.dumps({"metadata": {"gap_seconds": 1}, "data": [1] * up_s + [0] * gap_s}))
    return wf, trace


def test_a_long_capacity_gap_moves_the_shard_to_on_demand(tmp_path: Path) -> None:
    wf, trace = _project(tmp_path, up_s=3, gap_s=600)
    planned = plan(wf)
    (sp,) = planned.plan.steps
    assert sp.spot and sp.replicas == 1
    rep = run(planned, wf, spot_trace=str(trace))
    assert rep.state == "done", rep
    rows = (tmp_path / "out" / "work" / "shard-0" / "items.tsv").read_text().splitlines()
    items = sorted(int(r.split("\t")[0]) for r in rows)
    assert items == list(range(20))  # every item once, across the attempts
    (path,) = (state_dir_of(wf) / ledger.LOCAL_FOLDER).glob("*.jsonl")
    book = ledger.read(path)
    first, last = sorted(book.of_step("work"), key=lambda a: a.attempt)
    assert first.spot is True and first.fallback is None and first.outcome == "preempted"
    assert last.spot is False and last.outcome == "succeeded"
    assert last.fallback is not None and "margin (2r + c) > due at 30s" in last.fallback
    # It resumed from the checkpoint: what the spot attempt committed was not redone.
    assert first.items_committed > 0
    assert first.items_committed + last.items_committed == 20
    assert {r.split("\t")[1] for r in rows} == {"1", "2"}
    act = actuals.compare(planned.program, planned.plan, planned.catalog, book, None)
    (st,) = act.steps
    assert st.fallback_shards == 1 and st.tiers_used == ["cpu2 on-demand", "cpu2 spot"]
    assert st.fallback_ondemand_hours == pytest.approx((last.seconds or 0) / 3600)
    expected = (first.seconds or 0) / 3600 * 0.03 + (last.seconds or 0) / 3600 * 0.10
    assert st.actual.cost_usd == pytest.approx(expected)


def test_without_the_fallback_the_shard_waits_for_capacity(tmp_path: Path) -> None:
    """`--local-fallback none`: the shard waits out the gap on spot (a short one here)."""
    wf, trace = _project(tmp_path, up_s=2, gap_s=3)
    planned = plan(wf)
    rep = run(planned, wf, spot_trace=str(trace), fallback="none", spot_time_scale=1.0)
    assert rep.state == "done", rep
    (path,) = (state_dir_of(wf) / ledger.LOCAL_FOLDER).glob("*.jsonl")
    attempts = ledger.read(path).of_step("work")
    assert all(a.spot is True and a.fallback is None for a in attempts)
    assert attempts[0].outcome == "preempted"
    # The restart waited for the capacity to come back (5 s after the run's start, or later).
    t0 = ledger.read(path).started_at or 0.0
    assert len(attempts) >= 2 and all(a.started_at - t0 >= 5.0 for a in attempts[1:])


# --- the placement, on a fake clock ------------------------------------------------------


def _emulation(tmp: Path, **options: object):  # type: ignore[no-untyped-def]
    wf, trace = _project(tmp, up_s=5, gap_s=100)
    cfg = spot_config(plan(wf), LocalOptions.model_validate({"spot_trace": str(trace), **options}))
    assert cfg is not None
    return cfg.start(tmp / "checkpoints", 1000.0)


def test_placement_follows_the_trace_and_the_rule(tmp_path: Path) -> None:
    emu = _emulation(tmp_path)
    first = emu.place("work", 0, 1000.0)
    assert first is not None and first.spot and first.preempt_at == pytest.approx(1005.0)
    assert emu.place("other", 0, 1000.0) is None
    # In the gap: wait, but not past the last moment the rule allows (30 - 20 - 4 = 6 s).
    waiting = emu.place("work", 0, 1005.5)
    assert waiting is not None and waiting.spot
    assert waiting.wait_until == pytest.approx(1006.0, abs=0.01)
    moved = emu.place("work", 0, 1006.01)
    assert moved is not None and not moved.spot and moved.moved and moved.fallback
    again = emu.place("work", 0, 1010.0)  # for good
    assert again is not None and not again.spot and not again.moved
    assert again.fallback == moved.fallback


def test_a_resumed_run_keeps_the_clock_and_the_move(tmp_path: Path) -> None:
    emu = _emulation(tmp_path)
    moved = emu.place("work", 0, 1007.0)
    assert moved is not None and moved.moved and moved.fallback
    # The next `exoc run` of the same run: a new loop clock, the same checkpoint root.
    again = emu.config.start(tmp_path / "checkpoints", 50.0)
    assert again.started <= 50.0  # the clock started when the first run did, not now
    back = again.place("work", 0, 50.0)
    assert back is not None and not back.spot and back.fallback == moved.fallback
    assert not back.moved  # said once, by the run that moved it


def test_placement_without_the_fallback_waits_for_capacity(tmp_path: Path) -> None:
    emu = _emulation(tmp_path, fallback="none")
    waiting = emu.place("work", 0, 1010.0)
    assert waiting is not None and waiting.spot and waiting.wait_until == pytest.approx(1105.0)


def test_a_poisson_rate_is_seeded(tmp_path: Path) -> None:
    wf, _ = _project(tmp_path, 1, 1)
    opts = LocalOptions(spot_rate=3600.0, spot_seed=7)
    a = spot_config(plan(wf), opts)
    b = spot_config(plan(wf), opts)
    assert a is not None and b is not None
    pa = a.start(tmp_path, 0.0).place("work", 0, 0.0)
    pb = b.start(tmp_path, 0.0).place("work", 0, 0.0)
    assert pa is not None and pb is not None and pa.preempt_at == pb.preempt_at
    assert pa.preempt_at is not None and 0.0 < pa.preempt_at < 60.0


def test_a_bad_trace_is_a_diagnostic(tmp_path: Path) -> None:
    wf, trace = _project(tmp_path, 1, 1)
    trace.write_text("{}")
    with pytest.raises(CompileError) as err:
        spot_config(plan(wf), LocalOptions(spot_trace=str(trace)))
    assert err.value.diagnostics[0].code.startswith("E63")
