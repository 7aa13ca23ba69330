"""Options that can never run at the same instant, and cliques of them.

Two options (of different steps, or of one step) conflict when no schedule
can run them at once:

- they are options of the same step, or of two steps one of which precedes
  the other (directly or through a chain);
- together they hold more of some quota than its limit (``u_a + u_b > Q``).

In a set of pairwise conflicting options (a clique of the conflict graph) at
most one runs at any instant: ``sum_{a in C} run_a(t) <= 1``. The quota row
alone does not say so to a linear relaxation: two options holding 9 of a
quota of 12 may each run at one half, 4.5 + 4.5 <= 12. The time-indexed model
(:mod:`exo.compiler.timeindexed`) adds these clique rows per period; they are
the clique inequalities of time-indexed scheduling (after Christofides, Alvarez-
Valdés and Tamarit 1987), valid for every schedule that meets the quotas, so
the model stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import networkx as nx

from exo.compiler.milp import ancestors
from exo.compiler.problem import Problem

#: Most maximal cliques looked at (their enumeration can grow fast on dense graphs).
MAX_CLIQUES = 400

Option = tuple[int, int]


def conflict_graph(
    problem: Problem,
    use: Sequence[Sequence[Sequence[int]]],
    limits: Sequence[int],
    live: Sequence[Sequence[int]],
) -> nx.Graph[Option]:
    """Options ``(step, k)`` (those in ``live[step]``) joined when they can never overlap.

    ``use[s][k][r]`` and ``limits[r]``: the quotas (rounded or not). Edges are
    marked ``quota`` when a quota is what keeps the two apart.
    """
    anc = ancestors(problem)
    g: nx.Graph[Option] = nx.Graph()
    nodes = [(s, k) for s in range(problem.size) for k in live[s]]
    g.add_nodes_from(nodes)
    for (s, k), (t, m) in combinations(nodes, 2):
        over = any(a + b > q for a, b, q in zip(use[s][k], use[t][m], limits, strict=True))
        if over:
            g.add_edge((s, k), (t, m), quota=True)
        elif s == t or s in anc[t] or t in anc[s]:
            g.add_edge((s, k), (t, m), quota=False)
    return g


def quota_cliques(g: nx.Graph[Option]) -> list[list[Option]]:
    """Maximal cliques that cover every quota edge, largest first.

    A clique of one step's options, or of a chain of steps, is implied by the
    model's own rows; a clique with a quota edge is not. Among the maximal
    cliques (at most :data:`MAX_CLIQUES` looked at), the largest are kept
    while they cover a quota edge that no clique kept before covers.
    """
    found: list[list[Option]] = []
    for n, clique in enumerate(nx.find_cliques(g)):
        if n >= MAX_CLIQUES:
            break
        if len({s for s, _ in clique}) >= 2:
            found.append(sorted(clique))
    out: list[list[Option]] = []
    covered: set[tuple[Option, Option]] = set()
    for members in sorted(found, key=lambda c: (-len(c), c)):
        new = {(a, b) for a, b in combinations(members, 2) if g.edges[a, b]["quota"]}
        if new - covered:
            out.append(members)
            covered |= new
    return out
