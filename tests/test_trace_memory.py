"""``benchmarks/trace_memory.py``: an exoc command's memory by stage, its output untouched.

The tracer runs the command in its own process and reports on stderr; the plan
JSON on stdout must be exactly what ``exoc plan`` prints, and the report must
name the peak with the frames of the stage that was running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACER = ROOT / "benchmarks" / "trace_memory.py"
EXAMPLE = ROOT / "examples" / "quickstart.exo"

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="reads /proc/self/statm (Linux)"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_plan_output_untouched_and_peak_reported() -> None:
    command = ["plan", str(EXAMPLE), "--format", "json", "--time-limit", "inf"]
    traced = _run(str(TRACER), "--step-mb", "5", "--depth", "100", "--", *command)
    plain = _run("-m", "exo.compiler", *command)
    assert traced.returncode == plain.returncode == 0, traced.stderr
    got, want = json.loads(traced.stdout), json.loads(plain.stdout)
    got.pop("solve_time_s")
    want.pop("solve_time_s")
    assert got == want
    lines = traced.stderr.splitlines()
    peak = next(line for line in lines if line.startswith("peak "))
    assert float(peak.split()[1]) > 10  # MiB: an interpreter with exo loaded
    assert any(line.startswith("ru_maxrss ") for line in lines)
    # the peak's frames (exo's whole stack): inside the plan command, not start-up
    frames = lines[lines.index(peak) + 1 :]
    assert any(f.strip().startswith("plan.py:") for f in frames), traced.stderr


def test_needs_a_command() -> None:
    got = _run(str(TRACER))
    assert got.returncode == 2
    assert "give an exoc command" in got.stderr
