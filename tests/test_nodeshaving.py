"""Shaving a node to its fixpoint keeps every plan (against brute force).

:mod:`exo.compiler.nodeshaving` shaves a node of the split search until a pass
changes nothing. A start removed that a plan uses would make the split
search's "none" a false proof of optimality, so on random small problems every
enumerated plan must lie in the shaved windows, "no plan" must mean no plan,
and the windows must be a fixpoint of one more pass.
"""

from __future__ import annotations

import pytest

from exo.compiler.nodeshaving import shaved
from exo.compiler.windows import Rules, Supports, Windows, precedence_windows, shaved_once

from .test_windows import _instance, _plans, _shortest, _within


def _windows(got: tuple[list[int], list[list[int]]]) -> Windows:
    return Windows(tuple(got[0]), tuple(tuple(x) for x in got[1]))


@pytest.mark.parametrize("seed", range(32))
def test_every_plan_lies_in_the_node_shaved_windows(seed: int) -> None:
    steps = 5 + seed % 3
    inst = _instance(seed, steps)
    periods, preds, succ, use, limits = inst
    best = _shortest(inst)
    for horizon in (best - 1, best, best + 1):
        rules = Rules(periods, preds, succ, use, limits, horizon)
        w = precedence_windows(periods, preds, succ, horizon)
        got = shaved(rules, list(w.es), [list(x) for x in w.ls], lambda: False, Supports())
        plans = list(_plans(inst, horizon))
        if got is None:
            assert not plans, "the windows closed on a question with a plan"
            continue
        assert all(_within(_windows(got), plan) for plan in plans)
        # a fixpoint: one more pass changes nothing
        again = shaved_once(rules, list(got[0]), [list(x) for x in got[1]], lambda: False)
        assert again is not None and _windows(again) == _windows(got)


@pytest.mark.parametrize("seed", range(8))
def test_a_shaving_stopped_by_the_clock_keeps_every_plan(seed: int) -> None:
    inst = _instance(seed, 6)
    periods, preds, succ, use, limits = inst
    horizon = _shortest(inst) + 2
    rules = Rules(periods, preds, succ, use, limits, horizon)
    w = precedence_windows(periods, preds, succ, horizon)
    calls = [0]

    def every_third() -> bool:
        calls[0] += 1
        return calls[0] % 3 == 0

    got = shaved(rules, list(w.es), [list(x) for x in w.ls], every_third, Supports())
    assert got is not None
    assert all(_within(_windows(got), plan) for plan in _plans(inst, horizon))
