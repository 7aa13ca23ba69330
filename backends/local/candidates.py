"""The steps the local runner's loop looks at for shards to launch.

Scanning every step on every turn of the loop was quadratic in a run of many
steps (5,000 one-shard steps: 13 s of 26, with the walk for their states). A step
is a candidate from when it may have a shard to launch (a shard queued, or a step
it needs done) until the loop finds it has none it can launch yet; candidates come
out in the graph's order, so that the loop launches in the order it always has.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping


class Candidates:
    """Step names, each at most once, taken in the order of ``names``."""

    def __init__(self, names: Iterable[str]) -> None:
        #: Each step's place in the graph's order.
        self.order: Mapping[str, int] = {name: i for i, name in enumerate(names)}
        self.heap: list[tuple[int, str]] = []
        self.members: set[str] = set()

    def add(self, name: str) -> None:
        """``name`` may have shards to launch now."""
        if name not in self.members:
            self.members.add(name)
            heapq.heappush(self.heap, (self.order[name], name))

    def take(self) -> str | None:
        """The first candidate, no longer one (:meth:`add` or :meth:`keep` it again)."""
        if not self.heap:
            return None
        name = heapq.heappop(self.heap)[1]
        self.members.discard(name)
        return name

    def keep(self, names: Iterable[str]) -> None:
        """Candidates again: taken, and still with shards to launch."""
        for name in names:
            self.add(name)

    def __iter__(self) -> Iterator[str]:
        return (name for _, name in self.heap)

    def __bool__(self) -> bool:
        return bool(self.heap)
