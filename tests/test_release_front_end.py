"""The front end keeps nothing of a file once it is parsed (``TreeBuilder.forget``).

The peak this buys is measured, not asserted (docs/benchmarks.md, "the
10,000-step plan ≤ 500 MB"): here, that the tree builder's memos (decoded strings,
compound attributes met and their recipes) last one parse, however it ends, so a
process that parses many files keeps none of the earlier ones; that the shared
parser, its tables, outlives a plan; and that the plans and IR after a release are
those of a fresh parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exo.compiler import parser
from exo.compiler.cli.plan import plan_json
from exo.compiler.parser import ExoParser
from exo.compiler.pipeline import compile_file, plan_compiled, release_front_end

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

_ATTRS = '  image = "{tag}"\n  cmd = ["run", "{tag}", 4]\n  n = 8\n'


def _workflow(tag: str, body: str = "") -> str:
    return "workflow w {\n" + (_ATTRS * 3).replace("{tag}", tag) + body + "}\n"


def _memos(p: ExoParser) -> set[str]:
    b = p._builder
    return set(b._strings) | b._seen | set(b._recipes)


def _spy(p: ExoParser, monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """What the builder's memos held at the end of each parse, before it forgot them."""
    kept: list[set[str]] = []
    forget = p._builder.forget

    def keep_then_forget() -> None:
        kept.append(_memos(p))
        forget()

    monkeypatch.setattr(p._builder, "forget", keep_then_forget)
    return kept


@pytest.mark.parametrize("compound_from", [0, 1 << 30])  # compound tokens, and plain ones
def test_a_second_file_parsed_keeps_no_memo_of_the_first(
    compound_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = ExoParser(compound_from=compound_from)
    kept = _spy(p, monkeypatch)
    first = p.parse_recovering(_workflow("alpha"), "a.exo")
    assert _memos(p) == set()
    second = p.parse_recovering(_workflow("beta"), "b.exo")
    assert _memos(p) == set()
    assert not first.errors and not second.errors
    assert any("alpha" in m for m in kept[0])  # the memos served the first parse
    assert any("beta" in m for m in kept[1]) and not any("alpha" in m for m in kept[1])


@pytest.mark.parametrize(
    "bad",
    [
        "  oops oops\n",  # a syntax error: the parse recovers and goes on
        "  big = 1__0\n",  # a literal error
        "  deep = " + "[" * (parser.MAX_DEPTH + 1) + "]" * (parser.MAX_DEPTH + 1) + "\n",
    ],
)
def test_a_failed_parse_keeps_no_memo(bad: str) -> None:
    p = ExoParser(compound_from=0)
    parsed = p.parse_recovering(_workflow("alpha", bad), "a.exo")
    assert parsed.errors or parsed.literal_errors
    assert _memos(p) == set() and p._builder.errors == []
    with pytest.raises(parser.CompileError):
        p.parse(_workflow("alpha", bad), "a.exo")
    assert _memos(p) == set()


def test_planning_keeps_the_shared_parser_and_no_memo() -> None:
    compiled = compile_file(EXAMPLES / "quickstart.exo")
    shared = parser.default_parser()
    assert _memos(shared) == set()
    plan_compiled(compiled)
    assert parser.default_parser() is shared  # its tables are not built again


def test_a_released_front_end_gives_the_same_ir_and_plan() -> None:
    path = EXAMPLES / "quickstart.exo"
    first = compile_file(path)
    release_front_end(collect=True)
    again = compile_file(path)  # on the same parser, after a collection
    parser.default_parser.cache_clear()
    fresh = compile_file(path)  # on a new parser
    assert first.program == again.program == fresh.program
    plans = [plan_json(plan_compiled(c)).splitlines() for c in (first, fresh)]
    same = [[line for line in p if '"solve_time_s"' not in line] for p in plans]
    assert same[0] == same[1]
