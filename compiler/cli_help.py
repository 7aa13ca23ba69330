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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


class ExoGroup(TyperGroup):
    """The ``exoc`` group: its options, then every command with its first sentence."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*usage_pieces(self, ctx), self.subcommand_metavar]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=200)))
        write_help(self, ctx, formatter, [("Commands", rows)] if rows else [])
