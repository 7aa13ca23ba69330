"""Run ids and the order of a run's steps, the same for every runner."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Sequence

import networkx as nx

#: What :func:`new_run_id` writes; anything else was not written by a runner.
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def new_run_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx``: sortable by start time (UTC), unique with the random tail."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def downstream(steps: Iterable[tuple[str, Sequence[str]]]) -> dict[str, set[str]]:
    """For each step (name, the steps it needs), every step downstream of it, transitively."""
    g: nx.DiGraph[str] = nx.DiGraph()
    for name, needs in steps:
        g.add_node(name)
        for n in needs:
            g.add_edge(n, name)
    return {n: set(nx.descendants(g, n)) for n in g.nodes}
