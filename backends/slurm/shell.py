"""Shell text for the generated scripts, built so that no value is ever re-interpreted.

Two kinds of text reach a script:

- *values* (names, paths, numbers, anything from the ``.exo`` file) are quoted
  with :func:`shlex.quote`, one word each;
- *words with runtime placeholders* (``"--out={output}/x"``) become a
  concatenation of single-quoted literals and double-quoted variable
  references: ``'--out='"${EXO_OUTPUT}"'/x'``. Bash expands the variable and
  nothing else: the variable's value is never split, globbed or evaluated, so a
  value holding ``$(...)``, backticks, quotes or newlines arrives literally.

:class:`Shell` marks text that is already valid shell; the jinja environment
quotes every other interpolated value (its ``finalize`` hook), so a template
cannot forget to quote.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from importlib import resources

import jinja2

from exo.compiler.ir import RUNTIME_PLACEHOLDERS
from exo.compiler.names import require_env_names

from ..api import ALIASES
from .options import is_sbatch_option

#: Same syntax as :func:`exo.backends.api.expand`: ``{{``/``}}`` are braces, ``{name}`` a placeholder.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


#: Prefix of the job script's own variables. A step's ``env`` cannot use it: the
#: IR refuses names starting with ``EXO_`` in any case (``exo.compiler.names``).
INTERNAL_PREFIX = "exo_"

#: Runtime placeholder -> the (unexported) variable the job script holds its value in
#: (an alias such as ``shard_index`` reads its ``batch_*`` twin). They are exported as
#: ``EXO_*`` only into the step's process.
PLACEHOLDER_VARS: dict[str, str] = {
    name: INTERNAL_PREFIX + ALIASES.get(name, name) for name in RUNTIME_PLACEHOLDERS
}


class Shell(str):
    """Text that is already valid, safely quoted shell; templates insert it as is."""

    __slots__ = ()


def quote(value: object) -> Shell:
    """One shell word whose value is exactly ``str(value)``."""
    return Shell(shlex.quote(str(value)))


def literal(value: object) -> Shell:
    """Like :func:`quote`, but always in quotes (``x='ls'`` reads as data, not a command)."""
    text = str(value)
    quoted = shlex.quote(text)
    return Shell(quoted if quoted != text else f"'{text}'")


def word(template: str, variables: Mapping[str, str]) -> Shell:
    """One shell word for ``template`` with placeholders taken from shell variables.

    ``variables`` maps placeholder names to shell variable names. Placeholders
    not in ``variables`` stay literal, as :func:`exo.backends.api.expand` leaves them.
    """
    parts: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        text = "".join(literal)
        literal.clear()
        if text:
            parts.append(shlex.quote(text))

    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        literal.append(template[pos : m.start()])
        pos = m.end()
        whole = m.group(0)
        name = m.group(1)
        if whole == "{{":
            literal.append("{")
        elif whole == "}}":
            literal.append("}")
        elif name in variables:
            flush()
            parts.append(f'"${{{variables[name]}}}"')
        else:
            literal.append(whole)
    literal.append(template[pos:])
    flush()
    return Shell("".join(parts) or "''")


def directive(value: object) -> Shell:
    """An ``#SBATCH`` option, refused unless it is one (defence in depth: every value
    in one was validated where it came from — catalog, options, plan)."""
    text = str(value)
    if not is_sbatch_option(text):
        raise ValueError(f"not a safe #SBATCH option: {text[:60]!r}")
    return quote(text)  # no quote or backslash inside: sbatch and bash read it alike


def env_name(name: str) -> Shell:
    """An environment variable name for ``export NAME=...`` (validated, never quoted)."""
    require_env_names([name])
    return Shell(name)


def comment(text: str) -> Shell:
    """Text safe inside a ``#`` comment: one line, printable characters only."""
    if text.isprintable():  # the usual case, in one C loop (a whole command per job)
        return Shell(text)
    return Shell("".join(c if c.isprintable() else "?" for c in text))


def is_set(name: str) -> Shell:
    """``${NAME+set}``: non-empty when the variable ``NAME`` is set (even to "")."""
    require_env_names([name])
    return Shell(f"${{{name}+set}}")


def words(values: list[str]) -> Shell:
    """Several values as separate, quoted words."""
    return Shell(" ".join(quote(v) for v in values))


def _finalize(value: object) -> object:
    if isinstance(value, Shell):
        return value
    if value is None:
        raise ValueError("a template interpolated None")
    return quote(value)


def environment() -> jinja2.Environment:
    """The jinja environment of the Slurm templates (package data, StrictUndefined)."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
        # bash uses `{#` (${#array[@]}); jinja comments are not needed.
        comment_start_string="{#jinja#",
        comment_end_string="#jinja#}",
    )
    env.filters["q"] = quote
    env.filters["comment"] = comment
    env.filters["directive"] = directive
    env.filters["env_name"] = env_name
    env.filters["is_set"] = is_set
    env.filters["literal"] = literal
    env.filters["words"] = words
    return env


def _load(name: str) -> str:
    return resources.files("exo.backends.slurm").joinpath("templates", name).read_text("utf-8")
