"""The parser keeps nothing of the files it read (``treebuild.Memos``).

The peak this buys is measured, not asserted (docs/benchmarks.md, "the
10,000-step plan ≤ 500 MB"): here, that the tree builder's memos (decoded strings,
compound attributes met and their recipes) belong to a parse, or to the loaded
program that keeps its trees, never to the shared parser, however a parse ends; so a
process that parses many files keeps none of the earlier ones, the shared parser
(its tables) outlives a plan, and the plans and IR are those of a fresh parser.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest

from exo.compiler import parser
from exo.compiler.cli.plan import plan_json
from exo.compiler.modules import load_program
from exo.compiler.parser import ExoParser
from exo.compiler.pipeline import compile_file, plan_compiled, release_front_end
from exo.compiler.treebuild import Memos

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

_ATTRS = '  image = "{tag}"\n  cmd = ["run", "{tag}", 4]\n  n = 8\n'


def _workflow(tag: str, body: str = "") -> str:
    return "workflow w {\n" + (_ATTRS * 3).replace("{tag}", tag) + body + "}\n"


def _held(p: ExoParser) -> set[str]:
    """The texts the parser's tree builder holds memos of."""
    b = p._builder
    return set(b._strings) | b._seen | set(b._recipes)


def _texts(m: Memos) -> set[str]:
    return set(m.strings) | m.seen | set(m.recipes)


@pytest.mark.parametrize("compound_from", [0, 1 << 30])  # compound tokens, and plain ones
def test_a_second_file_parsed_keeps_no_memo_of_the_first(compound_from: int) -> None:
    p = ExoParser(compound_from=compound_from)
    first, second = Memos(), Memos()
    assert not p.parse_recovering(_workflow("alpha"), "a.exo", first).errors
    assert _held(p) == set()
    assert not p.parse_recovering(_workflow("beta"), "b.exo", second).errors
    assert _held(p) == set()
    assert any("alpha" in t for t in _texts(first))  # the memos served the first parse
    assert any("beta" in t for t in _texts(second))
    assert not any("alpha" in t for t in _texts(second))
    p.parse_recovering(_workflow("gamma"), "c.exo")  # memos of its own, dropped at its end
    assert _held(p) == set()


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
    assert parsed.errors
    assert _held(p) == set() and p._builder.errors == []
    with pytest.raises(parser.CompileError):
        p.parse(_workflow("alpha", bad), "a.exo")
    assert _held(p) == set()


def test_a_program_keeps_its_memos_and_the_shared_parser_none(tmp_path: Path) -> None:
    for tag in ("alpha", "beta"):
        (tmp_path / f"{tag}.exo").write_text(_workflow(tag), "utf-8")
    loaded = [load_program(tmp_path / f"{tag}.exo") for tag in ("alpha", "beta")]
    assert _held(parser.default_parser()) == set()
    assert any("alpha" in t for t in _texts(loaded[0].memos))
    assert not any("alpha" in t for t in _texts(loaded[1].memos))
    memos = weakref.ref(loaded[0].memos)
    del loaded
    assert memos() is None  # freed with the program's syntax trees, by reference counting


def test_planning_keeps_the_shared_parser() -> None:
    compiled = compile_file(EXAMPLES / "quickstart.exo")
    shared = parser.default_parser()
    assert _held(shared) == set()
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
