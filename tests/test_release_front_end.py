"""Planning lets go of the front end's memos (``pipeline.release_front_end``).

The peak this buys is measured, not asserted (docs/benchmarks.md, "the
10,000-step plan ≤ 500 MB"): here, that nothing keeps the shared parser (and
the strings it memoized) alive once a plan starts, and that the plans and IR
after a release are those of a parser that never was released.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from exo.compiler import parser
from exo.compiler.cli.plan import plan_json
from exo.compiler.pipeline import compile_file, plan_compiled, release_front_end

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_planning_drops_the_shared_parser_and_its_memos() -> None:
    compiled = compile_file(EXAMPLES / "quickstart.exo")
    shared = parser.default_parser()
    builder = weakref.ref(shared._builder)
    held = weakref.ref(shared)
    del shared
    plan_compiled(compiled)
    # freed by reference counting, as soon as the plan starts (no collection needed)
    assert held() is None and builder() is None
    assert parser.default_parser.cache_info().currsize == 0


def test_a_released_parser_gives_the_same_ir_and_plan() -> None:
    path = EXAMPLES / "quickstart.exo"
    release_front_end()
    first = compile_file(path)
    again = compile_file(path)  # on the parser the first compile memoized into
    release_front_end(collect=True)
    fresh = compile_file(path)  # on a new parser
    assert first.program == again.program == fresh.program
    plans = [plan_json(plan_compiled(c)).splitlines() for c in (first, fresh)]
    same = [[line for line in p if '"solve_time_s"' not in line] for p in plans]
    assert same[0] == same[1]
