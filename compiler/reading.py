"""Reading one declaration's values: params followed, placeholders expanded, spans kept.

A :class:`Reading` is made for one declaration (a step, a dataset, the workflow, a
backend block, the ``-p`` overrides) from immutable inputs — the scopes and the
param values, :class:`Names` — and collects what reading it finds: diagnostics,
the spans of what was written (for the source map) and the places where a bad
literal or a param in a cycle was used (whose errors are reported elsewhere).
:meth:`Reading.done` turns that into a frozen :class:`Lowered` value. Nothing is
shared between declarations, so lowering one is a pure function of its syntax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Generic, Literal, TypeVar

from exo.compiler.diagnostics import (
    Diagnostic,
    DiagnosticSink,
    Span,
    did_you_mean,
    excerpt,
    suggest,
)
from exo.compiler.ir import RUNTIME_PLACEHOLDERS, Loc
from exo.compiler.names import path_problem
from exo.compiler.params import MAX_PARAM_DEPTH, Params
from exo.compiler.records import record
from exo.compiler.scopes import Resolved, Scope, Scopes, resolve, visible_names
from exo.compiler.sourcemap import Path
from exo.compiler.syntax import (
    Attr,
    BadLiteral,
    Block,
    Bool,
    DurationLit,
    Entry,
    ListV,
    MapV,
    MoneyLit,
    Num,
    Param,
    Ref,
    SizeLit,
    Str,
    Value,
)

T = TypeVar("T")

#: The run-time placeholders, for a membership test per placeholder read.
_RUNTIME = frozenset(RUNTIME_PLACEHOLDERS)

#: How an attribute is written: ``key = value``, ``key { ... }``, or either.
Shape = Literal["value", "block", "either"]


@record
class Names:
    """What every declaration is read against: the scopes and the params' values.

    ``texts`` remembers, by scope and name, the text a ``{param}`` placeholder stands
    for, where reading it reported nothing (``Reading.template``): the text depends
    only on these two values, and a large workflow writes the same placeholders
    (``{model}``) in thousands of steps."""

    scopes: Scopes
    params: Params
    texts: dict[tuple[int, str], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Step attributes read once per value and scope (:mod:`.lowermemo`): what reading
    #: each gave, where it reported nothing.
    read: dict[tuple[int, int, Hashable], object] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )


@record
class Lowered(Generic[T]):
    """One declaration read: its value and what reading it found."""

    value: T
    diagnostics: tuple[Diagnostic, ...] = ()
    #: The declaration's path in the source map: ``("step", "corpora.clean")``.
    path: Path = ()
    #: Where each part of the declaration was written (part path → span).
    spans: Mapping[Path, Span] = field(default_factory=lambda: MappingProxyType({}))
    #: Where a param holding a bad literal was used (its error is at the literal).
    bad_literal_uses: tuple[Span, ...] = ()
    #: Where a param in a cycle was used (type errors there only repeat E503/E504).
    poisoned_uses: tuple[Span, ...] = ()
    #: An attribute name was not recognised (perhaps a misspelt ``input`` or ``items``).
    misspelt: bool = False


class Reading:
    """The reader of one declaration (see the module's docstring)."""

    __slots__ = (
        "bad_literal_uses",
        "misspelt",
        "names",
        "path",
        "poisoned_uses",
        "scope",
        "sink",
        "spans",
    )

    def __init__(self, names: Names, scope: Scope, path: Path = ()) -> None:
        self.names = names
        self.scope = scope
        #: IR path of the declaration: ``("step", "corpora.clean")``, ``("workflow",)``.
        self.path = path
        self.sink = DiagnosticSink()
        self.spans: dict[Path, Span] = {}
        self.bad_literal_uses: list[Span] = []
        self.poisoned_uses: list[Span] = []
        self.misspelt = False

    def done(self, value: T) -> Lowered[T]:
        return Lowered(
            value,
            tuple(self.sink.items),
            self.path,
            MappingProxyType(self.spans),
            tuple(self.bad_literal_uses),
            tuple(self.poisoned_uses),
            self.misspelt,
        )

    def reported(self) -> tuple[int, int, int, int]:
        """How much reading has found so far: it reported or marked something new
        between two calls when they differ."""
        return (
            len(self.sink.items),
            len(self.bad_literal_uses),
            len(self.poisoned_uses),
            len(self.spans),
        )

    def mark(self, span: Span, *part: str) -> None:
        """Record where ``part`` of this declaration was written (the first place)."""
        self.spans.setdefault(part, span)

    def loc(self, span: Span) -> Loc:
        return Loc(file=self.scope.module.key, line=span.line, column=span.column)

    def resolve(self, name: str, scope: Scope | None = None) -> Resolved | None:
        return resolve(self.names.scopes, scope or self.scope, name)

    def visible_names(self, kinds: tuple[str, ...]) -> list[str]:
        return visible_names(self.names.scopes, self.scope, kinds)

    def value(self, e: Entry) -> Value:
        assert isinstance(e, Attr)
        v = e.value
        return self.deref(v) if isinstance(v, Ref) else v

    def deref(self, v: Value, scope: Scope | None = None, depth: int = 0) -> Value:
        """Follow a name that refers to a param to the param's value."""
        if not isinstance(v, Ref) or depth > MAX_PARAM_DEPTH:
            return v
        scope = scope or self.scope
        if v.name not in scope.decls and "." not in v.name:
            return v  # an enum word (``allowed``, ``batch``): no declaration, no import
        r = resolve(self.names.scopes, scope, v.name)
        if r is None or not isinstance(r.target, Param):
            return v
        if r.key in self.names.params.poisoned:
            self.poisoned_uses.append(v.span)
            return v
        value = self.names.params.values.get(r.key, r.target.value)
        used = respan(self.deref(value, r.scope, depth + 1), v.span)
        if isinstance(used, BadLiteral):
            self.bad_literal_uses.append(v.span)
        return used

    def template(self, s: Str, *, runtime: bool = True, scope: Scope | None = None) -> str:
        """An IR string: params substituted, runtime placeholders kept, braces doubled."""
        parts = s.parts
        if len(parts) == 1 and type(parts[0]) is str:  # most strings: text alone
            text = parts[0]
            return (
                text.replace("{", "{{").replace("}", "}}") if "{" in text or "}" in text else text
            )
        scope = scope or self.scope
        texts = self.names.texts
        out: list[str] = []
        add = out.append
        for part in parts:
            if isinstance(part, str):
                add(
                    part.replace("{", "{{").replace("}", "}}")
                    if "{" in part or "}" in part
                    else part
                )
                continue
            if runtime and part.name in _RUNTIME:
                add("{" + part.name + "}")
                continue
            known = texts.get((id(scope), part.name))
            if known is not None:
                add(known)
                continue
            r = resolve(self.names.scopes, scope, part.name)
            if r is not None and isinstance(r.target, Param):
                if r.key in self.names.params.poisoned:
                    continue  # a cycle: reported once, at the param (E503/E504)
                written = self.names.params.values.get(r.key, r.target.value)
                add(self._param_text(r.scope, written, part.span, (id(scope), part.name)))
                continue
            self._unknown_placeholder(part.name, part.span, runtime, scope)
            add("{{" + part.name + "}}")
        return "".join(out)

    def _param_text(self, scope: Scope, written: Value, at: Span, key: tuple[int, str]) -> str:
        """The text of a param (its value ``written`` in ``scope``) placed in a string at
        ``at``, braces doubled: what ``deref`` of the placeholder as a name does, without
        making the name (the value, followed, used at the placeholder). Remembered under
        ``key`` when reading it reported nothing: then it is the same at every place."""
        before = len(self.sink.items), len(self.bad_literal_uses), len(self.poisoned_uses)
        value = self.deref(written, scope, 1)
        if isinstance(value, BadLiteral):
            self.bad_literal_uses.append(at)
        text = self._as_text(scope, value, at).replace("{", "{{").replace("}", "}}")
        if before == (len(self.sink.items), len(self.bad_literal_uses), len(self.poisoned_uses)):
            self.names.texts[key] = text
        return text

    def _unknown_placeholder(self, name: str, span: Span, runtime: bool, scope: Scope) -> None:
        names = [
            *visible_names(self.names.scopes, scope, ("param",)),
            *(RUNTIME_PLACEHOLDERS if runtime else ()),
        ]
        self.sink.error(
            "E106",
            f"unknown placeholder {{{name}}}",
            span,
            help=[
                *([f"did you mean {{{match}}}?"] if (match := suggest(name, names)) else []),
                "placeholders are params of the workflow or the run-time names: "
                + ", ".join("{" + n + "}" for n in RUNTIME_PLACEHOLDERS),
                "to fix: write {{ and }} for literal braces",
            ],
        )

    def _as_text(self, scope: Scope, v: Value, at: Span) -> str:
        """``v`` (a param's value, used at ``at``) as text in a string."""
        match v:
            case Str():
                return (
                    self.template(v, runtime=False, scope=scope)
                    .replace("{{", "{")
                    .replace("}}", "}")
                )
            case Num():
                return str(v.value)
            case DurationLit() | SizeLit() | MoneyLit():
                return v.text
            case Bool():
                return "true" if v.value else "false"
            case Ref():
                return v.name
            case ListV() | MapV():
                self.sink.error(
                    "E201", "type error: a list or map cannot be placed in a string", at
                )
                return ""
            case _:
                return ""

    def entries(
        self, entries: tuple[Entry, ...], shapes: Mapping[str, Shape], what: str
    ) -> dict[str, Entry]:
        """The attributes written, each once and in its shape; unknown ones reported
        (and remembered in :attr:`misspelt`), duplicates and wrong shapes reported."""
        seen: dict[str, Entry] = {}
        for e in entries:
            shape = shapes.get(e.key)
            if shape is None:
                self.misspelt = True
                self.sink.error(
                    "E104",
                    f"unknown attribute '{e.key}' for a {what}",
                    e.key_span,
                    help=[
                        *did_you_mean(e.key, tuple(shapes)),
                        f"{what} attributes: {', '.join(shapes)}",
                    ],
                )
            elif e.key in seen:
                self.sink.error(
                    "E103",
                    f"duplicate attribute '{e.key}' (first set at line {seen[e.key].key_span.line})",
                    e.key_span,
                    help=["to fix: keep one of them"],
                )
            elif isinstance(e, Block) and shape == "value":
                self.sink.error(
                    "E201",
                    f"type error: '{e.key}' is a value, not a block",
                    e.key_span,
                    help=[f"to fix: write {e.key} = ..."],
                )
            elif isinstance(e, Attr) and shape == "block":
                self.sink.error(
                    "E201",
                    f"type error: '{e.key}' is a block",
                    e.key_span,
                    help=[f"to fix: write {e.key} {{ ... }}"],
                )
            else:
                seen[e.key] = e
        return seen

    def path_text(self, attr: str, s: Str) -> str | None:
        """The IR string of ``s`` if it can be a path or URI, else None after E210."""
        text = self.template(s)
        problem = path_problem(text)
        if problem is None:
            return text
        self.sink.error(
            "E210",
            f"'{attr}' \"{excerpt(text)}\" is not allowed: {problem}",
            s.span,
            help=["to fix: paths and URIs are written on one line, without control characters"],
        )
        return None


def respan(v: Value, span: Span) -> Value:
    """The same value, reported at the place that used it."""
    return dataclasses.replace(v, span=span)
