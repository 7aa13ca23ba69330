"""The deadline-aware fallback from spot to on-demand: one rule, pure.

A spot shard has a *due time*: the latest moment it may finish so that the
workflow still meets its deadline when every later step takes its planned
duration at confidence ``P`` (:func:`latest_finish`). Before each spot attempt
(the first start, every restart after a preemption, every moment spent waiting
for spot capacity) the shard checks :func:`spot_attempt_fits`:

    now + remaining + 2 * restart + checkpoint <= due

``remaining`` is the work (hours) not yet saved by a checkpoint, ``restart``
the startup ``r`` paid by every attempt and ``checkpoint`` the interval ``c``
(the whole work when nothing is saved). When it holds, the attempt goes to
spot; when it does not, the shard's remaining work moves to the on-demand tier
of the same instance type, for good.

Why ``2r + c``: an attempt that starts when the rule holds can be lost at any
moment; it then has paid at most one restart ``r`` and lost at most ``c`` of
unsaved work, and on-demand needs one more restart ``r`` plus the remaining
work. So a shard that checks the rule before every spot attempt always finishes
by its due time on on-demand, whatever the preemptions and capacity gaps (see
docs/cost-model.md §10). The simulator (``compiler/simulate.py``) and the
runners (``backends/runtime/``) call these functions, so both apply one rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def margin_h(restart_h: float, checkpoint_h: float) -> float:
    """The slack a spot attempt must leave: one lost restart, one lost interval, one restart."""
    return 2.0 * restart_h + checkpoint_h


def switch_time_h(due_h: float, remaining_h: float, restart_h: float, checkpoint_h: float) -> float:
    """The last moment at which a spot attempt may still start."""
    return due_h - remaining_h - margin_h(restart_h, checkpoint_h)


def spot_attempt_fits(
    now_h: float, due_h: float, remaining_h: float, restart_h: float, checkpoint_h: float
) -> bool:
    """True while a new spot attempt may start; False: run the rest on on-demand, for good."""
    return now_h <= switch_time_h(due_h, remaining_h, restart_h, checkpoint_h)


def latest_finish(
    order: Sequence[str],
    durations_h: Mapping[str, float],
    successors: Mapping[str, Sequence[str]],
    target_h: float,
) -> dict[str, float]:
    """Each step's due time: the target, less the planned durations of the longest chain after it.

    ``order`` lists the steps in a topological order (predecessors first);
    ``durations_h`` holds each step's planned ``P``; ``successors`` the steps that
    wait for each; ``target_h`` is the deadline (or, without one, the planned makespan).
    """
    due: dict[str, float] = {}
    for name in reversed(order):
        after = [due[s] - durations_h[s] for s in successors.get(name, ())]
        due[name] = min([target_h, *after])
    return due
