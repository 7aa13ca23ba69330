"""The fast front end builds exactly what the plain one did (issue #16).

- The syntax-tree actions (``treebuild.py``) cover every rule of ``exo.lark``: a
  rule without one is refused when the parser is built.
- With the optional compiled parser (``lark-cython``) a file gives the same
  syntax tree, node for node and span for span, as Lark's pure-Python parser;
  its diagnostics are the pure-Python parser's by construction (a file it
  cannot parse is parsed again), which the snapshot and conformance tests pin.
- ``decode_string``'s fast path agrees with the general decoder on every string.
- Number literals read from the memo are the same nodes as read afresh.
- The DAG check's plain topological sort is the order networkx gave.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Lark
from lark.exceptions import LarkError

from exo.compiler import compound, literals, nodebuild, treebuild
from exo.compiler import parser as parser_module
from exo.compiler.checks import dag_order
from exo.compiler.diagnostics import Span
from exo.compiler.literals import LiteralError, classify_number, decode_string
from exo.compiler.parser import ExoParser
from exo.compiler.syntax import Attr, Str

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [
        *ROOT.glob("examples/**/*.exo"),
        *ROOT.glob("stdlib/**/*.exo"),
        *(ROOT.parent / "shared" / "spec").glob("**/*.exo"),
    ]
)


def shape(x: Any) -> Any:
    """A syntax tree as plain data (nodes compare by identity)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, *(shape(getattr(x, f.name)) for f in dataclasses.fields(x)))
    if isinstance(x, tuple | list):
        return tuple(shape(v) for v in x)
    return x


def test_every_rule_has_an_action() -> None:
    grammar = (ROOT / "compiler" / "exo.lark").read_text("utf-8")
    ExoParser(compiled=False)  # builds and installs without complaint
    extended = grammar.replace("?value:", '?value: "@" IDENT\n    |', 1)
    assert extended != grammar
    lark = Lark(extended, parser="lalr", maybe_placeholders=False)
    with pytest.raises(RuntimeError, match="without a syntax-tree action"):
        treebuild.install(lark, treebuild.TreeBuilder())


def test_the_grammar_passes_larks_strict_mode() -> None:
    """``exoc`` builds its parsers without Lark's strict mode (its check needs
    ``interegular`` and the grammar is fixed): here every grammar it builds, ``exo.lark``
    alone and with compound tokens, is refused on any shift/reduce conflict or terminal
    collision, and a strict parser reads a file as the usual one does."""
    strict = ExoParser(strict=True, compound_from=0)
    # Each parser is built on first use: the one for plain exo.lark, then with compounds.
    assert strict._lark.options.strict and strict._fast.options.strict
    text = (ROOT / "examples" / "quickstart.exo").read_text("utf-8")
    assert shape(strict.parse(text, "f.exo")) == shape(ExoParser().parse(text, "f.exo"))
    # Strict and plain parsers are cached apart (Lark rebuilds on an options mismatch).
    grammar = (ROOT / "compiler" / "exo.lark").read_text("utf-8")
    names = {parser_module._table_cache(grammar, o) for o in ("strict=True", "strict=False")}
    assert len(names) == 2
    # What strict mode refuses and a plain build accepts: a shift/reduce conflict, and a
    # terminal that can match a STRING's text.
    conflict = grammar.replace("?value:", '?value: value "+" value\n    |', 1)
    collision = grammar.replace("?value:", "?value: TEXT\n    |", 1) + '\nTEXT: /"[a-z]*"/\n'
    for bad in (conflict, collision):
        Lark(bad, parser="lalr", maybe_placeholders=False).parse("param x = abc\n")
        with pytest.raises(LarkError):
            Lark(bad, parser="lalr", strict=True, maybe_placeholders=False).parse("param x = a\n")


@pytest.mark.skipif(not ExoParser().compiled, reason="lark-cython is not installed")
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_compiled_parser_builds_the_same_tree(path: Path) -> None:
    text = path.read_text("utf-8")
    plain, fast = ExoParser(compiled=False), ExoParser()
    a, b = plain.parse_recovering(text, "f.exo"), fast.parse_recovering(text, "f.exo")
    assert shape(a.module) == shape(b.module)
    assert a.errors == b.errors


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_keywords_as_names_fall_back_to_the_contextual_lexer(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file is tried first with Lark's basic lexer, to which ``as``, ``param``
    and ``import`` are always keywords: where they are names the first parse fails and
    the contextual parser reads the file, to the same tree and no error. So on
    lark-cython and on Lark's own parser (``EXO_PARSER=python``)."""
    monkeypatch.setenv("EXO_PARSER", engine)
    text = 'import "m.exo" as param\nparam as = 3\nworkflow w {\n  import = as\n}\n'
    fast = ExoParser()
    parsed = fast.parse_recovering(text, "f.exo")
    assert parsed.errors == ()
    assert "_lark" in vars(fast)  # the fallback ran
    assert shape(parsed.module) == shape(ExoParser(compiled=False).parse(text, "f.exo"))
    quick = ExoParser()
    quick.parse((ROOT / "examples" / "quickstart.exo").read_text("utf-8"), "q.exo")
    assert "_lark" not in vars(quick)  # a file the first parser reads builds no other


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_basic_lexer_first_on_lark_alone_builds_the_same_tree(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without lark-cython (``EXO_PARSER=python``) a small file is also tried first with
    the basic lexer, on Lark's pure-Python parser: the same tree and errors."""
    monkeypatch.setenv("EXO_PARSER", "python")
    text = path.read_text("utf-8")
    plain, first = ExoParser(compiled=False), ExoParser()
    assert not first.compiled
    a, b = plain.parse_recovering(text, "f.exo"), first.parse_recovering(text, "f.exo")
    assert shape(a.module) == shape(b.module)
    assert a.errors == b.errors


@pytest.mark.skipif(not ExoParser().compiled, reason="lark-cython is not installed")
def test_compiled_parser_on_a_generated_workflow(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gen_workflows

    text = gen_workflows.to_exo(gen_workflows.generate(60, 3))
    plain, fast = ExoParser(compiled=False), ExoParser()
    assert shape(plain.parse(text, "f.exo")) == shape(fast.parse(text, "f.exo"))


def _span() -> Span:
    return Span("f.exo", 3, 7, 3, 7)


def _decoded(raw: str) -> Any:
    try:
        return ("ok", shape(decode_string(raw, _span())))
    except LiteralError as e:
        return ("error", e.diagnostic.code, e.diagnostic.span, e.diagnostic.message)


def _decoded_slowly(raw: str) -> Any:
    try:
        return ("ok", shape(literals._decode_escaped(raw, _span())))
    except LiteralError as e:
        return ("error", e.diagnostic.code, e.diagnostic.span, e.diagnostic.message)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='ab {}\\"n_.-x1', max_size=24))
def test_decode_string_fast_path_agrees(body: str) -> None:
    raw = '"' + body.replace('"', '\\"') + '"'
    assert _decoded(raw) == _decoded_slowly(raw)


def test_number_memo_gives_the_same_nodes() -> None:
    for text in ("4", "2h30m", "16GiB", "1e6", "0.25", "-3"):
        first = classify_number(text, Span("a.exo", 1, 1, 1, 1 + len(text)))
        again = classify_number(text, Span("b.exo", 9, 4, 9, 4 + len(text)))
        assert type(first) is type(again)
        assert shape(first)[2:] == shape(again)[2:]
        assert again.span == Span("b.exo", 9, 4, 9, 4 + len(text))
    for _ in range(2):  # an error is never remembered: both reads report it
        with pytest.raises(LiteralError):
            classify_number("8hrs", _span())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab {}\\"n_.-x1', max_size=24), st.integers(1, 40), st.integers(1, 80))
def test_string_memo_gives_the_same_nodes(body: str, line: int, column: int) -> None:
    raw = '"' + body.replace('"', '\\"') + '"'
    builder = treebuild.TreeBuilder()
    builder.file = "m.exo"

    def token(at: int) -> Any:
        return SimpleNamespace(
            value=raw, line=line, column=at, end_line=line, end_column=at + len(raw)
        )

    first, again = builder.string(token(column)), builder.string(token(column + 7))
    fresh = treebuild.TreeBuilder()
    fresh.file = "m.exo"
    assert shape(again) == shape(fresh.string(token(column + 7)))  # read from the memo
    assert shape(first) == shape(fresh.string(token(column)))
    assert builder.errors == fresh.errors[::-1]  # an error is reported both times


def test_fast_builders_make_the_same_values() -> None:
    span = treebuild.span_of("a.exo", SimpleNamespace(line=3, column=4, end_line=3, end_column=9))
    assert type(span) is Span and span == Span("a.exo", 3, 4, 3, 9)
    assert hash(span) == hash(Span("a.exo", 3, 4, 3, 9))
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.line = 1  # type: ignore[misc]
    with pytest.raises(RuntimeError, match="is not built from"):  # a field added or moved
        treebuild._builder(Span, ("file", "line", "column", "end_column", "end_line"))
    fields = ("file", "line", "column", "end_line", "end_column")
    with pytest.raises(RuntimeError, match="is not a record"):  # frozen: made by ``span``
        treebuild._builder(Span, fields)
    assert nodebuild.span is nodebuild._span_by_class  # the draft becomes a Span here
    for made in (nodebuild.span, nodebuild._span_by_slots()):
        other = made("a.exo", 3, 4, 3, 9)
        assert type(other) is Span and other == span and repr(other) == repr(span)
        assert hash(other) == hash(span)
        with pytest.raises(dataclasses.FrozenInstanceError):
            other.line = 1  # type: ignore[misc]
    assert nodebuild.string is Str and nodebuild.attr is Attr  # records: their own class


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 30), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29))), st.randoms()
)
def test_dag_order_is_networkx_order(n: int, pairs: list[tuple[int, int]], rng: Any) -> None:
    """Kahn's sort, ties by declaration order, is networkx's lexicographical order."""
    names = [f"s{i}" for i in range(n)]
    declared = names[:]
    rng.shuffle(declared)
    lw = SimpleNamespace(decl_order={s: i for i, s in enumerate(declared)}, sink=None)
    ends = [sorted((a % n, b % n)) for a, b in pairs]
    edges = [(names[a], names[b], _span()) for a, b in ends]
    edges = [e for e in edges if e[0] != e[1]]  # forward edges only: acyclic
    order, _ = dag_order(lw.decl_order, dict.fromkeys(names), edges)
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from((a, b) for a, b, _ in edges)
    key = lw.decl_order
    assert order == list(nx.lexicographical_topological_sort(g, key=lambda s: f"{key[s]:09d}"))


# --- compound tokens (``compound.py``): the fast parser's flat lists and maps ------------

_PLAIN = ExoParser(compiled=False)
_FAST = ExoParser(compound_from=0)  # compound tokens on every file, however small


def _same_parse(text: str) -> None:
    """The fast parser (compound tokens, compiled where installed) gives exactly the
    tree and the diagnostics of ``exo.lark`` alone on Lark's pure-Python parser."""
    a, b = _PLAIN.parse_recovering(text, "f.exo"), _FAST.parse_recovering(text, "f.exo")
    assert shape(a.module) == shape(b.module)
    assert a.errors == b.errors


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_compound_tokens_build_the_same_tree_on_every_line_variant(path: Path) -> None:
    """Every file, and copies of it with one line deleted or doubled (eight lines
    of each file, spread over it: every line of every file is checked by hand
    before a change to the parser, see docs/benchmarks.md)."""
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8 (the E002 conformance input)")
    lines = text.splitlines(keepends=True)
    _same_parse(text)
    for i in range(0, len(lines), max(1, len(lines) // 8)):
        _same_parse("".join(lines[:i] + lines[i + 1 :]))
        _same_parse("".join(lines[: i + 1] + lines[i:]))


_ATOMS = st.sampled_from(
    ['"x"', '"{model}"', '"a{b}c"', '"q\\"u"', '"bad \\q"', '"{x"', '""', "1", "-2.5", "3e3",
     "4h", "1h30m", "16GiB", "5parsecs", "1__0", "1e5h", "$5", "$1__0", "a", "a.b", "x-y",
     "true", "false", "import", "param", "as", "importx", "A100-80GB", "1..2", "[1]", "{}"]
)  # fmt: skip
_SEPS = st.sampled_from(["", " ", "  ", "\n", "\n    ", ' # note ] } "x\n', "\t", "\r\n"])


@st.composite
def _flat(draw: Any) -> str:
    """A list or map of literals, well formed or not, spread over lines with comments."""

    def sep() -> str:
        return str(draw(_SEPS))

    items = draw(st.lists(_ATOMS, max_size=5))
    if draw(st.booleans()):
        body = [f"{sep()}{a}{sep()}" for a in items]
        joiner = "," if draw(st.integers(0, 9)) else ""
        trail = "," if draw(st.booleans()) else ""
        return "[" + joiner.join(body) + (trail + sep() if items else "") + "]"
    keys = draw(st.lists(_ATOMS, min_size=len(items), max_size=len(items)))
    entries = [f"{sep()}{k}{sep()}:{sep()}{v}{sep()}" for k, v in zip(keys, items, strict=True)]
    joiner = draw(st.sampled_from([",", ", ", " ", ",,"]))
    return "{" + joiner.join(entries) + sep() + "}"


@settings(max_examples=400, deadline=None)
@given(st.lists(_flat(), min_size=1, max_size=3), st.integers(0, 31))
def test_compound_tokens_agree_on_random_lists_and_maps(values: list[str], depth: int) -> None:
    """Random flat (and not quite flat) lists and maps, at any depth up to the limit:
    the same tree, literal errors and syntax errors (E008 included)."""
    attrs = "\n".join(f"  a{i} = {'[' * depth}{v}{']' * depth}" for i, v in enumerate(values))
    _same_parse(f"workflow w {{\n{attrs}\n}}\nparam p = {values[0]}\n")


def test_compound_tokens_are_taken_and_refused_where_they_should() -> None:
    fast = ExoParser(compound_from=0)
    made: list[str] = []
    for name, terminal in (
        ("flat_list", compound.LIST),
        ("flat_map", compound.MAP),
        ("flat_attr", compound.ATTR),
    ):
        action = getattr(fast._builder, name)
        fast._fast._callbacks[terminal] = lambda tok, action=action, name=name: (
            made.append(name) or action(tok)
        )
    text = 'workflow w {\n  a = ["x", 1]\n  b = {1: 2}\n  c = [[1]]\n  r = 1..2\n  s = "x"\n}\n'
    fast.parse(text + "param p = [1]\nparam q = {a: b}\n", "f.exo")
    # c's inner [1] only; the range as an attribute; the params' values are not attributes
    assert made == [
        "flat_attr", "flat_attr", "flat_list", "flat_attr", "flat_attr", "flat_list", "flat_map"
    ]  # fmt: skip
    ranged: list[str] = []
    fast._fast._callbacks[compound.ATTR] = lambda tok: ranged.append(tok.value)
    fast.parse("workflow w {\n  r = 1..n\n  s = [1..2]\n  t = x..import\n}\n", "f.exo")
    # not in a list, not a keyword as a bound; the white space after it is the token's
    assert ranged == ["r = 1..n\n  "]
    deep = "workflow w {\n  a = " + "[" * 31 + '["x"]' + "]" * 31 + "\n}\n"
    errors = ExoParser(compound_from=0).parse_recovering(deep, "f.exo").syntax_errors
    assert [d.code for d in errors] == ["E008"]  # the compound's bracket is counted
    for value, codes in (("[1]", ["E008"]), ("{}", ["E008"]), ("1", []), ('"[x]"', [])):
        blocks = "workflow w {\n" + "b {\n" * 31 + f"a = {value}\n" + "}\n" * 32
        _same_parse(blocks)
        errors = ExoParser(compound_from=0).parse_recovering(blocks, "f.exo").syntax_errors
        assert [d.code for d in errors] == codes  # only a list or map opens a bracket


_KEYS = st.sampled_from(
    ["a", "x-y", "a.b", "a.", '"k"', '"k y"', '"{p}"', '"bad \\q"', "import", "as", "param",
     "importx", "true", "_", "1", "a..b"]
)  # fmt: skip
_AFTER = st.sampled_from(
    ["", " ", ",", " ,", "..3", " .. 3", "..", "x", "-1", '"s"', ".5", "+1", "$1", "\n", " # c\n",
     "}", "{", "=", ":", "[1]", "e5", "s", "_0"]
)  # fmt: skip


@st.composite
def _attrs(draw: Any) -> str:
    """Attributes of one line each, well formed or not: a key, ``=``, a literal, list or
    map, and whatever follows it (a range's dots, a name run on, another value ...)."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        value = draw(st.one_of(_ATOMS, _flat()))
        gap = (draw(_SEPS), draw(_SEPS))
        lines.append(f"{draw(_KEYS)}{gap[0]}={gap[1]}{value}{draw(_AFTER)}")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(_attrs(), st.integers(0, 31))
def test_compound_attributes_agree_on_random_attributes(attrs: str, depth: int) -> None:
    """Compound attributes (``key = literal``, ``key = [...]``, ``key = {...}`` as one
    token) against ``exo.lark`` alone, inside blocks nested up to the limit."""
    _same_parse("workflow w {\n" + "b {\n" * depth + attrs + "\n" + "}\n" * (depth + 1))


def _compound_patterns(lark: Any) -> dict[str, re.Pattern[str]]:
    """The compound terminals' patterns (as Lark reads them) and the actions' scanners."""
    found: dict[str, re.Pattern[str]] = {}
    for line in compound.extension(lark).splitlines():
        name, _, rest = line.partition(f".{compound.PRIORITY}: ")
        if rest:
            raw = rest[1:-1].replace("\\/", "/").replace("\\n", "\n").replace("\\t", "\t")
            found[name] = re.compile(raw)
    found["scanner"] = compound.scanner(lark)
    found["range"] = compound.range_splitter(lark)
    found["key"] = compound.attr_splitter(lark)
    return found


_WRITTEN = _compound_patterns(_PLAIN._lark)
#: The same patterns written plainly: every repeat may give characters back.
_PLAINLY = {k: re.compile(p.pattern.replace("*+", "*")) for k, p in _WRITTEN.items()}


@settings(max_examples=300, deadline=None)
@given(st.one_of(_attrs(), _flat(), st.lists(_ATOMS | _SEPS | _AFTER | _KEYS).map("".join)))
def test_compound_patterns_match_as_written_plainly(text: str) -> None:
    """The compound patterns are written possessive (``compound._SEP``): each matches,
    from every offset, exactly what it matches with every repeat free to backtrack
    (groups included), on well-formed and broken attributes, lists and maps."""
    assert set(_WRITTEN) == {compound.LIST, compound.MAP, compound.ATTR, "scanner", "range", "key"}
    for pos in range(len(text) + 1):
        for name, pattern in _WRITTEN.items():
            fast, plain = pattern.match(text, pos), _PLAINLY[name].match(text, pos)
            assert (fast and fast.regs) == (plain and plain.regs), (name, pos)


def test_compound_tokens_refuse_a_grammar_they_do_not_cover() -> None:
    grammar = (ROOT / "compiler" / "exo.lark").read_text("utf-8")
    for old, new in (
        ("%ignore COMMENT", '%ignore COMMENT\n%ignore ";"'),
        ("/[A-Za-z_]", "/[a-z_]"),
        ('STRING: /"[^"', 'STRING: /"[^"\''),
        ('(map_entry _COMMA?)* "}"', '(map_entry _COMMA?)* "}" "!"'),
    ):
        changed = grammar.replace(old, new, 1)
        assert changed != grammar
        with pytest.raises(RuntimeError, match=r"compound\.py expects"):
            compound.extension(Lark(changed, parser="lalr", maybe_placeholders=False))


def test_compound_tokens_on_the_pure_python_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without lark-cython (or with ``EXO_PARSER=python``) the fast path is Lark's
    pure-Python parser on the same compound grammar: the same trees and errors."""
    import sys

    monkeypatch.setenv("EXO_PARSER", "python")
    pure = ExoParser(compound_from=0)
    assert not pure.compiled and pure._first("x") is pure._fast
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gen_workflows

    texts = [gen_workflows.to_exo(gen_workflows.generate(60, 3))]
    texts += [p.read_text("utf-8") for p in SOURCES if p.suffix == ".exo" and _utf8(p)]
    for text in texts:
        a, b = _PLAIN.parse_recovering(text, "f.exo"), pure.parse_recovering(text, "f.exo")
        assert shape(a.module) == shape(b.module)
        assert a.errors == b.errors


def _utf8(path: Path) -> bool:
    try:
        path.read_text("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_ONE_LINE_SEPS = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _one_line_attr(draw: Any) -> str:
    """``key = value`` on one line: a literal, or a flat list or map of literals."""
    key = draw(st.sampled_from(["a", "gpus", "x-y", '"k"', '"{p}"', "A100"]))
    atoms = st.lists(_ATOMS.filter(lambda a: a not in ("1..2", "[1]", "{}")), max_size=4)
    items = draw(atoms)
    sep = draw(_ONE_LINE_SEPS)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        value = items[0] if items else '"x"'
    elif kind == 3:  # a range: its bounds numbers or names, good or not
        bound = st.sampled_from(["1", "16", "-2", "n", "a.b", "true", "2h", "1__0", "1.5"])
        value = f"{draw(bound)}{sep}..{sep}{draw(bound)}"
    elif kind == 1:
        value = "[" + f",{sep}".join(items) + "]"
    else:
        keys = draw(st.lists(_ATOMS, min_size=len(items), max_size=len(items)))
        value = (
            "{" + f",{sep}".join(f"{k}:{sep}{v}" for k, v in zip(keys, items, strict=True)) + "}"
        )
    return f"{key}{sep}={sep}{value}"


@settings(max_examples=300, deadline=None)
@given(st.lists(_one_line_attr(), min_size=1, max_size=3), st.lists(st.integers(0, 9), min_size=4))
def test_repeated_attributes_replayed_give_the_same_nodes(
    attrs: list[str], indents: list[int]
) -> None:
    """An attribute met again is rebuilt from its recipe (``replay.py``): the same nodes,
    spans and errors as reading it afresh, at any line and column and in any file."""
    lines = [" " * (1 + n) + a for n in indents for a in attrs]
    text = "workflow w {\n" + "\n".join(lines) + "\n}\n"
    fast = ExoParser(compound_from=0)
    for file in ("f.exo", "g.exo"):  # each attribute 4+ times: replayed from its third
        a, b = _PLAIN.parse_recovering(text, file), fast.parse_recovering(text, file)
        assert shape(a.module) == shape(b.module)
        assert a.errors == b.errors


def test_replay_is_taken_for_a_clean_one_line_attribute_only() -> None:
    fast = ExoParser(compound_from=0)
    text = (
        'workflow w {\n  cmd = ["run", "{model}", "--n", 4, 2h, 16GiB, $5, true, x]\n'
        '  m = {"a": 1, b: "{c}", 3: 4}\n  n = 8\n  bad = 1__0\n'
        "  multi = [1,\n  2]\n  e = []\n}\n"
    )
    body = text.split("\n", 1)[1].rsplit("}", 1)[0]
    again = "workflow w {\n" + body + body + "  " + body.replace("\n  ", "\n     ") + "}\n"
    memos = treebuild.Memos()
    got = fast.parse_recovering(again, "f.exo", memos)  # the third body replays the recipes
    assert shape(got.module) == shape(_PLAIN.parse_recovering(again, "f.exo").module)
    recipes = set(memos.recipes)
    assert {"n = 8", 'm = {"a": 1, b: "{c}", 3: 4}'} <= recipes
    assert any(r.startswith("cmd = [") for r in recipes)
    assert not any(r.startswith(("bad", "multi", "e =")) for r in recipes)  # error, lines, empty
    assert [d.code for d in got.errors] == ["E009"] * 3  # reported at every place
