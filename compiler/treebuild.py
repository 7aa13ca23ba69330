"""Building the syntax tree while Lark parses: one action per grammar rule.

Lark's LALR parser calls a callback on every reduction, looked up by the rule.
Its generic callbacks (the ones an inline ``Transformer`` gets) filter the
children of each rule, build a ``Tree`` for every ``_inlined`` rule and ``*``
repetition and splice it into its parent again; for a 10,000-step file that is
about a third of the parse. Here each rule of ``exo.lark``, as Lark expands it
(``?value``, ``_item``, ``__body_star_1`` ...), has its own action that takes the
raw children (tokens included) and builds the syntax node directly; repetitions
are plain lists, extended in place.

The grammar stays the one definition of the language: Lark builds the tables
and drives the parse, and the actions are keyed by each rule's exact expansion,
so a grammar change that the actions do not cover is refused when the parser
is built (``tests/test_treebuild.py`` checks it), never silently misparsed.

The parse makes one or more syntax nodes and spans a token (874k tokens for a
10,000-step workflow), so the hot paths avoid Python work per token where the value
is the same: pass-through rules reduce through C callables, a string already seen
reuses its decoding, a one-line compound attribute met before is rebuilt from a
recipe (``replay.py``; both memos are the caller's, :class:`Memos`), spans are filled
as unfrozen drafts that then become spans, rather than through a frozen dataclass's
``__init__`` (``nodebuild.py``), and a compound attribute takes the white space after
it in its token (``compound.TRAILING``).

Tokens are Lark's (a ``str`` subclass) or, with the optional ``lark-cython``,
its own token class (not a ``str``): the actions read only ``.value``,
``.type`` and the position attributes, which both have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from exo.compiler import compound, nodebuild, replay
from exo.compiler.diagnostics import Diagnostic, Span
from exo.compiler.literals import LiteralError, classify_money, classify_number, decode_string
from exo.compiler.syntax import (
    Attr,
    BadLiteral,
    Block,
    Decl,
    Import,
    ListV,
    MapEntry,
    MapV,
    Node,
    Num,
    Param,
    RangeV,
    Ref,
    Str,
    Value,
)

T = TypeVar("T")
Action = Callable[[list[Any]], Any]
_Layout = replay.Layout
_WHITE = compound.WHITE
#: Distinct strings whose decoding a parser keeps.
STRING_MEMO_MAX = 4096
#: Distinct one-line compound attributes a parser remembers having met, and those
#: (met twice) it keeps a recipe of.
SEEN_MAX = 1 << 16
RECIPES_MAX = 8192
#: (rule name, names of the symbols it expands to), as Lark lists its rules.
RuleKey = tuple[str, tuple[str, ...]]


# The nodes a file makes most of (one or more a token), built through their slots
# (``nodebuild``): strings, names, attributes, placeholders, and the spans of all of them.
_builder = nodebuild.builder
_span = nodebuild.span
_str = nodebuild.string
_ref = nodebuild.ref
_attr = nodebuild.attr
_placeholder = nodebuild.placeholder
_bool = nodebuild.boolean
_list = nodebuild.list_value
_map = nodebuild.map_value
_entry = nodebuild.map_entry


def span_of(file: str, tok: Any) -> Span:
    return _span(file, tok.line, tok.column, tok.end_line, tok.end_column)


def _join(a: Span, b: Span) -> Span:
    return _span(a.file, a.line, a.column, b.end_line, b.end_column)


class Memos:
    """What a tree builder remembers of the text it read, to read it again faster.

    Its entries are allocated among the syntax tree's nodes, so they should be freed
    with the tree, not before it: freed first, they leave holes in the tree's memory
    pools that longer-lived objects (the IR) fill, and the pools cannot empty once
    the tree is freed. The caller that keeps the trees keeps their memos (a loaded
    program, ``modules.LoadedProgram``, for all of its files); a parse given none
    gets its own, dropped when it ends. (A plain class: a dataclass costs every
    ``exoc`` start a few million instructions to build.)"""

    __slots__ = ("__weakref__", "recipes", "seen", "strings")

    def __init__(self) -> None:
        #: Strings already decoded, by their raw text: a workflow repeats most of its
        #: strings (``"python"``, ``"{model}"``, ``"--in"``) many times.
        self.strings: dict[str, _Layout] = {}
        #: Compound attributes met once, and recipes of those met twice (``replay.py``).
        self.seen: set[str] = set()
        self.recipes: dict[str, replay.Recipe] = {}


class TreeBuilder:
    """The actions for one parser; ``file`` and ``errors`` are reset for every attempt,
    the memos are the parse's own (:meth:`remember`, :meth:`forget`)."""

    def __init__(self) -> None:
        self.file = "<input>"
        #: Bad literals: collected, so that every one in a file is reported.
        self.errors: list[Diagnostic] = []
        #: The current parse's :class:`Memos`, read on the hot paths without a lookup.
        self._strings: dict[str, _Layout] = {}
        self._seen: set[str] = set()
        self._recipes: dict[str, replay.Recipe] = {}
        #: Read the items of a compound token (``compound.scanner``) and the key of a
        #: compound attribute (``compound.attr_splitter``); set by ``install``.
        self._scan: Callable[..., Any] = _no_compounds
        self._split: Callable[..., Any] = _no_compounds
        #: Read the bounds of a compound attribute's range (``compound.range_splitter``).
        self._bounds: Callable[..., Any] = _no_compounds
        #: The nesting check of a compound token that opens and closes a bracket (the
        #: parser's; it raises when the token is nested too deep).
        self.bracketed: Callable[[Any], Any] = _no_check

    def remember(self, memos: Memos) -> None:
        """Read the next parse with ``memos`` (and add to them)."""
        self._strings, self._seen, self._recipes = memos.strings, memos.seen, memos.recipes

    def forget(self) -> None:
        """Let go of the last parse: its memos and its errors. The memos pay within a
        parse (a file repeats its strings and attributes); kept on the shared parser
        they would grow with every file a process parses, and outlive the trees they
        were allocated among (:class:`Memos`)."""
        self.file = "<input>"
        self.errors = []
        self._strings = {}
        self._seen = set()
        self._recipes = {}

    # --- terminals (called by the parser as it shifts each token) ------------------------

    def string(self, tok: Any) -> Str:
        return self._string(tok.value, tok.line, tok.column, tok.end_column)

    def _string(self, raw: str, line: int, column: int, end_column: int) -> Str:
        """A string token's node (strings, like every literal, lie on one line)."""
        span = _span(self.file, line, column, line, end_column)
        layout = self._strings.get(raw)
        if layout is None:
            try:
                node = decode_string(raw, span)
            except LiteralError as e:
                self.errors.append(e.diagnostic)
                return Str(span, (raw[1:-1],))
            if len(self._strings) < STRING_MEMO_MAX:
                self._strings[raw] = replay.layout(node)
            return node
        parts, holes = layout
        if holes is None:
            return _str(span, parts)
        file = self.file
        return _str(
            span,
            tuple(
                [
                    _placeholder(h[0], _span(file, line, column + h[1], line, column + h[2]))
                    if h is not None
                    else part
                    for part, h in zip(parts, holes, strict=True)
                ]
            ),
        )

    def number(self, tok: Any) -> Value:
        return self._number(tok.value, tok.line, tok.column, tok.end_column)

    def _number(self, text: str, line: int, column: int, end_column: int) -> Value:
        span = _span(self.file, line, column, line, end_column)
        try:
            return classify_number(text, span)
        except LiteralError as e:
            return self._bad(e, span, text)

    def money(self, tok: Any) -> Value:
        return self._money(tok.value, tok.line, tok.column, tok.end_column)

    def _money(self, text: str, line: int, column: int, end_column: int) -> Value:
        span = _span(self.file, line, column, line, end_column)
        try:
            return classify_money(text, span)
        except LiteralError as e:
            return self._bad(e, span, text)

    def _bad(self, e: LiteralError, span: Span, text: str) -> Value:
        """A stand-in for a literal that cannot be read, its error collected."""
        self.errors.append(e.diagnostic)
        return BadLiteral(span, 1, text)

    def terminal_actions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "STRING": self.string,
            "NUMLIT": self.number,
            "MONEY": self.money,
            compound.LIST: self.flat_list,
            compound.MAP: self.flat_map,
            compound.ATTR: self.flat_attr,
        }

    # --- values and entries ------------------------------------------------------------------

    def ref(self, c: list[Any]) -> Value:
        tok = c[0]
        return self._ref(tok.value, tok.line, tok.column, tok.end_column)

    def _ref(self, name: str, line: int, column: int, end_column: int) -> Value:
        span = _span(self.file, line, column, line, end_column)
        if name == "true" or name == "false":
            return _bool(span, name == "true")
        return _ref(span, name)

    def list_of(self, items: Sequence[Value]) -> ListV:
        span = _join(items[0].span, items[-1].span) if items else _span(self.file, 0, 0, 0, 0)
        return _list(span, tuple(items))

    def map_of(self, entries: Sequence[MapEntry]) -> MapV:
        span = _join(entries[0].span, entries[-1].span) if entries else _span(self.file, 0, 0, 0, 0)
        return _map(span, tuple(entries))

    def list_items(self, c: list[Any]) -> ListV:
        """``[value, more..., ]``: the first value and the repetition of the others."""
        return self.list_of([c[1], *c[2]])

    def map_entry(self, c: list[Any]) -> MapEntry:
        key, value = c[0], c[2]
        if not isinstance(key, Node):  # a name token; numbers and strings are nodes already
            key = _ref(span_of(self.file, key), key.value)
        return _entry(_join(key.span, value.span), key, value)

    # --- compound tokens (``compound.py``): a flat list or map as one token -------------

    def _items(self, text: str, line: int, column: int) -> list[tuple[str, int, int]]:
        """Each item of a compound list or map written at ``line``, ``column``: its text,
        line and column (1-based)."""
        scan = self._scan
        out: list[tuple[str, int, int]] = []
        flat = "\n" not in text
        m = scan(text)
        while m is not None:
            start = m.start(1)
            newline = -1 if flat else text.rfind("\n", 0, start)
            if newline < 0:
                out.append((m[1], line, column + start))
            else:
                out.append((m[1], line + text.count("\n", 0, start), start - newline))
            m = scan(text, m.end())
        return out

    def _value(self, text: str, line: int, column: int) -> Value:
        """An item's node, as ``value`` builds it from the item's own token."""
        end = column + len(text)
        first = text[0]
        if first == '"':
            return self._string(text, line, column, end)
        if first == "$":
            return self._money(text, line, column, end)
        if first == "-" or first.isdigit():
            return self._number(text, line, column, end)
        return self._ref(text, line, column, end)

    def flat_list(self, tok: Any) -> ListV:
        return self._flat_list(tok.value, tok.line, tok.column)

    def _flat_list(self, text: str, line: int, column: int) -> ListV:
        value = self._value
        return self.list_of([value(*item) for item in self._items(text, line, column)])

    def flat_map(self, tok: Any) -> MapV:
        return self._flat_map(tok.value, tok.line, tok.column)

    def _flat_map(self, text: str, line: int, column: int) -> MapV:
        items = self._items(text, line, column)
        entries: list[MapEntry] = []
        for i in range(0, len(items), 2):
            text, line, column = items[i]
            if text[0] == '"' or text[0] == "-" or text[0].isdigit():
                key: Value = self._value(text, line, column)
            else:  # a name as a key is a name, even ``true`` (``map_entry``)
                key = _ref(_span(self.file, line, column, line, column + len(text)), text)
            value = self._value(*items[i + 1])
            entries.append(_entry(_join(key.span, value.span), key, value))
        return self.map_of(entries)

    def flat_attr(self, tok: Any) -> Attr:
        """``key = value`` as one token: the ``Attr`` that ``attr`` builds; a text met
        before on one line is rebuilt from its recipe (``replay.py``)."""
        text: str = tok.value
        if text[-1] <= " ":  # the white space after it (``compound.TRAILING``)
            text = text.rstrip(_WHITE)
        if text[-1] in "]}":  # a list or a map: a bracket opened (no literal ends so)
            self.bracketed(tok)
        made = self._recipes.get(text)
        if made is not None:
            return replay.replay(made, self.file, tok.line, tok.column)
        errors = len(self.errors)
        node = self._flat_attr(text, tok.line, tok.column)
        if "\n" in text or len(self.errors) != errors:
            return node
        if text not in self._seen:
            if len(self._seen) < SEEN_MAX:
                self._seen.add(text)
        elif len(self._recipes) < RECIPES_MAX:
            made = replay.recipe(node, tok.column)
            if made is not None:
                self._recipes[text] = made
        return node

    def _flat_attr(self, text: str, line: int, column: int) -> Attr:
        m = self._split(text)
        raw, at = m[1], m.end()
        if raw[0] == '"':
            k = self._string(raw, line, column, column + len(raw))
            key, ks = k.text, k.span
        else:
            key, ks = raw, _span(self.file, line, column, line, column + len(raw))
        newline = text.rfind("\n", 0, at)
        if newline >= 0:
            line, column = line + text.count("\n", 0, at), at - newline
        else:
            column += at
        first = text[at]
        if first == "[":
            value: Value = self._flat_list(text[at:], line, column)
        elif first == "{":
            value = self._flat_map(text[at:], line, column)
        elif first != '"' and text.find("..", at) >= 0:  # no other literal holds ``..``
            value = self._flat_range(text[at:], line, column)
        else:
            value = self._value(text[at:], line, column)
        vs = value.span
        return _attr(_span(ks.file, ks.line, ks.column, vs.end_line, vs.end_column), key, ks, value)

    def _flat_range(self, text: str, line: int, column: int) -> RangeV:
        """A compound attribute's range value (``low..high``) written at ``line``,
        ``column``: the node ``range`` builds from the plain tokens."""
        m = self._bounds(text)
        low = self._bound(m[1], line, column)
        start = m.start(3)
        newline = text.rfind("\n", 0, start)
        if newline >= 0:
            line, column = line + text.count("\n", 0, start), start - newline
        else:
            column += start
        return self._range(low, self._bound(m[3], line, column))

    def _bound(self, text: str, line: int, column: int) -> Value:
        """A range's bound as ``range`` receives it: a number's node, or a name's (a
        name, even ``true``)."""
        end = column + len(text)
        if text[0] == "-" or text[0].isdigit():
            return self._number(text, line, column, end)
        return _ref(_span(self.file, line, column, line, end), text)

    def range(self, c: list[Any]) -> RangeV:
        low, high = c[0], c[2]
        if not isinstance(low, Node):
            low = Ref(span_of(self.file, low), low.value)
        if not isinstance(high, Node):
            high = Ref(span_of(self.file, high), high.value)
        return self._range(low, high)

    def _range(self, low: Value, high: Value) -> RangeV:
        for x in (low, high):
            if not isinstance(x, Num | Ref):
                raise LiteralError(
                    Diagnostic("E201", "a range bound must be a whole number such as 1..8", x.span)
                )
        assert isinstance(low, Num | Ref) and isinstance(high, Num | Ref)
        return RangeV(_join(low.span, high.span), low, high)

    def _key(self, k: Any) -> tuple[str, Span]:
        if isinstance(k, Str):
            return k.text, k.span
        return k.value, _span(self.file, k.line, k.column, k.end_line, k.end_column)

    def attr(self, c: list[Any]) -> Attr:
        k, value = c[0], c[2]
        if isinstance(k, Str):
            key, ks = k.text, k.span
        else:
            key = k.value
            ks = _span(self.file, k.line, k.column, k.end_line, k.end_column)
        vs = value.span
        return _attr(_span(ks.file, ks.line, ks.column, vs.end_line, vs.end_column), key, ks, value)

    def block(self, c: list[Any]) -> Block:
        key, key_span = self._key(c[0])
        return nodebuild.block(key_span, key, key_span, c[2])

    # --- declarations --------------------------------------------------------------------

    def import_decl(self, c: list[Any]) -> Import:
        path: Str = c[1]
        if len(c) == 2:
            return Import(path.span, path, None, None)
        alias = c[3]
        return Import(path.span, path, alias.value, span_of(self.file, alias))

    def param_decl(self, c: list[Any]) -> Param:
        name_span = span_of(self.file, c[1])
        return Param(_join(name_span, c[3].span), c[1].value, name_span, c[3])

    def decl(self, c: list[Any]) -> Decl:
        kind_span = span_of(self.file, c[0])
        name_span = span_of(self.file, c[1])
        return nodebuild.decl(kind_span, c[0].value, kind_span, c[1].value, name_span, c[3])

    # --- the table ---------------------------------------------------------------------------

    def rule_actions(self) -> dict[RuleKey, Action]:
        """The action of every rule of ``exo.lark``, by its expansion (children raw)."""
        lst, mp = self.list_of, self.map_of
        return {
            ("start", ("__start_star_0",)): _tuple_of_first,
            ("start", ()): _empty,
            ("_item", ("import_decl",)): _first,
            ("_item", ("param_decl",)): _first,
            ("_item", ("decl",)): _first,
            ("import_decl", ("IMPORT", "STRING", "AS", "IDENT")): self.import_decl,
            ("import_decl", ("IMPORT", "STRING")): self.import_decl,
            ("param_decl", ("PARAM", "IDENT", "EQUAL", "value")): self.param_decl,
            ("decl", ("IDENT", "IDENT", "LBRACE", "body", "RBRACE")): self.decl,
            ("body", ("__body_star_1",)): _tuple_of_first,
            ("body", ()): _empty,
            ("_entry", ("attr",)): _first,
            ("_entry", ("block",)): _first,
            ("_entry", (compound.ATTR,)): _first,  # the fast parser's compound attribute
            ("attr", ("key", "EQUAL", "value")): self.attr,
            ("block", ("key", "LBRACE", "body", "RBRACE")): self.block,
            ("key", ("IDENT",)): _first,
            ("key", ("STRING",)): _first,
            ("value", ("STRING",)): _first,
            ("value", ("NUMLIT",)): _first,
            ("value", ("MONEY",)): _first,
            ("value", ("IDENT",)): self.ref,
            ("value", ("list",)): _first,
            ("value", ("map",)): _first,
            ("value", ("range",)): _first,
            ("value", (compound.LIST,)): _first,  # the fast parser's compound tokens
            ("value", (compound.MAP,)): _first,
            ("range", ("_bound", "__ANON_0", "_bound")): self.range,
            ("_bound", ("NUMLIT",)): _first,
            ("_bound", ("IDENT",)): _first,
            ("list", ("LSQB", "value", "__list_star_2", "_COMMA", "RSQB")): self.list_items,
            ("list", ("LSQB", "value", "__list_star_2", "RSQB")): self.list_items,
            ("list", ("LSQB", "value", "_COMMA", "RSQB")): lambda c: lst([c[1]]),
            ("list", ("LSQB", "value", "RSQB")): lambda c: lst([c[1]]),
            ("list", ("LSQB", "RSQB")): lambda c: lst([]),
            ("map", ("LBRACE", "__map_star_3", "RBRACE")): lambda c: mp(c[1]),
            ("map", ("LBRACE", "RBRACE")): lambda c: mp([]),
            ("map_entry", ("map_key", "COLON", "value")): self.map_entry,
            ("map_key", ("NUMLIT",)): _first,
            ("map_key", ("IDENT",)): _first,
            ("map_key", ("STRING",)): _first,
            # Repetitions: a list, started by the first item and extended in place.
            ("__start_star_0", ("_item",)): _new_list,
            ("__start_star_0", ("__start_star_0", "_item")): _append_second,
            ("__body_star_1", ("_entry", "_COMMA")): _new_list_of_first,
            ("__body_star_1", ("_entry",)): _new_list,
            ("__body_star_1", ("__body_star_1", "_entry", "_COMMA")): _append_second,
            ("__body_star_1", ("__body_star_1", "_entry")): _append_second,
            ("__list_star_2", ("_COMMA", "value")): _new_list_of_second,
            ("__list_star_2", ("__list_star_2", "_COMMA", "value")): _append_third,
            ("__map_star_3", ("map_entry", "_COMMA")): _new_list_of_first,
            ("__map_star_3", ("map_entry",)): _new_list,
            ("__map_star_3", ("__map_star_3", "map_entry", "_COMMA")): _append_second,
            ("__map_star_3", ("__map_star_3", "map_entry")): _append_second,
        }


# The parser hands every action a fresh list of the rule's children, so the most
# frequent actions can be C callables (no Python frame per reduction): the first
# child, an empty tuple, a copy of the one-child list, the first child alone.
_first: Action = itemgetter(0)
_empty: Action = tuple
_new_list: Action = list
_new_list_of_first: Action = itemgetter(slice(0, 1))
_new_list_of_second: Action = itemgetter(slice(1, 2))


def _no_check(tok: Any) -> Any:
    return tok


def _no_compounds(text: str, pos: int = 0) -> Any:
    raise RuntimeError("a compound token from a parser without compound tokens")


def _tuple_of_first(c: list[Any]) -> tuple[Any, ...]:
    return tuple(c[0])


def _append_second(c: list[Any]) -> list[Any]:
    items: list[Any] = c[0]
    items.append(c[1])
    return items


def _append_third(c: list[Any]) -> list[Any]:
    items: list[Any] = c[0]
    items.append(c[2])
    return items


class _Reduction:
    """What the LALR loop reads of a rule (``.origin``, ``.expansion``), hashed and
    compared by identity: Lark's ``Rule`` hashes and compares in Python, on every
    reduction (a dictionary lookup and an ``assert``)."""

    __slots__ = ("expansion", "origin")

    def __init__(self, rule: Any) -> None:
        self.origin = rule.origin
        self.expansion = rule.expansion


def install(lark: Any, builder: TreeBuilder) -> None:
    """Replace the callbacks of a Lark LALR parser (built without a transformer) with
    ``builder``'s actions. Raises ``RuntimeError`` when a rule of the grammar has no
    action, i.e. when ``exo.lark`` changed without this table."""
    actions = builder.rule_actions()
    callbacks: dict[Any, Any] = lark._callbacks  # the dictionary the parser reads
    rules = [r for r in callbacks if not isinstance(r, str)]
    wanted = {(r.origin.name, tuple(s.name for s in r.expansion)): r for r in rules}
    missing = sorted(set(wanted) - set(actions))
    if missing:
        raise RuntimeError(f"exo.lark rules without a syntax-tree action: {missing}")
    callbacks.clear()
    callbacks.update(builder.terminal_actions())
    if any(t.name == compound.LIST for t in lark.terminals):
        builder._scan = compound.scanner(lark).match
        builder._split = compound.attr_splitter(lark).match
        builder._bounds = compound.range_splitter(lark).match
    reductions = {id(r): _Reduction(r) for r in rules}
    for key, rule in wanted.items():
        callbacks[reductions[id(rule)]] = actions[key]
    # The parse table refers to the rules it reduces by: point it at the reductions.
    from lark.parsers.lalr_analysis import Reduce

    for row in lark.parser.parser._parse_table.states.values():
        for symbol, (action, arg) in row.items():
            if action is Reduce:
                row[symbol] = (action, reductions[id(arg)])
