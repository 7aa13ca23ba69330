"""``--help`` of every ``exoc`` command, in click's plain layout.

Typer's own help draws boxed tables that cut long option names
(``--kubernetes-namespa…``) and shows placeholders such as ``{file}`` and
``<bool>``. Here the help is written with click's ``HelpFormatter`` through
the documented hooks (``collect_usage_pieces``, ``format_help``,
``format_options``, ``format_commands``) from the parameters' public
attributes: arguments by name (``FILE``, ``FILES...``), flags without a value,
options with their metavar, full option names (a long one puts its
description on the next line), and one section per help panel (the options
of each backend). Only help is changed: parsing, errors and completion stay
typer's.

The group loads a command's module when that command is first needed (run, or
asked for its own help): ``exoc --help`` and ``exoc check`` do not import what
``exoc plan`` or ``exoc run`` need.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

#: The section options without a panel go in.
OPTIONS = "Options"
#: A titled definition list: (title, [(term, description), ...]).
Section = tuple[str, list[tuple[str, str]]]


def argument_name(param: Any) -> str:
    """``FILE``, ``FILES...``; in brackets when optional."""
    name = param.metavar or (param.name or "arg").upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if param.required else f"[{name}]"


def is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False)) or bool(getattr(param, "count", False))


def option_value(param: Any) -> str:
    """What follows the option on the command line: its metavar, or nothing for a flag."""
    if is_flag(param):
        return ""
    if param.metavar:
        return str(param.metavar)
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices:
        return "[" + "|".join(str(c) for c in choices) + "]"
    return (param.name or "value").upper()


def _default(param: Any) -> str | None:
    if param.required:
        return "required"
    default = param.default
    if (
        not getattr(param, "show_default", True)
        or is_flag(param)
        or default is None
        or default == ""
        or isinstance(default, list | tuple)
        or callable(default)
    ):
        return None
    return f"default: {default}"


def help_record(param: Any) -> tuple[str, str]:
    """(term, description) of one parameter, both complete."""
    text = " ".join((param.help or "").split())
    extra = _default(param)
    if extra:
        text = f"{text}  [{extra}]" if text else f"[{extra}]"
    if param.param_type_name == "argument":
        return argument_name(param).strip("[]"), text
    names = sorted(param.opts, key=lambda o: (o.startswith("--"), o))
    term = ", ".join(names)
    if param.secondary_opts:
        term += " / " + ", ".join(param.secondary_opts)
    value = option_value(param)
    return (f"{term} {value}" if value else term), text


def sections(params: list[Any]) -> list[Section]:
    """Arguments, options, then one section per help panel, in first-seen order."""
    found: dict[str, list[tuple[str, str]]] = {}
    args = [help_record(p) for p in params if p.param_type_name == "argument"]
    if args:
        found["Arguments"] = args
    found.setdefault(OPTIONS, [])
    for p in params:
        if p.param_type_name != "option" or getattr(p, "hidden", False):
            continue
        panel = getattr(p, "rich_help_panel", None) or OPTIONS
        found.setdefault(panel, []).append(help_record(p))
    return [(name, rows) for name, rows in found.items() if rows]


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """``[OPTIONS] FILE``: the options placeholder, then the arguments by name."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for p in command.get_params(ctx):
        if p.param_type_name == "argument":
            pieces.append(argument_name(p))
    return pieces


def write_help(command: Any, ctx: Any, formatter: Any, more: Sequence[Section] = ()) -> None:
    """Usage, description, then every section (click's order, plain text)."""
    command.format_usage(ctx, formatter)
    command.format_help_text(ctx, formatter)
    for title, rows in [*sections(command.get_params(ctx)), *more]:
        with formatter.section(title):
            formatter.write_dl(rows)
    command.format_epilog(ctx, formatter)


class ExoCommand(TyperCommand):
    """A typer command whose ``--help`` names every argument and option in full."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return usage_pieces(self, ctx)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        write_help(self, ctx, formatter)


def load_commands(module_name: str, only: str | None = None) -> dict[str, Any]:
    """The click commands that ``module_name``'s ``register(app)`` defines, by name
    (``only``: just that one; typer reads every parameter of each command it builds)."""
    module = importlib.import_module(module_name)
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    module.register(app)
    if only is not None:
        app.registered_commands = [
            info
            for info in app.registered_commands
            if (info.name or typer.main.get_command_name(getattr(info.callback, "__name__", "")))
            == only
        ]
    # Every command writes its help with argument names and full option names.
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = ExoCommand
    return dict(typer.main.get_group(app).commands)


class ExoGroup(TyperGroup):
    """The ``exoc`` group: its options, then every command with its first sentence.

    Commands listed in :attr:`lazy` are loaded from their module on first use."""

    #: Command name -> (module whose ``register(app)`` defines it, its first sentence),
    #: in the order of ``--help``.
    lazy: ClassVar[Mapping[str, tuple[str, str]]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy, *(n for n in super().list_commands(ctx) if n not in self.lazy)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            for name, command in load_commands(self.lazy[cmd_name][0], cmd_name).items():
                self.commands.setdefault(name, command)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            for name in self.lazy:  # a misspelt command: typer suggests from every command
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*usage_pieces(self, ctx), self.subcommand_metavar]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=200)))
        write_help(self, ctx, formatter, [("Commands", rows)] if rows else [])
