"""Run ids and the order of a run's steps, the same for every runner."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Sequence

#: What :func:`new_run_id` writes; anything else was not written by a runner.
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def new_run_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx``: sortable by start time (UTC), unique with the random tail."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def downstream(steps: Iterable[tuple[str, Sequence[str]]]) -> dict[str, set[str]]:
    """For each step (name, the steps it needs), every step downstream of it, transitively.

    A plain search from each step (a workflow has tens of steps): no graph library, so that
    a run's start-up does not load one."""
    after: dict[str, list[str]] = {}
    for name, needs in steps:
        after.setdefault(name, [])
        for n in needs:
            after.setdefault(n, []).append(name)
    out: dict[str, set[str]] = {}
    for start in after:
        seen: set[str] = set()
        todo = list(after[start])
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(after[n])
        out[start] = seen
    return out
