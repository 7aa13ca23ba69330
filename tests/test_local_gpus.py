"""The local backend spreads a GPU step's replicas over this machine's GPUs (``devices.py``).

Real runs with real processes; the GPUs are named with ``--local-gpus`` (this
machine has none): each shard writes the ``CUDA_VISIBLE_DEVICES`` it was given
and when it ran, so the tests see which devices were held at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from exo.backends.local import LocalOptions
from exo.backends.local import devices as dv

from .localrun import HEADER, plan, py_command, run, write

#: Each shard records the devices it was told and when it held them (it sleeps a little,
#: so that the shards of a step overlap).
RECORD = py_command(
    "import json, os, sys, time; t = time.time(); time.sleep(0.4); "
    "rec = {'devices': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': t, 'end': time.time(),"
    " 'shard': os.environ['EXO_BATCH_INDEX']}; "
    "open(os.path.join(sys.argv[1], 'rec.json'), 'w').write(json.dumps(rec))",
    "{output}",
)

BODY = """
step embed {{
  command      = {record}
  output       = "out/embed"
  items        = {replicas}
  accelerators = [A100]
  gpus         = {gpus}
  throughput   {{ A100 = 100 }}
  replicas     = {replicas}
  spot         = never
}}

step summarize {{
  input    = embed
  command  = {record}
  output   = "out/summarize"
  duration = 1m
}}
"""


def records(root: Path, step: str) -> list[dict[str, object]]:
    return [
        json.loads(p.read_text())
        for p in sorted((root / "out" / step).glob("shard-*/rec.json"))
        or [root / "out" / step / "rec.json"]
    ]


def workflow(tmp_path: Path, *, replicas: int, gpus: int = 1) -> Path:
    text = HEADER + BODY.format(record=RECORD, replicas=replicas, gpus=gpus)
    return write(tmp_path / "wf.exo", text)


def held_at_once(recs: list[dict[str, object]]) -> int:
    """The most shards that ran at the same time."""
    spans = [(float(r["start"]), float(r["end"])) for r in recs]  # type: ignore[arg-type]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


def test_each_replica_gets_its_own_gpu(tmp_path: Path) -> None:
    flow = workflow(tmp_path, replicas=3)
    planned = plan(flow)
    [sp] = [s for s in planned.plan.steps if s.name == "embed"]
    assert (sp.accelerator, sp.replicas) == ("A100", 3)
    report = run(planned, flow, jobs=4, gpus="0,1,2", environ={"PATH": os.environ["PATH"]})
    assert report.state == "done", report.messages
    recs = records(tmp_path, "embed")
    assert held_at_once(recs) == 3  # they ran side by side, as planned
    assert sorted(str(r["devices"]) for r in recs) == ["0", "1", "2"]
    # a CPU step's shards are not told about GPUs
    assert [r["devices"] for r in records(tmp_path, "summarize")] == [None]
    assert not any("GPUs at once" in m for m in report.messages)


def test_a_replica_of_two_gpus_gets_two_and_exoc_s_own_variable_is_replaced(
    tmp_path: Path,
) -> None:
    flow = workflow(tmp_path, replicas=2, gpus=2)
    environ = {"PATH": os.environ["PATH"], "CUDA_VISIBLE_DEVICES": "4,5,6,7"}
    report = run(plan(flow), flow, jobs=4, environ=environ)  # auto: exoc's variable
    assert report.state == "done", report.messages
    got = sorted(str(r["devices"]) for r in records(tmp_path, "embed"))
    assert got == ["4,5", "6,7"]


def test_more_replicas_than_gpus_share_them_evenly_and_the_run_says_so(tmp_path: Path) -> None:
    flow = workflow(tmp_path, replicas=4)
    report = run(plan(flow), flow, jobs=4, gpus="0,1", environ={"PATH": os.environ["PATH"]})
    assert report.state == "done", report.messages
    recs = records(tmp_path, "embed")
    assert held_at_once(recs) == 4  # nothing waits for a device
    assert sorted(str(r["devices"]) for r in recs) == ["0", "0", "1", "1"]
    [note] = [m for m in report.messages if "GPUs at once" in m]
    assert note.startswith("the plan runs up to 4 GPUs at once and this machine gives its shards 2")


def test_none_tells_the_shards_nothing(tmp_path: Path) -> None:
    flow = workflow(tmp_path, replicas=2)
    report = run(plan(flow), flow, jobs=4, gpus="none", environ={"PATH": os.environ["PATH"]})
    assert report.state == "done", report.messages
    assert [r["devices"] for r in records(tmp_path, "embed")] == [None, None]


@pytest.mark.parametrize("bad", ["", "0,,1", "0,0", " , "])
def test_a_malformed_gpu_list_is_refused_with_advice(bad: str) -> None:
    with pytest.raises(ValidationError, match="give auto, none, or distinct device indices"):
        LocalOptions(gpus=bad)


def test_parse() -> None:
    assert dv.parse("auto") is None
    assert dv.parse("NONE") == ()
    assert dv.parse(" 0, 1 ,GPU-5a1c") == ("0", "1", "GPU-5a1c")


def test_the_pool_hands_out_the_least_held_devices_in_their_order() -> None:
    pool = dv.DevicePool(["0", "1", "2"])
    assert [pool.take(1) for _ in range(4)] == ["0", "1", "2", "0"]
    pool.give("1")
    assert pool.take(2) == "1,2"  # 1 is free; 2 is held once, as 0 is twice
    assert pool.take(5) == "0,1,2"  # each device at most once, in their order
    pool.give("1,2,0")
    assert pool.held == {"0": 2, "1": 1, "2": 2}


def test_the_variable_is_replaced_not_repeated() -> None:
    entries = [b"PATH=/bin", b"CUDA_VISIBLE_DEVICES=0,1", b"HOME=/root"]
    assert dv.with_devices(entries, "3") == [b"PATH=/bin", b"HOME=/root", b"CUDA_VISIBLE_DEVICES=3"]


def test_peak_demand_counts_steps_that_overlap_and_not_those_that_touch() -> None:
    assert dv.peak_demand([]) == 0
    assert dv.peak_demand([(0, 2, 4), (1, 3, 2), (2, 4, 8), (0, 9, 0)]) == 10
    assert dv.peak_demand([(0, 1, 8), (1, 2, 8)]) == 8


def test_discovery_reads_the_variable_then_nvidia_smi(tmp_path: Path) -> None:
    assert dv.discover({"CUDA_VISIBLE_DEVICES": "2, 3"}) == ("2", "3")
    assert dv.discover({"CUDA_VISIBLE_DEVICES": ""}) == ()  # CUDA's own "no GPU"
    assert dv.discover({"PATH": str(tmp_path)}) == ()  # no nvidia-smi
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a)'\n"
        "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-b)'\n"
    )
    smi.chmod(0o755)
    assert dv.discover({"PATH": str(tmp_path)}) == ("0", "1")


def test_no_warning_without_gpus_or_within_them() -> None:
    assert dv.shortage(8, ()) is None
    assert dv.shortage(2, ("0", "1")) is None
    assert dv.shortage(3, ("0", "1")) is not None
