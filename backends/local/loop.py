"""The event loop that runs shards: dependency order, bounded concurrency, retries.

One thread. Each running shard is watched through a pidfd, signals through a
wake-up socket, and timers (timeouts, retry backoff, kill escalation) through
the select timeout, so the loop sleeps until something happens. State changes
of an iteration are written to SQLite in one transaction, after the renames
that publish finished shards.
"""

from __future__ import annotations

import errno
import heapq
import os
import random
import selectors
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping

from ..api import (
    ShardFailure,
    StepProgress,
    TaskState,
    expand,
    expand_command,
    runtime_values,
)
from ..runtime import checkpoints
from ..runtime.launch import shard_env
from ..runtime.progress import Reporter, step_state
from ..runtime.shards import Shard
from . import procs, spawner, wakeup
from .attempts import Attempt, Launching, LoopSettings, Outcome
from .spot import Placement
from .state import ShardRow, Store
from .tasks import LocalStep, TaskGraph

_PREEMPTION_SIGNALS = (-signal.SIGTERM, -signal.SIGKILL)
#: Longest time a state change waits before it is committed (see Loop._flush).
COMMIT_INTERVAL_S = 0.2
#: Most threads starting shard processes at once (see spawner.py).
SPAWN_THREADS = 8


class Loop:
    def __init__(
        self,
        graph: TaskGraph,
        store: Store,
        rows: dict[tuple[str, int], ShardRow],
        settings: LoopSettings,
        reporter: Reporter,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        stop_check: Callable[[], bool] = lambda: False,
    ) -> None:
        self.graph = graph
        self.store = store
        self.rows = rows
        self.s = settings
        self.reporter = reporter
        self.clock = clock
        self.rng = rng or random.Random()
        self.stop_check = stop_check
        self.steps = {st.name: st for st in graph.steps}
        self.pending: dict[str, deque[int]] = {st.name: deque() for st in graph.steps}
        self.done: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.running_per_step: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.retries_seen: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.preemptions_seen: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.failed_steps: set[str] = set()
        self.failures: list[ShardFailure] = []
        self.running: dict[int, Attempt] = {}
        self.timers: list[tuple[float, int, str, int]] = []
        self.timer_seq = 0
        self.dirty: dict[tuple[str, int], ShardRow] = {}
        self.urgent = False
        self.committed = self.clock()
        self.changed: set[str] = set()
        self.stopping = False
        self.hard_stop = False
        self.step_dirs: dict[str, tuple[str, str]] = {}
        self.launcher = procs.Launcher(settings.marker)
        #: Starts in flight, by token; counted with ``running`` against ``jobs``.
        self.launching: dict[int, Launching] = {}
        self.tokens = 0
        self.spawner: spawner.Spawner | None = None
        #: Starts the spawner has finished and the loop has not yet watched.
        self.started: deque[tuple[int, int | OSError]] = deque()
        self.remover = checkpoints.Remover(settings.checkpoints)
        for (name, idx), row in sorted(rows.items()):
            if row.state == "done":
                self.done[name] += 1
            else:
                self.pending[name].append(idx)
            self.retries_seen[name] += row.retries
            self.preemptions_seen[name] += row.preemptions

    # --- bookkeeping ---------------------------------------------------------------------

    def _set(self, row: ShardRow, *, urgent: bool = False) -> None:
        key = (row.step, row.idx)
        self.rows[key] = row
        self.dirty[key] = row
        self.changed.add(row.step)
        self.urgent = self.urgent or urgent

    def _flush(self, *, force: bool = False) -> None:
        """Write changed rows, at most every ``COMMIT_INTERVAL_S`` unless urgent.

        Launches and publications may be written late: after a crash, published
        shards are recognised on disk and unrecorded attempts are found by their
        environment (see runner.py). Errors, retries and preemptions are written
        at once, so their counts survive a crash.
        """
        now = self.clock()
        if self.dirty and (force or self.urgent or now - self.committed >= COMMIT_INTERVAL_S):
            self.store.save(self.s.run_id, self.dirty.values())
            self.dirty.clear()
            self.urgent = False
            self.committed = now
        if self.changed:
            states = self.states()
            for name in self.steps:
                if name in self.changed:
                    self.reporter.update(self.progress(name, states))
            self.changed.clear()

    def states(self) -> dict[str, TaskState]:
        out: dict[str, TaskState] = {}
        for st in self.graph.steps:
            out[st.name] = step_state(
                done=self.done[st.name] == st.shard_count,
                failed=st.name in self.failed_steps,
                needs=(out[n] for n in st.needs),
                running=bool(self.running_per_step[st.name]),
            )
        return out

    def progress(self, name: str, states: Mapping[str, TaskState] | None = None) -> StepProgress:
        return StepProgress(
            name=name,
            state=(states or self.states())[name],
            shards_total=self.steps[name].shard_count,
            shards_done=self.done[name],
            shards_running=self.running_per_step[name],
            retries=self.retries_seen[name],
            preemptions=self.preemptions_seen[name],
        )

    def _ready(self, st: LocalStep) -> bool:
        return st.name not in self.failed_steps and all(
            self.done[n] == self.steps[n].shard_count for n in st.needs
        )

    # --- launching -----------------------------------------------------------------------

    def _input_for(self, st: LocalStep, values: Mapping[str, str]) -> str:
        if st.input_kind == "step":
            return str(self.s.outputs[st.input_ref])
        # A dataset URI is an IR string: ``{{`` stands for a brace.
        return expand(st.input_ref, {k: v for k, v in values.items() if k != "input"})

    def _dirs(self, st: LocalStep) -> tuple[str, str]:
        """The step's staging and log folders (created once)."""
        dirs = self.step_dirs.get(st.name)
        if dirs is None:
            staging, logdir = self.s.staging[st.name], self.s.logs / st.name
            staging.mkdir(parents=True, exist_ok=True)
            logdir.mkdir(parents=True, exist_ok=True)
            dirs = self.step_dirs[st.name] = (str(staging), str(logdir))
        return dirs

    def _paths(self, st: LocalStep, idx: int, attempt: int) -> tuple[str, str]:
        staging, logdir = self._dirs(st)
        name = f"shard-{idx}.attempt-{attempt}"
        return f"{staging}/{name}", f"{logdir}/{name}.log"

    @staticmethod
    def _make_staging(staging: str) -> None:
        """The attempt's private output folder, empty (its log is created by the spawn)."""
        # Plain strings and os calls: this runs once per shard (see docs/benchmarks.md).
        try:
            os.mkdir(staging)  # noqa: PTH102
        except FileExistsError:  # left by an attempt that never started (a crash)
            shutil.rmtree(staging)
            os.mkdir(staging)  # noqa: PTH102

    def _checkpoint(self, st: LocalStep, idx: int) -> str:
        """The shard's checkpoint folder, kept over every attempt.

        The command creates it when it first writes there (the worker helper
        does): a run of many short shards that keep nothing pays no file-system
        operation for it (see docs/benchmarks.md, local runner).
        """
        # The same path as checkpoints.shard_checkpoint, without making Path objects per shard.
        return f"{self.s.checkpoints}/{st.name}/{checkpoints.shard_folder_name(idx)}"

    def _command(
        self, st: LocalStep, sh: Shard, attempt: int, staging: str
    ) -> tuple[list[str], dict[str, str]]:
        """The argument vector and environment of one attempt (placeholders filled in)."""
        idx = sh.index
        values = runtime_values(
            step=st.name,
            shard=sh,
            shard_count=st.shard_count,
            batch_size=st.batch_size,
            run_id=self.s.run_id,
            attempt=attempt,
            input="",
            output=str(staging),
            checkpoint=self._checkpoint(st, idx),
        )
        values["input"] = self._input_for(st, values)
        env = shard_env(
            self.s.base_env,
            st.env,
            values,
            secrets={name: self.s.secrets[name] for name in st.secrets},
            helper_lib=self.s.helper_lib,
        )
        return expand_command(st.command, values), env

    def _not_started(
        self,
        st: LocalStep,
        idx: int,
        when: tuple[int, float, str | None],
        staging: str,
        log: str,
        argv: list[str],
        exc: OSError,
    ) -> None:
        """An attempt whose command could not start: an error (retried), with its log line."""
        attempt, launched_at, why = when
        with open(log, "a") as f:  # noqa: PTH123
            f.write(f"exo: cannot start {argv[0]!r}: {exc.strerror or exc}\n")
        shutil.rmtree(staging, ignore_errors=True)
        if self.s.ledger is not None:  # an attempt too, of no duration
            sh = st.shard(idx)
            self.s.ledger.started(st.name, idx, attempt, (sh.start, sh.end), launched_at, why)
            self.s.ledger.ended(st.name, idx, attempt, (sh.start, sh.end), None, "failed")
        row = self.rows[(st.name, idx)]
        self._set(row.with_(attempts=attempt, log=log, state="running"))
        self._error(st, idx, f"cannot start {argv[0]!r}: {exc.strerror or exc}")

    def _launch(
        self,
        st: LocalStep,
        idx: int,
        selector: selectors.BaseSelector,
        place: Placement | None = None,
    ) -> None:
        """Start an attempt: its process is started by a spawner thread (see ``_started``)."""
        row = self.rows[(st.name, idx)]
        why = place.fallback if place is not None else None
        attempt = row.attempts + 1
        staging, log = self._paths(st, idx, attempt)
        self._make_staging(staging)
        sh = st.shard(idx)
        argv, env = self._command(st, sh, attempt, staging)
        now = self.clock()
        launched_at = time.time()
        when = (attempt, launched_at, why)
        self.tokens += 1
        try:
            req = self.launcher.request(self.tokens, argv, env, log)
        except OSError as exc:
            procs.stop_for_the_machine(exc, log)
            self._not_started(st, idx, when, staging, log, argv, exc)
            return
        items = (sh.start, sh.end)
        self.launching[self.tokens] = Launching(
            st, idx, when, staging, log, argv, items, now, place
        )
        self.running_per_step[st.name] += 1
        assert self.spawner is not None  # made by run() before the first launch
        self.spawner.submit(req)

    def _started(self, token: int, result: int | OSError, selector: selectors.BaseSelector) -> None:
        """A start finished: watch the process, or record why it did not start."""
        ln = self.launching.pop(token)
        st, idx, (attempt, launched_at, why) = ln.step, ln.idx, ln.when
        if isinstance(result, OSError):
            self.running_per_step[st.name] -= 1
            procs.stop_for_the_machine(result, ln.log)
            self._not_started(st, idx, ln.when, ln.staging, ln.log, ln.argv, result)
            return
        pid = result
        pidfd = os.pidfd_open(pid)
        deadline = ln.now + st.timeout_s if st.timeout_s is not None else None
        att = Attempt(st, idx, attempt, pid, pidfd, ln.staging, ln.log, deadline, ln.items)
        self.running[pidfd] = att
        if ln.place is not None:
            att.preempt_at = ln.place.preempt_at
        selector.register(pidfd, selectors.EVENT_READ)
        if self.s.ledger is not None:
            self.s.ledger.started(st.name, idx, attempt, ln.items, launched_at, why)
        row = self.rows[(st.name, idx)]
        self._set(row.with_(state="running", attempts=attempt, pid=pid, log=ln.log, reason=None))
        if self.stopping:  # started while the run was stopping: stopped with the others
            self._stop(self.clock())

    def _busy(self) -> int:
        return len(self.running) + len(self.launching)

    def _launch_all(self, selector: selectors.BaseSelector) -> None:
        if self.stopping:
            return
        now = self.clock()
        while self.timers and self.timers[0][0] <= now:
            _, _, name, idx = heapq.heappop(self.timers)
            if name not in self.failed_steps:
                self.pending[name].appendleft(idx)
        for st in self.graph.steps:
            if self._busy() >= self.s.jobs:
                return
            queue = self.pending[st.name]
            if not queue or not self._ready(st):
                continue
            while (
                queue
                and self._busy() < self.s.jobs
                and self.running_per_step[st.name] < st.parallelism
                and st.name not in self.failed_steps
            ):
                self._place_and_launch(st, queue.popleft(), selector)

    def _place_and_launch(self, st: LocalStep, idx: int, selector: selectors.BaseSelector) -> None:
        """Launch a shard, on the tier emulated spot and the fallback give it (or wait)."""
        place = self.s.spot.place(st.name, idx, self.clock()) if self.s.spot else None
        if place is not None and place.moved:
            self.reporter.message(f"{st.name}: shard {idx} moved to on-demand ({place.fallback})")
        if place is not None and place.wait_until is not None:  # no spot capacity yet
            self.timer_seq += 1
            heapq.heappush(self.timers, (place.wait_until, self.timer_seq, st.name, idx))
            return
        self._launch(st, idx, selector, place)

    # --- outcomes ------------------------------------------------------------------------

    def _fail(self, st: LocalStep, idx: int, reason: str) -> None:
        row = self.rows[(st.name, idx)]
        self._set(row.with_(state="failed", reason=reason, pid=None, pid_start=None), urgent=True)
        if st.name not in self.failed_steps:
            self.failed_steps.add(st.name)
            self.pending[st.name].clear()
            self.failures.append(
                ShardFailure(
                    step=st.name, shard=idx, attempts=row.attempts, reason=reason, log=row.log
                )
            )
            self.reporter.message(
                f"{st.name}: shard {idx} failed for good ({reason}); log: {row.log}"
            )
            for name in sorted(self.graph.dependents()[st.name]):
                self.changed.add(name)

    def _error(self, st: LocalStep, idx: int, reason: str) -> None:
        row = self.rows[(st.name, idx)]
        if row.retries >= st.retries:
            self._fail(st, idx, reason)
            return
        self.retries_seen[st.name] += 1
        self._set(
            row.with_(state="pending", retries=row.retries + 1, reason=reason, pid=None),
            urgent=True,
        )
        delay = min(self.s.backoff_max_s, self.s.backoff_s * (2**row.retries))
        delay *= self.rng.uniform(0.5, 1.5)
        self.timer_seq += 1
        heapq.heappush(self.timers, (self.clock() + delay, self.timer_seq, st.name, idx))

    def _publish(self, att: Attempt) -> None:
        # Plain strings and os calls on this path: it runs once per shard (see benchmarks).
        folder = self.s.outputs[att.step.name]
        target = f"{folder}/shard-{att.idx}"
        try:
            os.rename(att.staging, target)  # noqa: PTH104
        except OSError as err:
            if not folder.is_dir() or not os.path.isdir(att.staging):  # noqa: PTH112
                # The output folder (or the attempt's) was deleted under the run: stop, and let
                # the next `exoc run` recreate it and redo the shards that went with it.
                raise FileNotFoundError(
                    errno.ENOENT, os.strerror(errno.ENOENT), str(folder)
                ) from err
            # Only possible if something outside exo created it after the run began.
            shutil.rmtree(target)
            os.rename(att.staging, target)  # noqa: PTH104
        # Published: the shard's progress is no longer needed (a crash before this
        # line leaves it for runner._reconcile to remove).
        self.remover.discard(self._checkpoint(att.step, att.idx))
        row = self.rows[(att.step.name, att.idx)]
        self._set(row.with_(state="done", pid=None, pid_start=None, reason=None))
        self.done[att.step.name] += 1

    def _finished(self, att: Attempt) -> None:
        # Anything the shard left running in its process group goes with it; the
        # group id stays reserved until the leader (an unreaped zombie now) is waited for.
        procs.signal_group(att.pid, signal.SIGKILL)
        rc = procs.wait_exit_code(att.pid)
        self.running_per_step[att.step.name] -= 1
        st, idx = att.step, att.idx
        self._record_end(att, rc)
        row = self.rows[(st.name, idx)]
        if att.signalled == "stop":
            shutil.rmtree(att.staging, ignore_errors=True)
            self._set(row.with_(state="pending", pid=None, pid_start=None, reason="interrupted"))
            return
        if rc == 0 and att.signalled is None:
            self._publish(att)
            return
        shutil.rmtree(att.staging, ignore_errors=True)
        if att.signalled == "timeout":
            self._error(st, idx, f"timed out after {st.timeout_s:g}s")
        elif rc in _PREEMPTION_SIGNALS:
            preemptions = row.preemptions + 1
            self.preemptions_seen[st.name] += 1
            if preemptions > st.preemption_retries:
                self._set(row.with_(preemptions=preemptions), urgent=True)
                self._fail(st, idx, f"{procs.describe_exit(rc)} from outside {preemptions} times")
            else:
                self._set(
                    row.with_(
                        state="pending",
                        preemptions=preemptions,
                        pid=None,
                        reason=procs.describe_exit(rc),
                    ),
                    urgent=True,
                )
                self.pending[st.name].appendleft(idx)
        else:
            self._error(st, idx, procs.describe_exit(rc))

    def _record_end(self, att: Attempt, rc: int | None) -> None:
        if self.s.ledger is None:
            return
        if att.signalled == "stop" or rc is None:
            outcome = "stopped"
        elif att.signalled == "timeout":
            outcome = "timeout"
        elif rc == 0:
            outcome = "succeeded"
        elif rc in _PREEMPTION_SIGNALS:
            outcome = "preempted"
        else:
            outcome = "failed"
        self.s.ledger.ended(att.step.name, att.idx, att.attempt, att.items, rc, outcome)

    # --- signals and timers --------------------------------------------------------------

    def _stop(self, now: float) -> None:
        if not self.stopping:
            self.stopping = True
            for name in self.steps:
                self.changed.add(name)
            self.reporter.message("stopping: terminating running shards")
        for att in self.running.values():
            if att.signalled != "stop":
                att.signalled = "stop"
                procs.signal_group(att.pid, signal.SIGTERM)
                att.kill_at = now + self.s.grace_s
            if self.hard_stop:
                procs.signal_group(att.pid, signal.SIGKILL)

    def _timers(self, now: float) -> None:
        for att in self.running.values():
            if att.deadline is not None and att.signalled is None and now >= att.deadline:
                att.signalled = "timeout"
                procs.signal_group(att.pid, signal.SIGTERM)
                att.kill_at = now + self.s.grace_s
            if att.kill_at is not None and now >= att.kill_at:
                procs.signal_group(att.pid, signal.SIGKILL)
                att.kill_at = None
            if att.preempt_at is not None and att.signalled is None and now >= att.preempt_at:
                procs.signal_group(att.pid, signal.SIGKILL)  # emulated spot reclaim
                att.preempt_at = None

    def _next_wakeup(self) -> float | None:
        times = [t for t, *_ in self.timers[:1]] if not self.stopping else []
        if self.dirty:
            times.append(self.committed + COMMIT_INTERVAL_S)
        for att in self.running.values():
            if att.deadline is not None and att.signalled is None:
                times.append(att.deadline)
            if att.kill_at is not None:
                times.append(att.kill_at)
            if att.preempt_at is not None and att.signalled is None:
                times.append(att.preempt_at)
        if not times:
            return None
        return max(0.0, min(times) - self.clock())

    def _idle(self) -> bool:
        if self.running or self.launching:
            return False
        if self.stopping:
            return True
        if self.timers:
            return False
        return not any(self.pending[st.name] and self._ready(st) for st in self.graph.steps)

    # --- the loop ------------------------------------------------------------------------

    def _end_running(self, selector: selectors.BaseSelector) -> None:
        """Kill what still runs, record it, and write the state (the loop's last act)."""
        for att in self.running.values():
            procs.signal_group(att.pid, signal.SIGKILL)
            procs.wait_exit_code(att.pid)
            os.close(att.pidfd)
            self._record_end(att, None)
        try:
            self._flush(force=True)
        finally:  # even when the state cannot be written (a full disk)
            selector.close()
            self.remover.close()
            self.reporter.end()

    def _settle_starts(self, selector: selectors.BaseSelector) -> None:
        """When the loop ends: wait for the starts in flight and watch what they started
        (so that it is stopped and recorded with the others)."""
        if self.spawner is None:
            return
        spawned, self.spawner = self.spawner, None
        selector.unregister(spawned.fileno())
        self.started.extend(spawned.close())
        while self.started:
            token, result = self.started.popleft()
            try:
                self._started(token, result, selector)
            except OSError:  # cannot be watched or recorded: at least not left running
                if isinstance(result, int):
                    procs.signal_group(result, signal.SIGKILL)
                    procs.wait_exit_code(result)

    def run(self) -> Outcome:
        states = self.states()
        self.reporter.begin([self.progress(n, states) for n in self.steps])
        selector = selectors.DefaultSelector()
        with wakeup.signals() as wake, procs.working_directory(self.s.cwd):
            selector.register(wake.fileno(), selectors.EVENT_READ)
            spawned = self.spawner = spawner.Spawner(min(self.s.jobs, SPAWN_THREADS))
            selector.register(spawned.fileno(), selectors.EVENT_READ)
            try:
                while True:
                    if self.stop_check() and not self.stopping:
                        self._stop(self.clock())
                    self._launch_all(selector)
                    self._flush()
                    if self._idle():
                        break
                    events = selector.select(self._next_wakeup())
                    now = self.clock()
                    for key, _ in events:
                        if key.fd == wake.fileno():
                            got = wakeup.drain(wake)
                            if got:
                                self.hard_stop = self.stopping
                                self._stop(now)
                            continue
                        if key.fd == spawned.fileno():
                            self.started.extend(spawned.results())
                            while self.started:  # one at a time: none lost if one raises
                                self._started(*self.started.popleft(), selector)
                            continue
                        att = self.running.pop(key.fd)
                        selector.unregister(key.fd)
                        os.close(key.fd)
                        self._finished(att)
                    self._timers(now)
            finally:
                try:
                    self._settle_starts(selector)
                finally:
                    self._end_running(selector)
        state = "interrupted" if self.stopping else "failed" if self.failed_steps else "done"
        states = self.states()
        return Outcome(state, list(self.failures), [self.progress(n, states) for n in self.steps])
