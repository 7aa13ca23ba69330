"""Parsing: ``.exo`` text → :class:`exo.compiler.syntax.Module`, or diagnostics.

The Lark grammar (``exo.lark``, LALR) builds syntax nodes directly
through one action per rule (``treebuild.py``): no intermediate parse tree,
spans taken from the tokens. Lark errors become diagnostics that say what was
expected in the user's terms; nesting depth is bounded in the lexer so that
absurd input gets a diagnostic instead of exhausting the stack.

A file of :data:`COMPOUND_MIN_CHARS` or more is parsed first by a fast parser:
``exo.lark`` with compound tokens (``compound.py``: a flat list, map or attribute as one token,
the same nodes built), a smaller one on ``exo.lark`` alone, both on the optional
``lark-cython`` (the Lark project's compiled LALR parser and lexer,
``pip install 'exoc[fast]'``) where it is installed (``EXO_PARSER=python`` turns it
off). A file the first parser cannot parse is parsed again on ``exo.lark`` alone with
Lark's pure-Python parser, whose errors make the diagnostics, so that they are the
same with or without either.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from lark import Lark, Token
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from exo.compiler import compound, treebuild
from exo.compiler.diagnostics import CompileError, Diagnostic, Span, sort_diagnostics
from exo.compiler.literals import LiteralError
from exo.compiler.packagedata import package_files
from exo.compiler.plancache import user_cache_folder
from exo.compiler.records import record
from exo.compiler.recovery import blank, declaration_around, offset_of
from exo.compiler.syntax import Item, Module, Param, Value

#: Deepest nesting of ``{`` and ``[`` accepted.
MAX_DEPTH = 32
#: Largest source file accepted (bytes).
MAX_FILE_BYTES = 16 * 2**20
#: Files shorter than this (characters) are parsed without compound tokens: compiling
#: their patterns costs a small file more than they save (about 85 kB, 170 generated
#: steps, is where they break even: docs/benchmarks.md).
COMPOUND_MIN_CHARS = 96 * 1024
#: Syntax errors reported per file; parsing stops after this many.
MAX_SYNTAX_ERRORS = 25


@record
class Parsed:
    """A parsed file and what was wrong in it."""

    #: The declarations that parsed (those with a syntax error are left out).
    module: Module
    #: Syntax errors (E003-E006, E008), one per declaration at most.
    syntax_errors: tuple[Diagnostic, ...]
    #: Bad literals (E007, E009-E011): ``module`` holds a stand-in value for each.
    literal_errors: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return self.syntax_errors + self.literal_errors


class _TooDeep(Exception):
    def __init__(self, token: Token) -> None:
        super().__init__("too deep")
        self.token = token


def _span(file: str, tok: Token) -> Span:
    assert tok.line is not None and tok.column is not None
    assert tok.end_line is not None and tok.end_column is not None
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


@dataclass(eq=False)
class _Depth:
    """How deeply the blocks being parsed are nested."""

    depth: int = 0

    def open(self, tok: Token) -> Token:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep(tok)
        return tok

    def close(self, tok: Token) -> Token:
        self.depth -= 1
        return tok

    def inner(self, tok: Token) -> Token:
        """A compound token (``compound.py``): a bracket opened and closed."""
        if self.depth >= MAX_DEPTH:
            raise _TooDeep(tok)
        return tok


def _table_cache(grammar: str, options: str = "") -> str | bool:
    """Where Lark keeps the analysed LALR tables between runs (the user cache folder),
    or False when it cannot be created. Lark checks the grammar, options and versions
    hash stored in the file and rebuilds on any mismatch; this saves ~0.2 s per run.
    ``options`` (the Lark options that differ between the parsers built, such as the
    lexer or strict mode) is part of the name, so that no two parsers share a file and
    rebuild it in turn."""
    try:
        folder = user_cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return False
    digest = hashlib.sha256(f"{grammar}\0{options}".encode()).hexdigest()[:16]
    return str(folder / f"lark-{digest}-py{sys.version_info.major}{sys.version_info.minor}.pickle")


def _compiled_lark() -> dict[str, Any] | None:
    """Lark's options for the optional compiled parser, or None where it is not installed
    or turned off (``EXO_PARSER=python``)."""
    if os.environ.get("EXO_PARSER", "").lower() == "python":
        return None
    try:
        import lark_cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    return {"_plugins": lark_cython.plugins}


class ExoParser:
    """A reusable parser (building the LALR tables takes a moment; parsing is cheap)."""

    def __init__(
        self, compiled: bool = True, compound_from: int = COMPOUND_MIN_CHARS, strict: bool = False
    ) -> None:
        """``compiled=False``: ``exo.lark`` on Lark's pure-Python parser alone (the
        reference). ``compound_from``: the size from which compound tokens are used.
        ``strict``: build every parser in Lark's strict mode, which refuses a grammar
        with a shift/reduce conflict or two terminals that can match the same text
        (it needs ``interegular``). The grammar is fixed, so the tests build it strict
        (``tests/test_treebuild.py``) and ``exoc`` does not pay for the check."""
        grammar = package_files("exo.compiler").joinpath("exo.lark").read_text("utf-8")
        self._builder = treebuild.TreeBuilder()
        self._depth = _Depth()
        self._builder.bracketed = self._depth.inner
        self._grammar = grammar
        self._strict = strict
        self._plugins = _compiled_lark() if compiled else None
        self._use_fast = compiled
        self._compound_from = compound_from
        #: ``exo.lark`` alone, tried first on a file under ``compound_from`` (on lark-cython
        #: where installed), with Lark's basic lexer: one scanner for the whole file where
        #: the contextual lexer compiles one per parser state on first use (about 16
        #: regular expressions on a small file, most of a first parse). Where it parses a
        #: file it gives the contextual lexer's tokens: it takes the terminal the
        #: contextual lexer would, unless that one is not acceptable where it stands, and
        #: then the parse fails and ``_lark`` (contextual) parses the file again.
        self._small = self._build(grammar, self._plugins or {}, lexer="basic") if compiled else None

    @cached_property
    def _lark(self) -> Lark:
        """``exo.lark`` alone on Lark's pure-Python parser and contextual lexer: it parses
        a file no first parser could (a file with a syntax error, a keyword used as a
        name) and its errors make the diagnostics. Built when first needed: a file the
        first parser reads never needs it."""
        return self._build(self._grammar, {})

    @cached_property
    def _fast(self) -> Lark:
        """The parser tried first on a large file: ``exo.lark`` with compound tokens,
        compiled where lark-cython is installed. ``_lark`` (pure Python, ``exo.lark``
        alone) parses any file a first parser fails on and makes the diagnostics."""
        return self._build(self._grammar + compound.extension(self._lark), self._plugins or {})

    def _first(self, text: str) -> Lark | None:
        """The parser to try first on ``text``, or None for ``_lark`` alone."""
        if not self._use_fast:
            return None
        return self._fast if len(text) >= self._compound_from else self._small

    def _build(self, grammar: str, extra: dict[str, Any], lexer: str = "contextual") -> Lark:
        callbacks = {
            "LBRACE": self._depth.open,
            "LSQB": self._depth.open,
            "RBRACE": self._depth.close,
            "RSQB": self._depth.close,
            compound.LIST: self._depth.inner,
            compound.MAP: self._depth.inner,
        }
        # A compound attribute is checked by its action, only when its value is a list or
        # a map (``TreeBuilder.flat_attr``): most are not, and a lexer callback is a call
        # per token.
        lark = Lark(
            grammar,
            parser="lalr",
            lexer=lexer,
            strict=self._strict,
            propagate_positions=False,
            maybe_placeholders=False,
            lexer_callbacks=callbacks,
            cache=_table_cache(grammar, f"lexer={lexer} strict={self._strict}"),
            **extra,
        )
        treebuild.install(lark, self._builder)
        return lark

    @property
    def compiled(self) -> bool:
        """Whether the compiled parser (lark-cython) is in use."""
        return self._plugins is not None

    @cached_property
    def _plain(self) -> Lark:
        """A token-level parser, only needed to explain an unexpected end of file."""
        return Lark(self._grammar, parser="lalr", lexer="basic", maybe_placeholders=False)

    def parse(self, text: str, file: str) -> Module:
        """Parse one file's text; raises CompileError with every diagnostic."""
        parsed = self.parse_recovering(text, file)
        if parsed.errors:
            raise CompileError(sort_diagnostics(parsed.errors))
        return parsed.module

    def parse_recovering(
        self, text: str, file: str, memos: treebuild.Memos | None = None
    ) -> Parsed:
        """Parse one file, reporting every syntax error: after each, the declaration it
        is in is blanked out and the file parsed again (``recovery.py``). ``memos``:
        what the tree builder remembers while it reads (``treebuild.Memos``), kept by
        the caller with the trees; by default the parse's own. The parser holds them
        only while it parses, however the parse ends."""
        syntax: list[Diagnostic] = []
        literal: list[Diagnostic] = []
        current = text
        self._builder.remember(memos if memos is not None else treebuild.Memos())
        try:
            while True:
                items, failure = self._attempt(current, file)
                literal.extend(self._builder.errors)
                if failure is None:
                    break
                diagnostic, (start, end) = failure
                syntax.append(diagnostic)
                if len(syntax) >= MAX_SYNTAX_ERRORS:
                    break
                current = blank(current, start, end)
        finally:
            self._builder.forget()
        return Parsed(
            Module(Span(file, 1, 1, 1, 1), file, items),
            tuple(syntax),
            tuple(sort_diagnostics(literal)),
        )

    def _attempt(
        self, text: str, file: str
    ) -> tuple[tuple[Item, ...], tuple[Diagnostic, tuple[int, int]] | None]:
        """One parse: the items, or the first syntax error and the text to skip."""
        first = self._first(text)
        if first is not None:
            self._builder.file = file
            self._builder.errors = []
            self._depth.depth = 0
            try:
                fast = first.parse(text)
            except Exception:  # parsed again below: Lark's own errors make the diagnostics
                pass
            else:
                assert isinstance(fast, tuple)  # the action of ``start`` returns a tuple
                return fast, None
        self._builder.file = file
        self._builder.errors = []
        self._depth.depth = 0
        try:
            items = self._lark.parse(text)
        except _TooDeep as e:
            diagnostic = Diagnostic(
                "E008",
                f"nesting is deeper than {MAX_DEPTH} levels",
                _span(file, e.token),
                ("to fix: flatten the structure; no exo attribute needs this depth",),
            )
            return (), (diagnostic, declaration_around(text, e.token.start_pos or 0))
        except (VisitError, LiteralError) as e:
            orig = e.orig_exc if isinstance(e, VisitError) else e
            if not isinstance(orig, LiteralError):
                raise
            span = orig.diagnostic.span
            pos = offset_of(text, span.line, span.column) if span else 0
            return (), (orig.diagnostic, declaration_around(text, pos))
        except UnexpectedInput as e:
            return (), self._syntax_failure(e, text, file)
        assert isinstance(items, tuple)  # the action of ``start`` returns a tuple
        return items, None

    # --- syntax errors ------------------------------------------------------------------

    def _syntax_failure(
        self, e: UnexpectedInput, text: str, file: str
    ) -> tuple[Diagnostic, tuple[int, int]]:
        """The diagnostic for a Lark error, and the part of the text to skip after it."""
        if isinstance(e, UnexpectedCharacters):
            pos = e.pos_in_stream or 0
            return self._character_diagnostic(e, text, file), declaration_around(text, pos)
        tok = e.token if isinstance(e, UnexpectedToken) else None
        if tok is None or tok.type == "$END":
            diagnostic, opener = self._unclosed(text, file, len(text), "unexpected end of file")
            start = declaration_around(text, opener if opener is not None else len(text))[0]
            return diagnostic, (start, len(text))
        pos = tok.start_pos or 0
        head = declaration_around(text, pos)[0]
        if head > 0 and "\n" not in text[head:pos]:
            # The error is in the first line of `step b {`: if a block is still open
            # there, that block is not closed, and `step b` is fine.
            line = text.count("\n", 0, head) + 1
            reason = f"the next declaration starts at line {line}"
            diagnostic, opener = self._unclosed(text, file, head, reason)
            if opener is not None:
                return diagnostic, (declaration_around(text, opener)[0], head)
        expected = set(e.expected) if isinstance(e, UnexpectedToken) else set()
        diagnostic = Diagnostic(
            "E003",
            f"syntax error: unexpected {_describe_token(tok)} {_expectation(expected)}",
            _span(file, tok),
            _token_help(tok, expected),
        )
        return diagnostic, declaration_around(text, pos)

    def _character_diagnostic(self, e: UnexpectedCharacters, text: str, file: str) -> Diagnostic:
        line = text.splitlines()[e.line - 1] if e.line - 1 < len(text.splitlines()) else ""
        pos = e.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        if ch == '"':
            width = max(len(line) - (e.column - 1), 1)
            return Diagnostic(
                "E006",
                "unterminated string",
                Span(file, e.line, e.column, e.line, e.column + width),
                ('to fix: close the string with " on the same line; write \\n for a newline',),
            )
        shown = repr(ch)[1:-1] if ch else "end of file"
        return Diagnostic(
            "E004",
            f"syntax error: unexpected character '{shown}'",
            Span.point(file, e.line, e.column),
            _char_help(ch),
        )

    def _unclosed(
        self, text: str, file: str, until: int, reason: str
    ) -> tuple[Diagnostic, int | None]:
        """E005 at the innermost bracket still open at offset ``until`` (and its offset)."""
        stack: list[tuple[Token, str]] = []
        prev: list[Token] = []
        try:
            for tok in self._plain.lex(text[:until]):
                if tok.type in ("LBRACE", "LSQB"):
                    stack.append((tok, _opener_name(prev)))
                elif tok.type in ("RBRACE", "RSQB") and stack:
                    stack.pop()
                prev = [*prev[-2:], tok]
        except LarkError:
            pass
        if not stack:
            lines = text[:until].splitlines()
            eof_line = max(len(lines), 1)
            eof = Span.point(file, eof_line, len(lines[-1]) + 1 if lines else 1)
            return Diagnostic("E005", f"syntax error: {reason}", eof), None
        tok, what = stack[-1]
        closer = "}" if tok.type == "LBRACE" else "]"
        return (
            Diagnostic(
                "E005",
                f"syntax error: {what} is not closed ({reason})",
                _span(file, tok),
                (f"to fix: add the missing '{closer}'",),
            ),
            tok.start_pos,
        )


def _opener_name(prev: list[Token]) -> str:
    """Describe the construct a bracket opens from the tokens just before it."""
    if len(prev) >= 2 and prev[-1].type == "IDENT" and prev[-2].type == "IDENT":
        return f"block of {prev[-2]} '{prev[-1]}'"
    if (
        prev
        and prev[-1].type in ("IDENT", "STRING")
        and (len(prev) < 2 or prev[-2].type != "EQUAL")
    ):
        return f"block '{str(prev[-1]).strip(chr(34))}'"
    if prev and prev[-1].type == "EQUAL":
        return "map"
    return "list" if not prev or prev[-1].type != "LBRACE" else "block"


_TOKEN_WORDS = {
    "RBRACE": "'}'",
    "LBRACE": "'{'",
    "RSQB": "']'",
    "LSQB": "'['",
    "EQUAL": "'='",
    "COLON": "':'",
    "_COMMA": "','",
    "COMMA": "','",
    "IDENT": "name",
    "STRING": "string",
    "NUMLIT": "number",
    "MONEY": "amount",
    "__ANON_0": "'..'",
    "IMPORT": "'import'",
    "PARAM": "'param'",
    "AS": "'as'",
}

_VALUE_START = {"STRING", "NUMLIT", "MONEY", "IDENT", "LSQB", "LBRACE"}


def _describe_token(tok: Token) -> str:
    if tok.type in ("IDENT", "STRING", "NUMLIT", "MONEY"):
        shown = str(tok) if tok.type == "STRING" else f"'{tok}'"
        return f"{_TOKEN_WORDS[tok.type]} {shown}"
    return f"'{tok}'"


def _expectation(expected: set[str]) -> str:
    if not expected:
        return ""
    if expected >= _VALUE_START or (expected <= _VALUE_START | {"LSQB"} and "STRING" in expected):
        return "where a value was expected"
    if expected <= {"EQUAL", "LBRACE"}:
        return "where '=' or '{' was expected"
    words = sorted({_TOKEN_WORDS.get(t, t) for t in expected})
    words = [w if w.startswith("'") else f"a {w}" for w in words]
    if len(words) > 5:
        return ""
    return "where " + " or ".join(words) + " was expected"


def _token_help(tok: Token, expected: set[str]) -> tuple[str, ...]:
    if expected >= _VALUE_START:
        return ("to fix: write a value after '=', e.g. a name, a number, a string or a list",)
    if tok.type == "IDENT" and "EQUAL" in expected:
        return ("attributes are written 'key = value', one per line",)
    if tok.type == "NUMLIT" and "RBRACE" in expected:
        return ("a block holds 'key = value' lines",)
    return ()


def _char_help(ch: str) -> tuple[str, ...]:
    if ch == "'":
        return ('strings use double quotes: "like this"',)
    if ch == "$":
        return ("amounts are written $250 or $0.75",)
    return ()


@cache
def default_parser() -> ExoParser:
    """A shared parser instance (the grammar is immutable; it keeps its tables, and
    nothing of the files it parsed: the tree builder's memos are the caller's,
    ``treebuild.Memos``)."""
    return ExoParser()


def parse_text(text: str, file: str) -> Module:
    return default_parser().parse(text, file)


def parse_recovering(text: str, file: str, memos: treebuild.Memos | None = None) -> Parsed:
    return default_parser().parse_recovering(text, file, memos)


def parse_value(text: str) -> Value:
    """Parse a single value (for ``-p NAME=VALUE``); raises CompileError."""
    module = parse_text(f"param __value__ = {text}\n", "<-p>")
    item = module.items[0] if len(module.items) == 1 else None
    if not isinstance(item, Param):
        raise CompileError([Diagnostic("E113", f"cannot read '{text}' as a value")])
    return item.value


def decode_source(data: bytes, file: str) -> str:
    """UTF-8 text of a source file, or a diagnostic at the first bad byte."""
    if len(data) > MAX_FILE_BYTES:
        raise CompileError(
            [Diagnostic("E012", f"{file} is larger than {MAX_FILE_BYTES // 2**20} MiB")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise CompileError(
            [
                Diagnostic(
                    "E002",
                    f"file is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
                    Span.point(file, line, col),
                    ("to fix: save the file as UTF-8",),
                )
            ],
            {file: data.decode("utf-8", "replace")},
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise CompileError(
            [Diagnostic("E004", "syntax error: NUL character in file", Span.point(file, line, col))]
        )
    return text
