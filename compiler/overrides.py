"""The ``-p NAME=VALUE`` pass: command-line values for the entry file's params.

A value is parsed as a literal of the language and must have the type of the
declared value (a string param takes any text). :func:`apply_overrides` is pure:
it returns the :class:`Params` to lower with and what it found.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from exo.compiler.diagnostics import CompileError, did_you_mean
from exo.compiler.params import Params
from exo.compiler.parser import parse_value
from exo.compiler.reading import Lowered, Names, Reading, respan
from exo.compiler.scopes import ParamKey, Scopes
from exo.compiler.syntax import Bool, DurationLit, MoneyLit, Num, Param, SizeLit, Str, Value


def apply_overrides(scopes: Scopes, overrides: Mapping[str, str]) -> Lowered[Params]:
    """The entry file's params with the ``-p`` values (E113 for a bad name or type).

    Overrides apply in name order, each read against those before it (``-p b=...``
    where ``param b = a`` compares with ``a``'s value as overridden)."""
    entry = scopes.entry_scope
    values: dict[ParamKey, Value] = {}
    found: list[Lowered[None]] = []
    for name, text in sorted(overrides.items()):
        reading = Reading(Names(scopes, Params(MappingProxyType(dict(values)))), entry)
        target = entry.decls.get(name)
        if not isinstance(target, Param):
            params = [n for n, d in entry.decls.items() if isinstance(d, Param)]
            reading.sink.error(
                "E113",
                f"-p {name}=...: the workflow has no param '{name}'",
                help=[
                    *did_you_mean(name, params),
                    "params: " + (", ".join(sorted(params)) or "none"),
                ],
            )
        elif (value := _typed(reading, target, name, text)) is not None:
            values[(entry.module.key, name)] = value
        found.append(reading.done(None))
    return Lowered(
        Params(MappingProxyType(values)),
        tuple(d for f in found for d in f.diagnostics),
        bad_literal_uses=tuple(s for f in found for s in f.bad_literal_uses),
    )


def _typed(reading: Reading, target: Param, name: str, text: str) -> Value | None:
    """``text`` as a value of the declared value's type, at the declared value's place."""
    declared = reading.deref(target.value)
    try:
        value: Value = parse_value(text)
    except CompileError:
        value = Str(target.value.span, (text,))
    if isinstance(declared, Str) and not isinstance(value, Str):
        value = Str(target.value.span, (text,))
    if type(value) is not type(declared) or (
        isinstance(value, Num)
        and isinstance(declared, Num)
        and isinstance(declared.value, int)
        and not isinstance(value.value, int)
    ):
        reading.sink.error(
            "E113",
            f"-p {name}={text}: param '{name}' is declared as {_kind(declared)}, "
            f"and '{text}' is not one",
            target.value.span,
            help=[f"to fix: pass a value like the declared one ({_example(declared)})"],
        )
        return None
    return respan(value, target.value.span)


def _kind(v: Value) -> str:
    return {
        Str: "a string",
        Num: "a number",
        DurationLit: "a duration",
        SizeLit: "a size",
        MoneyLit: "an amount",
        Bool: "true/false",
    }.get(type(v), "a value")


def _example(v: Value) -> str:
    match v:
        case Num() | DurationLit() | SizeLit() | MoneyLit():
            return v.text
        case Str():
            return f'"{v.text}"'
        case Bool():
            return "true"
        case _:
            return "..."
