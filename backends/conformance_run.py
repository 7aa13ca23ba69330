"""Run-time conformance: what runs is what was planned (DESIGN §6), the same cases for every backend.

A backend's test module subclasses :class:`ExecutionConformance` (as
``TestXxx``) and implements :meth:`ExecutionConformance.driver`, which returns a
:class:`ShardDriver`: how to start a workflow with that backend, where its
shards publish and keep their checkpoints, and how a shard is preempted (or its
runner killed) the backend's way. The cases:

- **ranges**: a step with ``W`` items and ``n`` planned replicas runs ``n``
  shards, shard ``i`` over ``[floor(W*i/n), floor(W*(i+1)/n))``, for awkward
  ``W`` and ``n`` (``W < n``, primes, 1); every item is processed exactly once;
- **preemption**: a shard stopped from outside mid-run resumes from its
  checkpoint: no batch its first attempt committed is started again, every item
  is published once, no error retry is used, and the checkpoint folder is gone
  once the shard is published;
- **runner kill**: the runner is killed with SIGKILL mid-shard; the checkpoint
  folder survives, the resumed run skips what it holds, and removes it once
  the shard is published (a backend without a runner skips this case).

Every command is a small Python program that uses the worker helper
(``exo.worker``) and logs each batch it starts and commits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from exo.worker import read_progress

from .api import shard_range

#: ``(items, replicas)``: fewer items than replicas, primes, one item, one replica.
RANGE_CASES: tuple[tuple[int, int], ...] = ((1, 1), (5, 8), (13, 5), (97, 7))

#: The command every case runs: args LOG_DIR DELAY_S. Logs ``open``, ``batch`` and
#: ``commit`` lines (with ``EXO_ATTEMPT`` and the pid, which tells attempts apart);
#: each batch's result is its item ids.
WORKER = """\
import os, sys, time
from exo.worker import shard
log_dir, delay = sys.argv[1], float(sys.argv[2])
s = shard()
path = os.path.join(log_dir, "%s-%d.log" % (os.environ["EXO_STEP"], s.index))
with open(path, "a") as log:
    def note(*words):
        log.write(" ".join(str(w) for w in (*words, os.getpid())) + "\\n")
        log.flush()
    note("open", s.start, s.end, s.attempt, os.environ["EXO_SHARD_COUNT"])
    for b in s:
        note("batch", b.start, b.end, s.attempt)
        time.sleep(delay)
        b.commit({"items.txt": "".join("%d\\n" % i for i in b.items)})
        note("commit", b.start, b.end, s.attempt)
s.assemble()
"""

CATALOG = (
    "instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,spot_preemptions_per_hour\n"
    "cpu1,,0,1,2,0.10,0.03,0.01\n"
)


def _string(text: str) -> str:
    """``text`` as an .exo string literal (braces doubled, quotes and backslashes escaped)."""
    return json.dumps(text.replace("{", "{{").replace("}", "}}"))


@dataclass(frozen=True, slots=True)
class StepCase:
    name: str
    items: int
    replicas: int
    batch: int
    delay_s: float


def workflow_text(folder: Path, cases: list[StepCase]) -> str:
    """A workflow of independent spot steps, each running :data:`WORKER` over its shards."""
    script = folder / "conformance_worker.py"
    logs = folder / "logs"
    parts = [
        "workflow conformance {\n  deadline = 24h\n  budget   = $1000\n"
        '  catalog  = "./catalog.csv"\n}\n'
    ]
    for c in cases:
        command = ", ".join(
            _string(a) for a in (sys.executable, str(script), str(logs), f"{c.delay_s:g}")
        )
        parts.append(
            f"step {c.name} {{\n"
            f"  items      = {c.items}\n"
            f"  command    = [{command}]\n"
            f'  output     = "out/{{step}}"\n'
            "  cpu        = 1\n"
            f"  throughput {{ cpu = {{ {c.batch}: 1000 }} }}\n"
            f"  replicas   = {c.replicas}\n"
            "  spot       = only\n"
            "  checkpoint = batch\n"
            "  retries    = 0\n"
            "}\n"
        )
    return "\n".join(parts)


def write_workflow(folder: Path, cases: list[StepCase]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    (folder / "conformance_worker.py").write_text(WORKER, "utf-8")
    (folder / "catalog.csv").write_text(CATALOG, "utf-8")
    path = folder / "conformance.exo"
    path.write_text(workflow_text(folder, cases), "utf-8")
    return path


class ShardDriver(ABC):
    """Runs the conformance workflows with one backend."""

    @abstractmethod
    def start(self, workflow: Path) -> None:
        """Start (or resume) a run of ``workflow``; return at once."""

    @abstractmethod
    def wait(self, timeout_s: float) -> None:
        """Wait until the run ends; fail the test if it did not succeed."""

    @abstractmethod
    def published(self, step: str) -> Path:
        """The folder holding the step's published ``shard-<i>`` folders."""

    @abstractmethod
    def checkpoint(self, step: str, index: int) -> Path | None:
        """Where the shard's checkpoint folder is (``None`` before the run has one)."""

    @abstractmethod
    def preempt(self, step: str, index: int) -> None:
        """Stop the running shard from outside, as the platform does when it reclaims spot capacity."""

    def kill_runner(self) -> None:
        """SIGKILL the runner mid-run (leave the shards to the backend's own rules)."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - a hook: nothing to stop by default
        """Stop anything the driver started that is still running."""


class ProcessDriver(ShardDriver):
    """A driver whose run is one child process (a runner, a follower), logged to a file.

    Subclasses say what to start (:meth:`command`) and in which environment.
    """

    def __init__(self, folder: Path, env: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @abstractmethod
    def command(self, workflow: Path) -> list[str]:
        """The argv of one run of ``workflow``."""

    def _log(self) -> Path:
        return self.folder / f"run-{self.runs}.log"

    def start(self, workflow: Path) -> None:
        self.runs += 1
        argv = self.command(workflow)
        with self._log().open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait(self, timeout_s: float) -> None:
        assert self.proc is not None
        rc = self.proc.wait(timeout=timeout_s)
        assert rc == 0, self._log().read_text("utf-8", "replace")

    def kill_runner(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True, slots=True)
class LogLine:
    kind: str
    start: int
    end: int
    #: ``EXO_ATTEMPT`` as the command saw it.
    attempt: int
    #: The process: one attempt.
    pid: int


def read_log(folder: Path, step: str, index: int) -> list[LogLine]:
    path = folder / "logs" / f"{step}-{index}.log"
    out = []
    for line in path.read_text("utf-8").splitlines():
        words = line.split()
        kind, start, end, attempt, pid = words[0], *map(int, words[1:4]), int(words[-1])
        out.append(LogLine(kind, start, end, attempt, pid))
    return out


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def committed(driver: ShardDriver, step: str, index: int) -> int:
    path = driver.checkpoint(step, index)
    return 0 if path is None else len(read_progress(path).batches)


class ExecutionConformance:
    """Subclass as ``TestXxx`` and implement :meth:`driver`."""

    #: Longest a conformance run may take (generous: CI machines are shared).
    timeout_s: ClassVar[float] = 300.0

    def driver(self, folder: Path) -> ShardDriver:
        """A driver for runs of workflows in ``folder``; override in the subclass."""
        raise NotImplementedError("override driver() to run workflows with the backend")

    # --- checks --------------------------------------------------------------------------

    def _published_items(self, driver: ShardDriver, case: StepCase) -> list[list[int]]:
        out = driver.published(case.name)
        shards = sorted(p.name for p in out.iterdir() if p.name.startswith("shard-"))
        assert shards == sorted(f"shard-{i}" for i in range(case.replicas)), (case, shards)
        items = []
        for i in range(case.replicas):
            path = out / f"shard-{i}" / "items.txt"
            text = path.read_text("utf-8") if path.exists() else ""
            items.append([int(x) for x in text.split()])
        return items

    def _check_once(self, driver: ShardDriver, case: StepCase) -> None:
        per_shard = self._published_items(driver, case)
        for i, items in enumerate(per_shard):
            r = shard_range(case.items, case.replicas, i)
            assert items == list(range(r.start, r.end)), (case.name, i, items)
        assert sorted(x for items in per_shard for x in items) == list(range(case.items))
        for i in range(case.replicas):
            path = driver.checkpoint(case.name, i)
            assert path is None or not path.exists(), f"{path} left after publication"

    def _check_resumed(self, folder: Path, step: str, index: int) -> None:
        """A later attempt started no batch an earlier attempt had committed."""
        log = read_log(folder, step, index)
        attempts = [x.pid for x in log if x.kind == "open"]
        assert len(attempts) >= 2, f"{step} shard {index} ran once: {log}"
        numbers = [x.attempt for x in log if x.kind == "open"]
        assert numbers == sorted(set(numbers)), f"EXO_ATTEMPT did not count up: {numbers}"
        done: set[tuple[int, int]] = set()
        for pid in attempts:
            started = {(x.start, x.end) for x in log if x.kind == "batch" and x.pid == pid}
            assert not started & done, f"attempt {pid} redid committed batches {started & done}"
            done |= {(x.start, x.end) for x in log if x.kind == "commit" and x.pid == pid}
        first = {(x.start, x.end) for x in log if x.kind == "commit" and x.pid == attempts[0]}
        assert first, "the first attempt committed nothing before it was stopped"

    # --- the cases -----------------------------------------------------------------------

    def test_shard_ranges_cover_every_item_once(self, tmp_path: Path) -> None:
        cases = [StepCase(f"w{w}_n{n}", w, n, 2, 0.0) for w, n in RANGE_CASES]
        folder = tmp_path / "ranges"
        wf = write_workflow(folder, cases)
        driver = self.driver(folder)
        try:
            driver.start(wf)
            driver.wait(self.timeout_s)
        finally:
            driver.close()
        for case in cases:
            self._check_once(driver, case)
            for i in range(case.replicas):
                r = shard_range(case.items, case.replicas, i)
                (opened, *_) = read_log(folder, case.name, i)
                assert (opened.start, opened.end) == (r.start, r.end), (case.name, i)

    def _interrupted(self, folder: Path, case: StepCase, shard: int, stop: str) -> ShardDriver:
        """Run ``case``; after two commits of ``shard``, ``stop`` it (``preempt`` the shard,
        or ``kill`` the runner and start the run again); wait for the end."""
        wf = write_workflow(folder, [case])
        driver = self.driver(folder)
        try:
            driver.start(wf)
            wait_until(
                lambda: committed(driver, case.name, shard) >= 2, "two commits", self.timeout_s
            )
            if stop == "preempt":
                driver.preempt(case.name, shard)
            else:
                try:
                    driver.kill_runner()
                except NotImplementedError:
                    pytest.skip("the backend has no runner of its own to kill")
                path = driver.checkpoint(case.name, shard)
                assert path is not None and len(read_progress(path).batches) >= 2
                driver.start(wf)
            driver.wait(self.timeout_s)
        finally:
            driver.close()
        return driver

    def test_preempted_shard_resumes_from_its_checkpoint(self, tmp_path: Path) -> None:
        case = StepCase("resume", 16, 2, 2, 0.4)
        driver = self._interrupted(tmp_path / "preempt", case, 1, "preempt")
        self._check_once(driver, case)
        self._check_resumed(tmp_path / "preempt", "resume", 1)

    def test_checkpoint_survives_a_runner_kill_and_goes_after_publication(
        self, tmp_path: Path
    ) -> None:
        case = StepCase("survive", 12, 1, 2, 0.4)
        driver = self._interrupted(tmp_path / "runner", case, 0, "kill")
        self._check_once(driver, case)
        self._check_resumed(tmp_path / "runner", "survive", 0)
