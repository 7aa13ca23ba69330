"""`exoc simulate`: trace replay with hand-computable outcomes, the fallback rule, bad traces.

The synthetic traces are written by the tests. The main one has one-hour ticks
``[1, 1, 1, 1, 0, 0]`` (a 6 h period, capacity for the first 4 h); a run starts
at an offset ``x`` uniform in [0, 6) h. A step of 2 h of work, no startup and
no checkpoint then:

- ``x <= 2``: runs 2 h and ends (duration 2);
- ``2 < x < 4``: is preempted after ``4 - x`` h, waits for capacity and runs
  2 h from trace time 6 (duration ``8 - x``);
- ``x >= 4``: waits until trace time 6 (duration ``8 - x``).

So P(duration <= 2) = 1/3, the mean duration is 20/6 h and the mean spot time
2 + 1/3 h. With a deadline of 4 h and the fallback (margin ``2r + c = 2``, so a
spot attempt may start only at time 0), every run ends by 4 h; the ``x > 2``
runs (2/3 of them) use 2 h of on-demand, the mean spot time is 1 h.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exo.compiler.diagnostics import CompileError
from exo.compiler.fallback import latest_finish, margin_h, spot_attempt_fits
from exo.compiler.simulate import SimStep, simulate
from exo.compiler.spot_traces import SpotTrace, load_traces, parse_trace, spells

from .conftest import REPO

RUNS = 20_000
TRACE = SpotTrace("t", 1.0, (1, 1, 1, 1, 0, 0))


def _sd(p: float, runs: int = RUNS) -> float:
    return 4.0 * math.sqrt(p * (1.0 - p) / runs)


def _step(instances: int = 1, checkpoint_h: float = 2.0, p_h: float = 2.0) -> SimStep:
    return SimStep(
        "s", (), 0.0, p_h, instances, 0.0, 2.0, checkpoint_h, 0.0, 1.0, 2.0 * instances,
        spot=True, ondemand_usd_per_hour=3.0,
    )  # fmt: skip


def test_replay_without_fallback_matches_the_hand_computation() -> None:
    res = simulate([_step()], runs=RUNS, seed=1, traces=[TRACE], deadline_h=4.0)
    st = res.steps[0]
    assert abs(st.hit_rate - 1 / 3) <= _sd(1 / 3)
    assert st.mean_duration_h == pytest.approx(20 / 6, abs=0.03)
    assert st.cost_usd.mean == pytest.approx(2 + 1 / 3, abs=0.02)  # spot price 1
    # deadline 4 h: x <= 2 (2 h) and x >= 4 (8 - x <= 4): 2/3 of the runs
    assert res.deadline_hit_rate is not None
    assert abs(res.deadline_hit_rate - 2 / 3) <= _sd(2 / 3)
    assert res.ondemand_h == 0.0 and res.fallback_rate == 0.0 and res.traces == ("t",)


def test_fallback_meets_every_deadline_at_the_computed_cost() -> None:
    res = simulate([_step()], runs=RUNS, seed=2, traces=[TRACE], deadline_h=4.0, policy="fallback")
    assert res.deadline_hit_rate == 1.0 and res.steps[0].due_rate == 1.0
    assert abs(res.fallback_rate - 2 / 3) <= _sd(2 / 3)
    assert res.ondemand_h == pytest.approx(4 / 3, abs=0.03)
    # spot 1 h at $1 + on-demand 4/3 h at $3
    assert res.cost_usd.mean == pytest.approx(1.0 + 4.0, abs=0.06)


def test_instances_of_a_step_lose_capacity_together() -> None:
    one = simulate([_step(1)], runs=4000, seed=3, traces=[TRACE])
    three = simulate([_step(3)], runs=4000, seed=3, traces=[TRACE])
    # together: the step takes as long as one instance; independent losses would take longer
    assert three.steps[0].hit_rate == one.steps[0].hit_rate
    assert three.mean_makespan_h == pytest.approx(one.mean_makespan_h)
    assert three.mean_cost_usd == pytest.approx(3 * one.mean_cost_usd)


def test_checkpoints_keep_work_across_a_gap() -> None:
    """With c = 1 h, 2 < x <= 3 saves 1 h of work: duration 7 - x instead of 8 - x."""
    res = simulate([_step(checkpoint_h=1.0)], runs=RUNS, seed=4, traces=[TRACE])
    # mean = (1/6) [4 + int_2^3 (7 - x) dx + int_3^6 (8 - x) dx] = (4 + 4.5 + 10.5) / 6
    assert res.steps[0].mean_duration_h == pytest.approx(19 / 6, abs=0.03)


def test_an_n_node_trace_keeps_its_share_of_instances() -> None:
    trace = SpotTrace("n", 1.0, (2, 2, 1, 1))
    low, high = spells(trace, 0.0), spells(trace, 1.0)
    assert low.always_up and not high.always_up
    assert list(high.starts) == [0.0, 4.0, 8.0] and list(high.ends) == [2.0, 6.0, 10.0]


def test_a_run_wraps_around_the_end_of_the_trace() -> None:
    """Capacity at the end and the start of the trace is one spell: no preemption at the seam."""
    s = spells(SpotTrace("w", 1.0, (1, 0, 1)), 0.0)
    assert list(s.starts) == [0.0, 2.0, 5.0, 8.0] and list(s.ends) == [1.0, 4.0, 7.0, 9.0]


def test_the_rule_and_due_times() -> None:
    assert margin_h(0.25, 0.5) == 1.0
    assert spot_attempt_fits(1.0, 4.0, 2.0, 0.25, 0.5)  # 1 + 2 + 1 <= 4
    assert not spot_attempt_fits(1.01, 4.0, 2.0, 0.25, 0.5)
    due = latest_finish(["a", "b", "c"], {"a": 1.0, "b": 2.0, "c": 0.5}, {"a": ["b", "c"]}, 10.0)
    assert due == {"a": 8.0, "b": 10.0, "c": 10.0}


def test_under_the_model_the_mean_cost_is_e_and_the_fallback_changes_little() -> None:
    """Poisson mode: mean cost = m * price * E (DESIGN §3), with and without the fallback."""
    from exo.compiler.preemption import expected_hours

    s = SimStep(
        "s", (), 0.0, 3.0, 2, 0.1, 2.0, 0.25, 0.47, 1.0, 2 * expected_hours(2.1, 0.1, 0.25, 0.47)
    )
    res = simulate([s], runs=RUNS, seed=5)
    assert abs(res.mean_cost_usd - s.expected_cost_usd) <= 4 * res.cost_stderr_usd
    fb = simulate([s], runs=RUNS, seed=5, policy="fallback", deadline_h=3.0)
    assert fb.deadline_hit_rate == 1.0
    assert 0.0 < fb.fallback_rate < 0.3  # 2 instances, slack 0.9 h: the odd long loss
    assert fb.mean_cost_usd < 2 * 3.0 * 2.1  # below all on-demand (2 x $3 x T)


# --------------------------------------------------------------------------- reading traces


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def test_the_public_format_is_read(tmp_path: Path) -> None:
    p = _write(
        tmp_path, "t.json", json.dumps({"metadata": {"gap_seconds": 300}, "data": [1, 0, 1]})
    )
    (t,) = load_traces([p])
    assert t.tick_h == pytest.approx(300 / 3600) and t.counts == (1, 0, 1)
    assert t.available_fraction() == pytest.approx(2 / 3)


def test_every_bad_trace_is_a_diagnostic(tmp_path: Path) -> None:
    paths = [
        tmp_path / "missing.json",
        _write(tmp_path, "a.json", "{not json"),
        _write(tmp_path, "b.json", json.dumps({"metadata": {}, "data": [1]})),
        _write(tmp_path, "c.json", json.dumps({"metadata": {"gap_seconds": 60}, "data": [1, -2]})),
        _write(tmp_path, "d.json", json.dumps({"metadata": {"gap_seconds": 60}, "data": [0, 0]})),
        _write(tmp_path, "e.json", json.dumps([1, 2])),
        tmp_path,
    ]
    with pytest.raises(CompileError) as e:
        load_traces(paths)
    codes = [d.code for d in e.value.diagnostics]
    assert codes == ["E630", "E631", "E632", "E633", "E634", "E631", "E630"]
    assert e.value.diagnostics[1].span is not None  # points at the JSON error
    with pytest.raises(CompileError):
        parse_trace(json.dumps({"metadata": {"gap_seconds": True}, "data": [1.5]}), "x")


# --------------------------------------------------------------------------- the command


def _exoc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "exo.compiler", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def _bursty(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    data: list[int] = []
    while len(data) < 2000:
        data += [1] * int(rng.integers(1, 30)) + [0] * int(rng.integers(1, 12))
    return _write(tmp, "bursty.json", json.dumps({"metadata": {"gap_seconds": 300}, "data": data}))


def test_simulate_json_under_the_model_keeps_the_plans_promise() -> None:
    r = _exoc("simulate", "examples/overnight_classify.exo", "--runs", "4000", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "poisson" and out["policy"] == "none" and out["runs"] == 4000
    assert out["p_meet_makespan"] >= 0.95 - _sd(0.95, 4000)
    assert out["cost_usd"]["mean"] == pytest.approx(out["expected_cost_usd"], rel=0.02)
    assert [s["name"] for s in out["steps"]] == ["split", "classify", "extract", "load"]
    assert out["all_on_demand_cost_usd"] > out["expected_cost_usd"]


def test_simulate_replays_a_trace_and_the_fallback_meets_the_deadline(tmp_path: Path) -> None:
    trace = str(_bursty(tmp_path))
    args = ["simulate", "examples/overnight_classify.exo", "--trace", trace, "--runs", "3000"]
    none = json.loads(_exoc(*args, "--format", "json").stdout)
    fb = _exoc(*args, "--format", "json", "--policy", "fallback")
    assert fb.returncode == 0, fb.stderr
    fall = json.loads(fb.stdout)
    assert none["model"] == "traces" and none["traces"] == [trace]
    assert none["p_meet_deadline"] < 0.9  # bursty gaps break the Poisson promise
    assert fall["p_meet_deadline"] == 1.0 and fall["ondemand_hours"] > 0
    assert fall == json.loads(_exoc(*args, "--format", "json", "--policy", "deadline").stdout)
    text = _exoc(*args, "--policy", "fallback", "--seed", "3")
    assert text.returncode == 0 and "deadline  9.00 h, met in 100.0%" in text.stdout
    assert "on-demand instance-hours per run" in text.stdout


def test_simulate_reports_bad_traces_and_bad_flags(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.json", json.dumps({"metadata": {"gap_seconds": 0}, "data": []}))
    r = _exoc("simulate", "examples/quickstart.exo", "--trace", str(bad))
    assert r.returncode == 1 and "E632" in r.stderr and "E633" in r.stderr
    assert "Traceback" not in r.stderr
    assert _exoc("simulate", "examples/quickstart.exo", "--runs", "0").returncode == 2
    many = _exoc("simulate", "examples/azure_transcribe.exo", "--runs", "1000000")
    assert many.returncode == 2 and "use at most 909,090 runs" in many.stderr  # 11 instances
    assert _exoc("simulate", "examples/quickstart.exo", "--policy", "x").returncode == 2


def test_simulate_html_is_the_plan_report_with_a_simulation_section(tmp_path: Path) -> None:
    trace = str(_bursty(tmp_path))
    out = tmp_path / "sim.html"
    r = _exoc(
        "simulate", "examples/overnight_classify.exo", "--trace", trace, "--runs", "2000",
        "--policy", "fallback", "--format", "html", "-o", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    assert 'id="schedule"' in page and 'id="simulation"' in page
    assert page.count('class="chart histogram"') == 2
    assert 'deadline met</td><td class="num">100.0%' in page
    assert "planned 8h28m" in page and "expected $13.44" in page
