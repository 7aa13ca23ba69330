"""Progress of a run, for every runner: a step's state, and how it is shown.

:func:`step_state` is the one rule that turns a step's counts into its state;
a :class:`Reporter` shows the steps as they change: rich bars on a terminal
(:class:`Bars`), plain lines otherwise (:class:`Lines`), or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Protocol

from ..api import StepProgress, TaskState

if TYPE_CHECKING:  # rich's bars load only on a terminal: logs and CI get plain lines
    from rich.console import Console
    from rich.progress import TaskID


def step_state(
    *, done: bool, failed: bool, needs: Iterable[TaskState | None], running: bool
) -> TaskState:
    """A step's state: done, else failed, else blocked by a step it needs that failed (or
    is blocked, or was cancelled), else running, else pending."""
    if done:
        return "done"
    if failed:
        return "failed"
    if any(n in ("failed", "blocked", "cancelled") for n in needs):
        return "blocked"
    return "running" if running else "pending"


class Reporter(Protocol):
    def begin(self, steps: list[StepProgress]) -> None: ...
    def update(self, step: StepProgress) -> None: ...
    def message(self, text: str) -> None: ...
    def end(self) -> None: ...


class Silent:
    def begin(self, steps: list[StepProgress]) -> None:
        pass

    def update(self, step: StepProgress) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def end(self) -> None:
        pass


class Lines:
    """One line per step state change, retry, preemption or message (logs, CI)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last: dict[str, tuple[str, int, int]] = {}

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def begin(self, steps: list[StepProgress]) -> None:
        for s in steps:
            self.last[s.name] = (s.state, s.retries, s.preemptions)
            if s.state == "done":
                self._say(f"{s.name}: done ({s.shards_done}/{s.shards_total} shards, kept)")

    def update(self, step: StepProgress) -> None:
        state, retries, preemptions = self.last.get(step.name, ("pending", 0, 0))
        key = (step.state, step.retries, step.preemptions)
        if key == self.last.get(step.name):
            return
        self.last[step.name] = key
        counts = f"{step.shards_done}/{step.shards_total} shards"
        if step.state != state:
            self._say(f"{step.name}: {step.state} ({counts})")
        if step.retries > retries:
            self._say(f"{step.name}: retrying after an error ({step.retries} retries so far)")
        if step.preemptions > preemptions:
            self._say(
                f"{step.name}: a shard was killed from outside; rescheduled "
                f"({step.preemptions} preemptions so far)"
            )

    def message(self, text: str) -> None:
        self._say(text)

    def end(self) -> None:
        pass


class Bars:
    """A rich progress bar per step: shards done/total, retries, elapsed, ETA."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    @staticmethod
    def _status(step: StepProgress) -> str:
        parts: list[str] = [step.state]
        if step.retries:
            parts.append(f"{step.retries} retries")
        if step.preemptions:
            parts.append(f"{step.preemptions} preempted")
        return ", ".join(parts)

    def begin(self, steps: list[StepProgress]) -> None:
        self.progress.start()
        for s in steps:
            self.tasks[s.name] = self.progress.add_task(
                s.name,
                total=s.shards_total,
                completed=s.shards_done,
                status=self._status(s),
                start=s.state not in ("pending", "blocked"),
            )

    def update(self, step: StepProgress) -> None:
        task = self.tasks.get(step.name)
        if task is None:
            return
        if step.state == "running":
            self.progress.start_task(task)
        self.progress.update(task, completed=step.shards_done, status=self._status(step))
        if step.state in ("done", "failed", "blocked", "cancelled"):
            self.progress.stop_task(task)

    def message(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def end(self) -> None:
        self.progress.stop()


def make_reporter(kind: str, stream: IO[str]) -> Reporter:
    if kind == "rich":
        from rich.console import Console

        return Bars(Console(file=stream))
    if kind == "plain":
        return Lines(stream)
    return Silent()
