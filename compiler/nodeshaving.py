"""Shaving at each node of the split search, to its fixpoint.

The split search (:mod:`exo.compiler.splitting`) refutes a node when the rules
of :mod:`exo.compiler.windows`, then shaving (each window end fixed in turn, the
rules run again), close a window. One pass of shaving leaves windows that a
second pass narrows again: a step shaved early in the pass does not see what
the later steps' shaving removed, and a node left open by one pass is split
where more passes would have refuted it. Shaved until a pass changes nothing,
PSPLIB ``j2061_7`` at 37 periods is refuted in 51 nodes instead of 103 (two
passes: 69). Measured beside the other rules the issue names, on the same
question's nodes: clique rows of steps that never run together (as a unary
quota in the energetic rule: 103 nodes, no node refuted sooner), an aggregated
quota (the two quotas summed: 101 nodes), the time-indexed LP relaxation on a
node's windows (infeasible at none of the 103 nodes, before or after shaving),
galloping block probes for the starts that fail in a row (as many runs of the
rules: the runs are short). docs/benchmarks.md, issue #18, eighth round.

Every start a pass removes is one no plan of the node uses (each probe is a
proof), so the windows keep every plan of the node and the search stays a
proof; a pass stopped by the clock leaves windows that still hold every plan.
"""

from __future__ import annotations

from collections.abc import Callable

from exo.compiler.windows import Rules, Supports, shaved_once


def shaved(
    rules: Rules,
    es: list[int],
    ls: list[list[int]],
    stopped: Callable[[], bool],
    supports: Supports,
) -> tuple[list[int], list[list[int]]] | None:
    """Passes of shaving, then the rules, until a pass changes nothing (``None``: a
    window closed). ``supports``: the node's probes (its parent's answered again
    while their fixpoints lie in the windows), kept across the passes."""
    while True:
        before = (list(es), [list(x) for x in ls])
        got = shaved_once(rules, es, ls, stopped, supports)
        if got is None:
            return None
        es, ls = got
        if (es, ls) == before or stopped():
            return es, ls
