"""The event loop that runs shards: dependency order, bounded concurrency, retries.

The loop decides what runs and records what happened; the slot threads of
``spawner.py`` start the processes and wait for them (one slot per job, the
loop's requests a few ahead of them, so a slot starts the next shard the moment
one ends, without waiting for the loop). The loop learns of starts and ends
through a pipe, of signals through a wake-up socket, and of timers (timeouts,
retry backoff, kill escalation) through the select timeout, so it sleeps until
something happens. State changes of an iteration are written to SQLite in one
transaction, after the renames that publish finished shards.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
import random
import selectors
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping

from ..api import (
    ShardFailure,
    StepProgress,
    TaskState,
)
from ..runtime import checkpoints
from ..runtime.progress import Reporter, step_state
from . import commands, devices, procs, spawner, wakeup
from .attempts import Attempt, Launching, LoopSettings, Outcome
from .candidates import Candidates
from .spot import Placement
from .state import ShardRow, Store
from .tasks import LocalStep, TaskGraph

_PREEMPTION_SIGNALS = (-signal.SIGTERM, -signal.SIGKILL)
#: Longest time a state change waits before it is committed (see Loop._flush).
COMMIT_INTERVAL_S = 0.2


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
        #: Requested and not started yet (counted with ``running_per_step`` against a
        #: step's parallelism).
        self.waiting_per_step: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.retries_seen: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.preemptions_seen: dict[str, int] = {st.name: 0 for st in graph.steps}
        self.failed_steps: set[str] = set()
        self.failures: list[ShardFailure] = []
        #: Started attempts, by their request's token.
        self.running: dict[int, Attempt] = {}
        self.timers: list[tuple[float, int, str, int]] = []
        self.timer_seq = 0
        self.dirty: dict[tuple[str, int], ShardRow] = {}
        self.urgent = False
        self.committed = self.clock()
        self.changed: set[str] = set()
        #: Steps that may have shards to launch (not every step on every turn).
        self.candidates = Candidates(self.steps)
        #: The steps that need each step (candidates from when it is done).
        self.successors = graph.successors()
        self.stopping = False
        self.hard_stop = False
        self.commands = commands.Commands(settings)
        self.launcher = procs.Launcher(settings.marker)
        #: Requests not started yet (at most ``ahead`` of them), by token.
        self.launching: dict[int, Launching] = {}
        #: How many requests the slots' queue holds at most: two per slot, so that a
        #: slot finds its next one there while the loop is busy (measured: one per slot
        #: left the slots waiting for requests).
        self.ahead = 2 * settings.jobs
        self.tokens = 0
        self.slots: spawner.Slots | None = None
        #: What the slots reported and the loop has not handled yet.
        self.events: deque[spawner.Event] = deque()
        self.remover = checkpoints.Remover(settings.checkpoints)
        self._tally(rows)
        self.candidates.keep(name for name, queue in self.pending.items() if queue)

    def _tally(self, rows: Mapping[tuple[str, int], ShardRow]) -> None:
        """What the state says at the start: shards done, shards to run, counts so far."""
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
            # Every step's state only when one failed (its dependents are blocked): a
            # walk over all steps per flush was quadratic in a run of many steps.
            states = self.states() if self.failed_steps else None
            for name in sorted(self.changed, key=self.candidates.order.__getitem__):
                self.reporter.update(self.progress(name, states))
            self.changed.clear()

    def states(self) -> dict[str, TaskState]:
        out: dict[str, TaskState] = {}
        for st in self.graph.steps:
            out[st.name] = step_state(
                done=self.done[st.name] == st.shard_count,
                failed=st.name in self.failed_steps,
                needs=(out[n] for n in st.needs),
                # Requested shards count: the step is under way (no "pending" in between).
                running=bool(self.running_per_step[st.name] or self.waiting_per_step[st.name]),
            )
        return out

    def state(self, name: str) -> TaskState:
        """One step's state; as :meth:`states` says, but without a walk over every step
        while none has failed (then none is blocked)."""
        if self.failed_steps:
            return self.states()[name]
        return step_state(
            done=self.done[name] == self.steps[name].shard_count,
            failed=False,
            needs=(),
            running=bool(self.running_per_step[name] or self.waiting_per_step[name]),
        )

    def progress(self, name: str, states: Mapping[str, TaskState] | None = None) -> StepProgress:
        return StepProgress(
            name=name,
            state=self.state(name) if states is None else states[name],
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

    def _launch(self, st: LocalStep, idx: int) -> None:
        """Request an attempt: a slot starts it when one is free (see ``_started``)."""
        attempt = self.rows[(st.name, idx)].attempts + 1
        staging, log = self.commands.paths(st, idx, attempt)
        sh = st.shard(idx)
        argv, values = self.commands.command(st, sh, attempt, staging)
        env = self.commands.environment(st)
        commands.make_folder(staging)  # the loop's thread has time for it; a slot has none
        self.tokens += 1
        entries, gpus = env.entries(values), None
        if self.s.devices is not None and st.name in self.s.gpus:
            gpus = self.s.devices.take(self.s.gpus[st.name])
            entries = devices.with_devices(entries, gpus)
        try:
            path = env.get("PATH", values)
            req = self.launcher.request(self.tokens, argv, entries, log, path=path)
        except OSError as exc:
            devices.give_back(self.s.devices, gpus)
            procs.stop_for_the_machine(exc, log)
            self._not_started(st, idx, (attempt, time.time(), None), staging, log, argv, exc)
            return
        self.launching[self.tokens] = Launching(
            st, idx, attempt, staging, log, argv, (sh.start, sh.end), gpus
        )
        self.waiting_per_step[st.name] += 1
        self.changed.add(st.name)  # under way from its first request (see states())
        assert self.slots is not None  # made by run() before the first launch
        self.slots.submit(req)

    def _gate(self, token: int) -> tuple[bool, Placement | None]:
        """In a slot's thread, just before the start: the tier emulated spot and the
        fallback give the attempt now, and whether it may start now (spot capacity)."""
        if self.s.spot is None:
            return True, None
        ln = self.launching[token]
        place = self.s.spot.place(ln.step.name, ln.idx, self.clock())
        return place is None or place.wait_until is None, place

    def _started(self, ev: spawner.Started) -> None:
        """A slot started an attempt: record it (and stop it if the run is stopping)."""
        ln = self._forget(ev.token)
        st, idx, place = ln.step, ln.idx, ev.admitted
        assert place is None or isinstance(place, Placement)
        self.running_per_step[st.name] += 1
        if place is not None and place.moved:
            self.reporter.message(f"{st.name}: shard {idx} moved to on-demand ({place.fallback})")
        deadline = ev.clock + st.timeout_s if st.timeout_s is not None else None
        att = Attempt(st, idx, ln.attempt, ev.pid, ev.token, ln.staging, ln.log, deadline, ln.items)
        att.devices = ln.devices
        self.running[ev.token] = att
        if place is not None:
            att.preempt_at = place.preempt_at
        if self.s.ledger is not None:
            why = place.fallback if place is not None else None
            self.s.ledger.started(st.name, idx, ln.attempt, ln.items, ev.wall, why)
        row = self.rows[(st.name, idx)]
        self._set(
            row.with_(state="running", attempts=ln.attempt, pid=ev.pid, log=ln.log, reason=None)
        )
        if self.stopping:  # stopped with the others (its slot may have sent SIGTERM already)
            self._stop_attempt(att, self.clock(), sent=ev.stopped)

    def _forget(self, token: int) -> Launching:
        """A request the slots are done with, no longer counted as waiting."""
        ln = self.launching.pop(token)
        self.waiting_per_step[ln.step.name] -= 1
        return ln

    def _unstarted(self, ev: spawner.NotStarted | spawner.Skipped) -> None:
        """A request that no process came of: why, recorded (or raised, or waited out)."""
        ln = self._forget(ev.token)
        devices.give_back(self.s.devices, ln.devices)
        st, idx = ln.step, ln.idx
        place = ev.admitted
        assert place is None or isinstance(place, Placement)
        if isinstance(ev, spawner.Skipped):
            shutil.rmtree(ln.staging, ignore_errors=True)
            if place is not None and place.wait_until is not None:  # no spot capacity yet
                self.timer_seq += 1
                heapq.heappush(self.timers, (place.wait_until, self.timer_seq, st.name, idx))
            elif st.name not in self.failed_steps:  # cancelled: the run is stopping
                self.pending[st.name].appendleft(idx)
                self.candidates.add(st.name)
            return
        if ev.fatal or not isinstance(ev.error, OSError):
            raise ev.error
        procs.stop_for_the_machine(ev.error, ln.log)
        why = place.fallback if place is not None else None
        when = (ln.attempt, time.time(), why)
        self._not_started(st, idx, when, ln.staging, ln.log, ln.argv, ev.error)

    def _handle(self, ev: spawner.Event) -> None:
        if isinstance(ev, spawner.Started):
            self._started(ev)
        elif isinstance(ev, spawner.Exited):
            self._finished(self.running.pop(ev.token), ev.code)
        else:
            self._unstarted(ev)

    def _launch_all(self) -> None:
        if self.stopping:
            return
        now = self.clock()
        while self.timers and self.timers[0][0] <= now:
            _, _, name, idx = heapq.heappop(self.timers)
            if name not in self.failed_steps:
                self.pending[name].appendleft(idx)
                self.candidates.add(name)
        held: list[str] = []  # at their parallelism: candidates again next turn
        while self.candidates and len(self.launching) < self.ahead:  # the slots' queue
            taken = self.candidates.take()
            assert taken is not None
            st, queue = self.steps[taken], self.pending[taken]
            if queue and self._ready(st):
                while (
                    queue
                    and len(self.launching) < self.ahead
                    and self.running_per_step[st.name] + self.waiting_per_step[st.name]
                    < st.parallelism
                    and st.name not in self.failed_steps
                ):
                    self._launch(st, queue.popleft())
                if queue and st.name not in self.failed_steps:
                    held.append(taken)
        self.candidates.keep(held)

    # --- outcomes ------------------------------------------------------------------------

    def _fail(self, st: LocalStep, idx: int, reason: str) -> None:
        row = self.rows[(st.name, idx)]
        self._set(row.with_(state="failed", reason=reason, pid=None, pid_start=None), urgent=True)
        if st.name not in self.failed_steps:
            self.failed_steps.add(st.name)
            self.pending[st.name].clear()
            if self.slots is not None:  # requested, not started: not started at all
                self.slots.cancel(t for t, ln in self.launching.items() if ln.step is st)
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

    def _publish(self, att: Attempt, kept: bool) -> None:
        """Publish a succeeded attempt's output; ``kept``: its checkpoint folder may be there."""
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
        if kept:
            self.remover.discard(self.commands.checkpoint(att.step, att.idx))
        row = self.rows[(att.step.name, att.idx)]
        self._set(row.with_(state="done", pid=None, pid_start=None, reason=None))
        self.done[att.step.name] += 1
        if self.done[att.step.name] == att.step.shard_count:
            for name in self.successors[att.step.name]:
                self.candidates.add(name)

    def _finished(self, att: Attempt, rc: int | None) -> None:
        """An attempt's process ended (its slot killed what it left in its group, and
        reaped it): publish it, or retry, or fail it."""
        self.running_per_step[att.step.name] -= 1
        devices.give_back(self.s.devices, att.devices)
        st, idx = att.step, att.idx
        kept = self._record_end(att, rc)
        row = self.rows[(st.name, idx)]
        if att.signalled == "stop":
            shutil.rmtree(att.staging, ignore_errors=True)
            self._set(row.with_(state="pending", pid=None, pid_start=None, reason="interrupted"))
            return
        if rc == 0 and att.signalled is None:
            self._publish(att, kept)
            return
        shutil.rmtree(att.staging, ignore_errors=True)
        if att.signalled == "timeout":
            self._error(st, idx, f"timed out after {st.timeout_s:g}s")
        elif rc is None:
            self._error(st, idx, "its exit status was lost (reaped outside the runner's slot)")
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
                self.candidates.add(st.name)
        else:
            self._error(st, idx, procs.describe_exit(rc))

    def _signal(self, att: Attempt, sig: signal.Signals) -> bool:
        """Signal an attempt's process group; ``False`` once its slot has reaped it
        (it ended by itself: its end, on its way, is its own, not the signal's)."""
        return self.slots is not None and self.slots.signal(att.token, sig)

    def _record_end(self, att: Attempt, rc: int | None) -> bool:
        """Record an attempt's end in the ledger; whether its checkpoint folder may be
        there (known from the ledger's look at it; without a ledger, assumed)."""
        if self.s.ledger is None:
            return True
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
        return self.s.ledger.ended(att.step.name, att.idx, att.attempt, att.items, rc, outcome)

    # --- signals and timers --------------------------------------------------------------

    def _stop(self, now: float) -> None:
        if not self.stopping:
            self.stopping = True
            for name in self.steps:
                self.changed.add(name)
            self.reporter.message("stopping: terminating running shards")
        if self.slots is not None:  # requested, not started: not started at all
            self.slots.stop()
        for att in self.running.values():
            self._stop_attempt(att, now)

    def _stop_attempt(self, att: Attempt, now: float, *, sent: bool = False) -> None:
        """SIGTERM (unless ``sent`` already), SIGKILL after the grace period, or at once
        on a hard stop. An attempt the signal did not reach has just ended by itself,
        and its end is its own."""
        if att.signalled != "stop" and (sent or self._signal(att, signal.SIGTERM)):
            att.signalled = "stop"
            att.kill_at = now + self.s.grace_s
        if self.hard_stop:
            self._signal(att, signal.SIGKILL)

    def _timers(self, now: float) -> None:
        for att in self.running.values():
            late = att.deadline is not None and now >= att.deadline
            if late and att.signalled is None and self._signal(att, signal.SIGTERM):
                att.signalled = "timeout"
                att.kill_at = now + self.s.grace_s
            if att.kill_at is not None and now >= att.kill_at:
                self._signal(att, signal.SIGKILL)
                att.kill_at = None
            if att.preempt_at is not None and att.signalled is None and now >= att.preempt_at:
                self._signal(att, signal.SIGKILL)  # emulated spot reclaim
                att.preempt_at = None

    def _next_wakeup(self) -> float | None:
        times = [t for t, *_ in self.timers[:1]] if not self.stopping else []
        if self.dirty:
            times.append(self.committed + COMMIT_INTERVAL_S)
        if self.launching:  # their starts do not wake the loop
            times.append(self.clock() + spawner.STARTED_LAG)
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
        # Every step with a shard queued and its needs done is a candidate.
        return not any(self.pending[n] and self._ready(self.steps[n]) for n in self.candidates)

    # --- the loop ------------------------------------------------------------------------

    def _wind_down(self, selector: selectors.BaseSelector) -> None:
        """The loop's last act: close the slots (what was not started is not started,
        what still runs is killed), record what they report, and write the state."""
        try:
            if self.slots is not None:
                slots, self.slots = self.slots, None
                selector.unregister(slots.fileno())
                self.events.extend(slots.close())
            while self.events:
                with contextlib.suppress(OSError):  # not recorded: at least not left running
                    self._settle(self.events.popleft())
            self._flush(force=True)
        finally:  # even when the state cannot be written (a full disk)
            selector.close()
            self.remover.close()
            self.reporter.end()

    def _settle(self, ev: spawner.Event) -> None:
        """An event after the loop: starts are recorded, ends are recorded as stopped."""
        if isinstance(ev, spawner.Started):
            self._started(ev)
        elif isinstance(ev, spawner.Exited):
            att = self.running.pop(ev.token)
            self.running_per_step[att.step.name] -= 1
            self._record_end(att, None)
        elif isinstance(ev, spawner.NotStarted) and ev.fatal:
            self._forget(ev.token)
        else:
            self._unstarted(ev)

    def _turn(self, selector: selectors.BaseSelector, wake: socket.socket) -> None:
        """Wait for something to happen, and handle it."""
        events = selector.select(self._next_wakeup())
        now = self.clock()
        for key, _ in events:
            if key.fd == wake.fileno() and wakeup.drain(wake):
                self.hard_stop = self.stopping
                self._stop(now)
        if self.slots is not None:  # whatever woke the loop (starts do not)
            self.events.extend(self.slots.events())
        while self.events:  # one at a time: none lost if one raises
            self._handle(self.events.popleft())
        self._timers(now)

    def run(self) -> Outcome:
        states = self.states()
        self.reporter.begin([self.progress(n, states) for n in self.steps])
        selector = selectors.DefaultSelector()
        with wakeup.signals() as wake, procs.working_directory(self.s.cwd):
            selector.register(wake.fileno(), selectors.EVENT_READ)
            self.slots = spawner.Slots(self.s.jobs, self._gate, self.clock)
            selector.register(self.slots.fileno(), selectors.EVENT_READ)
            try:
                while True:
                    if self.stop_check() and not self.stopping:
                        self._stop(self.clock())
                    self._launch_all()
                    self._flush()
                    if self._idle():
                        break
                    self._turn(selector, wake)
            finally:
                self._wind_down(selector)
        state = "interrupted" if self.stopping else "failed" if self.failed_steps else "done"
        states = self.states()
        return Outcome(state, list(self.failures), [self.progress(n, states) for n in self.steps])
