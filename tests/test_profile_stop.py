"""Stopping ``exoc profile`` stops the command it measures and removes its scratch folder.

The command under measurement starts a child of its own (as a real job's
launcher does), and ignores SIGTERM, so only the process-group SIGKILL after
the grace period (``profiling.GRACE_S``) ends it: neither may outlive ``exoc profile``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .localrun import HEADER, write
from .test_local_failures import alive, wait_for

#: Ignores SIGTERM, starts a child that sleeps, writes both pids, then waits for ever.
STUBBORN = (
    "import os, signal, subprocess, sys, time, pathlib;"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    "c = subprocess.Popen(['sleep', '300']);"
    "pathlib.Path(sys.argv[1]).write_text(' '.join(map(str, [os.getpid(), c.pid])));"
    "time.sleep(300)"
)


def _workflow(tmp_path: Path) -> Path:
    pids = tmp_path / "pids"
    return write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step work {{
  items      = 10
  command    = [{json.dumps(sys.executable)}, "-c", {json.dumps(STUBBORN)}, {json.dumps(str(pids))}]
  cpu        = 1
  throughput {{ cpu = 10 }}
}}
""",
    )


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is a Linux feature")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_profile_leaves_no_process_and_no_scratch(
    tmp_path: Path, sig: signal.Signals
) -> None:
    wf = _workflow(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exo.compiler", "profile", str(wf), "work", "--items", "10"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids_file = tmp_path / "pids"
    wait_for(lambda: pids_file.exists() and " " in pids_file.read_text(), timeout=60)
    command, child = (int(p) for p in pids_file.read_text().split())
    assert any(scratch.iterdir())  # the scratch folder exists while it runs
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not alive(command) and not alive(child)
    assert list(scratch.iterdir()) == []
