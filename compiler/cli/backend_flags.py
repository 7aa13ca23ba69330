"""``--<backend>-<field>`` flags: every installed backend's options on the command line.

The flags are generated from the installed backends' ``Options`` models when a
command's options are first needed (parsing or ``--help``), so third-party
backends get flags too and commands that need no backend never load the
plugins. A command that takes them is declared with ``cls=BackendFlagsCommand``;
it reads what was given with :func:`given_flags`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import typing
from dataclasses import dataclass
from typing import Any

import typer

from exo.backends.api import Backend
from exo.backends.registry import Registry, flag_name, installed, option_rows, value_label
from exo.compiler.cli.help import ExoCommand

_META_KEY = "exo.backend_flags"


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    args = typing.get_args(annotation)
    return bool(args) and set(args) <= {bool, type(None)}


def _is_multiple(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (list, tuple, set, frozenset)


@dataclass(frozen=True, slots=True)
class FlagSpec:
    backend: str
    field: str
    #: Parameter name in the parsed command line.
    dest: str


def _flag_parameter(
    name: str, fname: str, ann: Any, row: tuple[str, str, str, str]
) -> inspect.Parameter:
    """The keyword parameter typer turns into ``--<name>-<fname>`` (``row``: the option's
    line of ``exoc backends``)."""
    flag, _, default, desc = row
    annotation: Any
    if _is_bool(ann):
        decl = [f"{flag}/--no-{flag[2:]}"]
        annotation = bool | None
    else:
        decl = [flag]
        annotation = list[str] | None if _is_multiple(ann) else str | None
    option = typer.Option(
        None,
        *decl,
        help=option_help(desc, default, ann),
        metavar=value_label(ann),
        show_default=False,
        rich_help_panel=f"Options of backend {name}",
    )
    dest = f"exo_backend__{name}__{fname}".replace("-", "_")
    return inspect.Parameter(
        dest, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
    )


def _flag_parameters(registry: Registry) -> tuple[list[FlagSpec], list[Any]]:
    """``--<backend>-<field>`` parameters of every installed backend.

    They are built by typer itself from a synthetic signature (the public
    ``typer.main.get_command``), so they behave and render like every other option.
    """
    specs: list[FlagSpec] = []
    params: list[inspect.Parameter] = []
    for name, backend in registry.backends.items():
        rows = {r[0]: r for r in option_rows(backend)}
        for fname, info in backend.Options.model_fields.items():
            row = rows[flag_name(name, fname)]
            params.append(_flag_parameter(name, fname, info.annotation, row))
            specs.append(FlagSpec(name, fname, params[-1].name))
    if not params:
        return specs, []

    def holder(**kwargs: Any) -> None:
        """Carries the signature typer turns into options."""

    holder.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    holder.__annotations__ = {p.name: p.annotation for p in params}
    app = typer.Typer(add_completion=False)
    app.command()(holder)
    built = typer.main.get_command(app)
    return specs, list(built.params)


class BackendFlagsCommand(ExoCommand):
    """A typer command that also accepts ``--<backend>-<field>`` for every backend.

    The flags are computed on first use (parsing or ``--help``), so commands that
    do not need backends never load the plugins.
    """

    _flags: tuple[list[FlagSpec], list[Any]] | None = None

    def _backend_flags(self) -> tuple[list[FlagSpec], list[Any]]:
        if self._flags is None:
            self._flags = _flag_parameters(installed())
        return self._flags

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        return [*params, *self._backend_flags()[1]]

    def invoke(self, ctx: Any) -> Any:
        given: dict[str, dict[str, object]] = {}
        for spec in self._backend_flags()[0]:
            value = ctx.params.pop(spec.dest, None)
            if value is None or value == () or value == []:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    value = json.loads(value)
            given.setdefault(spec.backend, {})[spec.field] = value
        ctx.meta[_META_KEY] = given
        return super().invoke(ctx)


def given_flags(ctx: typer.Context) -> dict[str, dict[str, object]]:
    """The ``--<backend>-<field>`` values given: backend name -> field -> value."""
    flags: dict[str, dict[str, object]] = ctx.meta.get(_META_KEY, {})
    return flags


def option_help(description: str, default: str, annotation: Any) -> str:
    """A backend option's description, its default (unless it says it already or there
    is none) and whether the flag repeats."""
    text = description
    if default not in ("null", "", "[]", "{}") and "default" not in description:
        text = f"{text} (default: {default})".strip()
    return f"{text} (repeatable)" if _is_multiple(annotation) else text


def options_listing(backend: Backend, width: int) -> str:
    """``--flag VALUE`` and what it does, for every option: names in full, descriptions
    wrapped (a long name puts its description on the next line)."""
    rows: list[tuple[str, str]] = []
    for fname, info in backend.Options.model_fields.items():
        flag = flag_name(backend.name, fname)
        _, _, default, desc = next(r for r in option_rows(backend) if r[0] == flag)
        label = value_label(info.annotation)
        term = f"{flag} {label}" if label else f"{flag} / --no-{flag[2:]}"
        rows.append((term, option_help(desc, default, info.annotation)))
    if not rows:
        return ""
    import click  # only `exoc backends` lists them this way

    formatter = click.HelpFormatter(width=max(min(width, 100), 60))
    with formatter.indentation():
        formatter.write_dl(rows, col_max=36)
    return formatter.getvalue()
