"""The time-cost trade-off without a solver model (:mod:`exo.compiler.tradeoff`, issue #16).

- crashing upgrades the step every critical path shares before two parallel ones;
- what crashing bought and the deadline no longer needs is given back;
- on seeded random graphs (no quotas) the plan meets the limit and is never
  cheaper than the brute-forced optimum (it is a plan, not a bound), and close to it;
- the quick plan (no time for a model) of a tight deadline with quotas is the
  trade-off's when that is cheaper, and still a valid plan.
"""

from __future__ import annotations

import itertools
import random

from exo.compiler.anytime import Clock
from exo.compiler.costmodel import Option
from exo.compiler.problem import Problem, longest_paths
from exo.compiler.repair import quick
from exo.compiler.solution import pick
from exo.compiler.tradeoff import crash, relax, unload, within_limit
from tests.test_exact_rows import _opt as exact_option


def _opt(step: str, k: int, hours: float, cost: float) -> Option:
    """A CPU option of ``hours`` at ``cost`` (the exact-rows tests' option, repriced)."""
    return exact_option(step, f"{step}-{k}", 0, 1, hours)._replace(cost=cost)


def _problem(
    preds: tuple[tuple[int, ...], ...], options: list[list[tuple[float, float]]], deadline: float
) -> Problem:
    names = tuple(f"s{i}" for i in range(len(preds)))
    return Problem(
        names=names,
        preds=preds,
        options=tuple(
            tuple(_opt(n, k, h, c) for k, (h, c) in enumerate(opts))
            for n, opts in zip(names, options, strict=True)
        ),
        resources=(),
        limits=(),
        deadline=deadline,
        budget=None,
        objective="cost",
        confidence=0.95,
    )


def _span(p: Problem, choice: list[int]) -> float:
    durations = [p.options[s][k].P for s, k in enumerate(choice)]
    head, _ = longest_paths(p, durations)
    return max(h + d for h, d in zip(head, durations, strict=True))


# A diamond: s0 -> (s1, s2) -> s3. Each step 10 h at $10, or 6 h at more.
DIAMOND = ((), (0,), (0,), (1, 2))


def test_the_step_every_critical_path_shares_is_crashed_first() -> None:
    """4 h must go: s0 (both paths) costs $3/h; s1 and s2 cost $2/h each, $4/h together."""
    p = _problem(
        DIAMOND, [[(10, 10), (6, 22)], [(10, 10), (6, 18)], [(10, 10), (6, 18)], [(10, 10)]], 26.0
    )
    got = crash(p, pick(p, "cost"), 26.0)
    assert got == [1, 0, 0, 0]
    assert _span(p, got) <= 26.0 + 1e-9


def test_parallel_branches_are_crashed_together_when_that_is_cheaper() -> None:
    """s0 at $5/h against s1 + s2 at $2/h each: both branches are upgraded."""
    p = _problem(
        DIAMOND, [[(10, 10), (6, 30)], [(10, 10), (6, 18)], [(10, 10), (6, 18)], [(10, 10)]], 26.0
    )
    got = crash(p, pick(p, "cost"), 26.0)
    assert got == [0, 1, 1, 0]


def test_relax_gives_back_what_the_deadline_no_longer_needs() -> None:
    """All three upgraded (22 h) against a 26 h deadline: 4 h can be given back.

    Greedy by the saving at stake: s0 ($12) goes back first, after which the
    branches have no float left ($56, where s1 and s2 back would make $52).
    """
    p = _problem(
        DIAMOND, [[(10, 10), (6, 22)], [(10, 10), (6, 18)], [(10, 10), (6, 18)], [(10, 10)]], 26.0
    )
    got = relax(p, [1, 1, 1, 0], 26.0)
    assert got == [0, 1, 1, 0]
    assert _span(p, got) <= 26.0 + 1e-9


def test_no_plan_when_even_the_fastest_options_are_too_long() -> None:
    p = _problem(DIAMOND, [[(10, 10), (6, 22)]] * 3 + [[(10, 10)]], 20.0)
    assert within_limit(p, pick(p, "cost"), 20.0) is None


def _random(seed: int) -> Problem:
    rng = random.Random(seed)
    n = 6
    preds = tuple(tuple(i for i in range(j) if rng.random() < 0.35) for j in range(n))
    options = []
    for _ in range(n):
        opts = []
        hours = rng.uniform(4, 10)
        cost = rng.uniform(5, 10)
        for _ in range(3):
            opts.append((round(hours, 2), round(cost, 2)))
            hours *= rng.uniform(0.4, 0.9)
            cost *= rng.uniform(1.05, 1.6)
        options.append(opts)
    slowest = _problem(preds, options, 0.0)
    fast = _span(slowest, list(pick(slowest, "P")))
    cheap = _span(slowest, list(pick(slowest, "cost")))
    return _problem(preds, options, fast + rng.uniform(0.2, 0.8) * (cheap - fast))


def test_on_random_graphs_the_plan_meets_the_limit_near_the_brute_forced_optimum() -> None:
    ratios = []
    for seed in range(40):
        p = _random(seed)
        assert p.deadline is not None
        best = min(
            p.cost(c)
            for c in itertools.product(range(3), repeat=p.size)
            if _span(p, list(c)) <= p.deadline + 1e-9
        )
        got = within_limit(p, pick(p, "cost"), p.deadline)
        assert got is not None
        assert _span(p, got) <= p.deadline + 1e-6
        assert p.cost(got) >= best - 1e-9
        ratios.append(p.cost(got) / best)
    # a heuristic: not always optimal, but on these graphs within 2% on average
    assert sum(ratios) / len(ratios) <= 1.02
    assert max(ratios) <= 1.15


def test_the_quick_plan_of_a_tight_deadline_is_the_trade_off() -> None:
    """Cheapest everywhere is too long; the quick plan costs no more than the trade-off's."""
    p = _problem(
        DIAMOND, [[(10, 10), (6, 22)], [(10, 10), (6, 18)], [(10, 10), (6, 18)], [(10, 10)]], 26.0
    )
    st = quick(p, "cost", None, None, Clock(None))
    assert st.choice == (1, 0, 0, 0)
    assert st.value == 52.0
    assert st.bound == 40.0 and not st.proven


def _gpu(step: str, gpu: str, hours: float, cost: float) -> Option:
    return _opt(step, 0, hours, cost)._replace(
        instance_type=f"{step}-{gpu}", accelerator=gpu, accelerator_count=1, perf_key=gpu
    )


def test_work_moves_off_a_full_quota_to_the_cheapest_other_resource() -> None:
    """Three independent 10 h steps, one A GPU and a 12 h deadline: A holds one step.

    Each can also run on B (quota 2) at a premium: $2 for s0, $1 for s1 and s2; the
    two cheapest moves take the work off A.
    """
    steps = [
        (_gpu("s0", "A", 10, 10), _gpu("s0", "B", 10, 12)),
        (_gpu("s1", "A", 10, 10), _gpu("s1", "B", 10, 11)),
        (_gpu("s2", "A", 10, 10), _gpu("s2", "B", 10, 11)),
    ]
    p = Problem(
        names=("s0", "s1", "s2"),
        preds=((), (), ()),
        options=tuple(steps),
        resources=("accel:A", "accel:B"),
        limits=(1, 2),
        deadline=12.0,
        budget=None,
        objective="cost",
        confidence=0.95,
    )
    assert unload(p, [0, 0, 0], 12.0, 1.0) == [0, 1, 1]
    # the whole search without a model finds that plan and schedules it
    st = quick(p, "cost", None, None, Clock(None))
    assert st.choice == (0, 1, 1) and st.value == 32.0
    # no capacity left anywhere: nothing to move to
    assert unload(p, [0, 0, 0], 12.0, 0.5) is None


def test_a_limit_spent_before_any_plan_still_gets_the_trade_off() -> None:
    """The options took the whole limit: the quick plan is the trade-off's, within a grace,
    not the fastest option everywhere."""
    p = _problem(
        DIAMOND, [[(10, 10), (6, 22)], [(10, 10), (6, 18)], [(10, 10), (6, 18)], [(10, 10)]], 26.0
    )
    spent = Clock(0.0)
    assert spent.expired()
    st = quick(p, "cost", None, None, spent)
    assert st.choice == (1, 0, 0, 0) and st.value == 52.0
