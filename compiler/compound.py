"""Compound tokens: a flat list, a flat map or a whole attribute lexed as one token on
the parser's fast path.

A 10,000-step workflow is 874k tokens, most of them inside flat lists and maps
(``command = ["python", "-m", ...]``, ``throughput { A100 = { 16: 2.3, 32: 3.8 } }``)
and in attributes (``gpus = 4``), and each token costs the lexer a match, the LALR
loop a shift and a reduction or two. Here a whole list or map whose items are single
literals (strings, numbers, amounts, names; keys as ``map_key`` allows) is one token,
``FLATLIST`` or ``FLATMAP``, and an attribute whose value is a single literal, a range
of two bounds (``replicas = 1..4``: numbers or names) or such a list or map (``key =
value``, the key a name or a string) is one token, ``FLATATTR``;
their actions build the same nodes, spans included, from the items they scan
(``TreeBuilder.flat_list``/``flat_map``/``flat_attr``).

The grammar stays ``exo.lark``: the terminals are added to ``value`` and ``_entry`` by
``%extend`` and their patterns are built from ``exo.lark``'s own terminals
(``STRING``, ``NUMLIT``, ``MONEY``, ``IDENT`` and the ignored white space and
comments), so a compound token matches exactly a sequence of ``exo.lark`` tokens
that ``list``, ``map`` or ``attr`` accepts. Each item's pattern can end only where the
plain lexer's token ends (no item can end just before white space, ``#``, ``,``, ``:``,
``]`` or ``}`` inside a longer token; an attribute's single literal is followed by
neither a character that would continue it nor a range's ``..``; a range's bounds end
where a number or name ends), so the items are the plain lexer's tokens. Anything else
(a nested list, a range in a list, a keyword, a syntax error)
does not match, and the plain tokens are lexed instead. Only the fast parser uses these
tokens: a file it cannot parse is parsed again on ``exo.lark`` alone, whose errors make
the diagnostics (``parser.py``).

The fast parser's braces take the white space after them too (``_braces``): ``exo.lark``'s
rules with braces are written again for it (``%override``), checked to be what they
are written from, so that a grammar change they do not follow is refused.
"""

from __future__ import annotations

import re
from typing import Any

#: The compound terminals: values (``value``) and attributes (``_entry``).
LIST, MAP, ATTR = "FLATLIST", "FLATMAP", "FLATATTR"
#: Above ``NUMLIT.2``: tried before ``[`` and ``{`` wherever a value may start.
PRIORITY = 3
#: What ``exo.lark`` ignores between tokens, as the separator below reads it.
_IGNORED = {"WS": "(?:[ \t\x0c\r\n])+", "COMMENT": "#[^\n]*"}
#: What separates two items, written for Python's regular expressions (``re``), which
#: runs these patterns once per compound token (most of the lexer's work on a large
#: file). Every piece of a compound token is followed by something it cannot continue
#: into (white space and comments by an item or a bracket, an item by white space or
#: ``,:=]}``, a string by anything, a name by a character that is not a name's), so
#: giving back characters of a piece never lets a match succeed that the longest piece
#: did not: the repeats are written possessive (``*+``: never backtracked into, which
#: ``re`` runs without saving a state for each character or item it takes). Every pattern
#: matches exactly what it matched written plainly
#: (``tests/test_treebuild.py::test_compound_patterns_match_as_written_plainly``).
#: White space and comments between items: white space, then any comments, each
#: followed by white space. A comment runs to the end of its line, as the lexer reads it
#: (never cut short, which would let an item be read inside it).
_WS = r"[ \t\f\r\n]*+"
_SEP = rf"{_WS}(?:#[^\n]*+(?=\n){_WS})*+"
#: White space after a compound attribute, part of its token (``exo.lark``'s ``WS``, as
#: many characters as it would take): its value never ends in white space, so the
#: attribute's own text is the token's without it (``TreeBuilder.flat_attr``).
TRAILING = r"[ \t\f\r\n]*"
WHITE = " \t\f\r\n"
#: A character that continues a name, and a name (``exo.lark``'s ``IDENT``).
_IDENT_CHAR = r"(?:[A-Za-z0-9_\-]|\.(?!\.))"
_IDENT = f"[A-Za-z_]{_IDENT_CHAR}*"
#: The same names, written for Python's regular expressions: runs of name characters
#: (one fast repeat of a character class) between single dots, where ``_IDENT``
#: repeats an alternative character by character (the engine's slow repeat). The same
#: strings; possessive, as above: the longest name only (a shorter one is followed by a
#: name's character, which nothing after a name in these patterns accepts).
_FAST_IDENT = r"[A-Za-z_][A-Za-z0-9_\-]*+(?:\.(?!\.)[A-Za-z0-9_\-]*+)*+"
#: ``exo.lark``'s ``STRING`` (as Lark gives it: its ``\n`` a newline), and the same
#: strings written possessive (a string reads its characters one way only: a backslash
#: starts an escape, a quote ends it).
_STRING = '"[^"\\\\\n]*(?:\\\\[^\n][^"\\\\\n]*)*"'
_FAST_STRING = r'"[^"\\\n]*+(?:\\[^\n][^"\\\n]*+)*+"'


def _patterns(lark: Any) -> dict[str, str]:
    """The regular expressions of ``exo.lark``'s terminals, checked against what this
    module assumes; a grammar change it does not cover is refused, never misparsed."""
    regexps = {t.name: t.pattern.to_regexp() for t in lark.terminals}
    ignored = {name: regexps.get(name) for name in lark.lexer_conf.ignore}
    if ignored != _IGNORED:
        raise RuntimeError(f"exo.lark ignores {ignored}, compound.py expects {_IGNORED}")
    if regexps.get("IDENT") != _IDENT:
        raise RuntimeError(
            f"exo.lark's IDENT is {regexps.get('IDENT')}, compound.py expects {_IDENT}"
        )
    if regexps.get("STRING") != _STRING:
        raise RuntimeError(
            f"exo.lark's STRING is {regexps.get('STRING')}, compound.py expects {_STRING}"
        )
    for name in ("NUMLIT", "MONEY"):
        if name not in regexps:
            raise RuntimeError(f"exo.lark has no terminal {name}")
    return regexps


def _keywords(lark: Any, ident: str) -> list[str]:
    """Keywords such as ``import`` that are also names: never taken as an item."""
    words = [t.pattern.value for t in lark.terminals if t.pattern.type == "str"]
    return sorted(w for w in words if re.fullmatch(ident, w))


def _keyword(lark: Any) -> str:
    """A keyword such as ``import`` as a whole word, or a pattern that never matches."""
    keywords = "|".join(re.escape(w) for w in _keywords(lark, _patterns(lark)["IDENT"]))
    return f"(?:{keywords})(?!{_IDENT_CHAR})" if keywords else "(?!)"


def _name(lark: Any, ident: str) -> str:
    """A name that is not a keyword."""
    return f"(?!{_keyword(lark)}){ident}"


def _items(lark: Any) -> tuple[str, str]:
    """Patterns of a list item (a value) and of a map key."""
    p = _patterns(lark)
    name = _name(lark, _FAST_IDENT)
    value = f"(?:{_FAST_STRING})|(?:{p['NUMLIT']})|(?:{p['MONEY']})|{name}"
    key = f"(?:{p['NUMLIT']})|{name}|(?:{_FAST_STRING})"
    return f"(?:{value})", f"(?:{key})"


def _bound(lark: Any) -> str:
    """Pattern of a range's bound (``exo.lark``'s ``_bound``: a number or a name, not a
    keyword), ending where the plain lexer's token ends."""
    p = _patterns(lark)
    return f"(?:(?:{p['NUMLIT']})|{_name(lark, _FAST_IDENT)})(?!{_IDENT_CHAR})"


def _attr_key(lark: Any) -> str:
    """Pattern of an attribute's key (``exo.lark``'s ``key``: a name, not a keyword, or
    a string)."""
    _patterns(lark)
    return f"(?:{_name(lark, _FAST_IDENT)}|(?:{_FAST_STRING}))"


def extension(lark: Any) -> str:
    """The grammar text added to ``exo.lark`` for the fast parser."""
    value, key = _items(lark)
    s = _SEP
    # The items as many as there are (possessive: the item after the last one taken
    # would start with a character that no item, comma or bracket starts with).
    flat_list = rf"\[{s}(?:{value}{s}(?:,{s}{value}{s})*+(?:,{s})?)?\]"
    flat_map = rf"\{{{s}(?:{key}{s}:{s}{value}{s}(?:,{s})?)*+\}}"
    # A single literal ends only where the plain lexer's token ends (never inside a
    # longer name or number, backtracked) and is not the low end of a range. After an
    # attribute's value the plain lexer reads ``import`` and ``param`` as keywords (its
    # state after a value is shared with ``param_decl``): such an attribute is left to it.
    end = rf"(?!{_IDENT_CHAR}|[.+$\"])"
    literal = rf"{value}{end}(?!{s}\.\.)"
    # A range of two bounds (``replicas = 1..4``), each ending where its token ends.
    bound = _bound(lark)
    bounds = rf"{bound}{s}\.\.{s}{bound}{end}"
    # The white space after the attribute is taken with it (``TRAILING``): the plain lexer
    # reads it as an ignored token of its own, a match of the whole state's alternation
    # (every terminal tried before ``WS``) for each line of a block.
    flat_attr = rf"{_attr_key(lark)}{s}={s}(?:{flat_list}|{flat_map}|{literal}|{bounds})" + (
        rf"(?!{s}{_keyword(lark)}){TRAILING}"
    )
    return (
        f"\n%extend value: {LIST} | {MAP}\n"
        f"{LIST}.{PRIORITY}: /{_slashed(flat_list)}/\n"
        f"{MAP}.{PRIORITY}: /{_slashed(flat_map)}/\n"
        f"%extend _entry: {ATTR}\n"
        f"{ATTR}.{PRIORITY}: /{_slashed(flat_attr)}/\n"
    ) + _braces(lark)


#: ``exo.lark``'s rules that hold braces, as Lark expands them (``LBRACE`` and ``RBRACE``
#: are its names for ``"{"`` and ``"}"``), and the same rules written again for the fast
#: parser, with braces that take the white space after them, as ``TRAILING`` does for an
#: attribute (the white space after a brace was a sixth of the tokens the lexer matched
#: in the generated 2,000-step workflow: 8,084 of 50,522). The rules keep their names and
#: expansions, so the tree builder's actions are the same.
_BRACED = {
    ("decl", ("IDENT", "IDENT", "LBRACE", "body", "RBRACE")),
    ("block", ("key", "LBRACE", "body", "RBRACE")),
    ("map", ("LBRACE", "__map_star_3", "RBRACE")),
    ("map", ("LBRACE", "RBRACE")),
}
_REBRACED = (
    "%override decl: IDENT IDENT LBRACE body RBRACE\n"
    "%override block: key LBRACE body RBRACE\n"
    "%override map: LBRACE (map_entry _COMMA?)* RBRACE\n"
)


def _braces(lark: Any) -> str:
    """The braces of the fast grammar; a change to ``exo.lark``'s rules with braces or to
    the braces themselves is refused, never misparsed."""
    rules = {(r.origin.name, tuple(s.name for s in r.expansion)) for r in lark.rules}
    braced = {r for r in rules if {"LBRACE", "RBRACE"} & set(r[1])}
    if braced != _BRACED:
        raise RuntimeError(
            f"exo.lark's rules with braces are {braced}, compound.py expects {_BRACED}"
        )
    braces = {
        t.name: t.pattern.to_regexp() for t in lark.terminals if t.name in ("LBRACE", "RBRACE")
    }
    if braces != {"LBRACE": r"\{", "RBRACE": r"\}"}:
        raise RuntimeError(f"exo.lark's braces are {braces}, compound.py expects {{ and }}")
    return f"{_REBRACED}LBRACE: /\\{{{_slashed(TRAILING)}/\nRBRACE: /\\}}{_slashed(TRAILING)}/\n"


def _slashed(pattern: str) -> str:
    """A pattern written between Lark's slashes."""
    return pattern.replace("/", "\\/").replace("\n", "\\n").replace("\t", "\\t")


def scanner(lark: Any) -> re.Pattern[str]:
    """Matches, from the end of one item of a compound token, what separates it from
    the next and that item (group 1); it does not match after the last item. Use it
    with ``match`` from each end in turn: a search could find an item in a comment."""
    value, _ = _items(lark)
    gap = r"[ \t\f\r\n,:\[\]{}]*+"  # written as ``_SEP`` is
    return re.compile(rf"{gap}(?:#[^\n]*+(?=\n){gap})*+({value})")


def range_splitter(lark: Any) -> re.Pattern[str]:
    """Matches a compound attribute's range value: its low bound (group 1), the dots
    (group 2, with what surrounds them) and its high bound (group 3)."""
    bound = _bound(lark)
    return re.compile(rf"({bound})({_SEP}\.\.{_SEP})({bound})")


def attr_splitter(lark: Any) -> re.Pattern[str]:
    """Matches the start of a compound attribute: its key (group 1) and what separates
    it from its value (the match ends where the value starts)."""
    return re.compile(rf"({_attr_key(lark)}){_SEP}={_SEP}")
