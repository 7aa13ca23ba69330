"""The one topological sort: Kahn's algorithm, lowest priority first among ready nodes.

The front end orders a workflow's steps with it (priority: declaration order) and the
scheduler orders jobs with it (priority: a rule such as the longest tail first), so both
break ties the same way: by priority, then by position. Standard library only, so that
``exoc check`` loads no numerical stack for it.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any


def kahn_order(
    successors: Sequence[Sequence[int]], indegree: Sequence[int], priority: Sequence[Any]
) -> list[int]:
    """Nodes ``0 .. n-1`` in an order that respects every edge ``i -> successors[i]``.

    ``indegree[j]`` is the number of edges into ``j`` (an edge given twice counts twice);
    among the nodes whose predecessors are all placed, the one with the lowest
    ``(priority[i], i)`` comes next. On a cycle the order is short: the nodes on or
    behind the cycle are missing, and the caller reports it."""
    waiting = list(indegree)
    ready = [(priority[i], i) for i, k in enumerate(waiting) if k == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for j in successors[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (priority[j], j))
    return order


def order_by_needs(needs: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Names in a topological order, ties by their position in ``needs``.

    ``needs`` lists each node once as ``(name, the names it needs)`` (a workflow's steps
    and their predecessors); a need that is not listed is ignored. The order networkx's
    ``lexicographical_topological_sort`` gives with the position as key, without loading
    networkx (``exoc run`` orders its steps with it). A cycle raises ``ValueError``: callers
    order programs whose graph was checked."""
    index = {name: i for i, (name, _) in enumerate(needs)}
    successors: list[list[int]] = [[] for _ in needs]
    indegree = [0] * len(needs)
    for i, (_, before) in enumerate(needs):
        for j in {index[n] for n in before if n in index}:
            successors[j].append(i)
            indegree[i] += 1
    order = kahn_order(successors, indegree, range(len(needs)))
    if len(order) != len(needs):
        raise ValueError("the graph has a cycle")
    return [needs[i][0] for i in order]
