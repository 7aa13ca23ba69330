"""What a name or a text value may hold: one rule per kind, shared by every stage.

Values from a workflow, a catalog or an option end up in generated artifacts:
shell scripts, ``#SBATCH`` lines, YAML, Kubernetes names and labels, file names,
JSON manifests, terminals. Quoting for each context is the backends' job, but
some kinds of names are written where no quoting exists (an ``#SBATCH`` line, a
GRES type, an environment variable name, a file name). Those names are checked
here, once, where they enter exo (the catalog loader and the front end), and
the IR and catalog models check them again so that no other way of building a
program can carry them past the backends. See ``docs/security.md``.

Each ``*_problem`` function returns ``None`` for an acceptable value, else a
short reason (completes "… is not allowed: REASON").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# --------------------------------------------------------------------------- rules

#: Environment variable names (``env`` keys, ``secrets``): the portable POSIX
#: form every target accepts as is (a shell variable, a Kubernetes env name, a
#: process environment key).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: exo sets ``EXO_*`` variables itself, and the Slurm job script keeps its own
#: state in ``exo_*`` shell variables: names with this prefix, in any case, are reserved.
RESERVED_ENV_PREFIX = "EXO_"
MAX_ENV_NAME = 128

#: Names a catalog gives to instance types, accelerators, clouds and regions.
#: They become GRES types, partitions keys, node label values, annotations and
#: parts of file and object names, so they keep to what all of those accept
#: unquoted: ASCII letters and digits, then also ``.``, ``_``, ``+`` and ``-``.
CATALOG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
MAX_CATALOG_NAME = 64

#: Declared names (workflow, step, dataset, param, import alias): the grammar's
#: identifier alphabet, bounded so that ``steps/<step>.sbatch`` and every other
#: file named after a step stays far within a file system's 255-byte limit.
MAX_DECL_NAME = 128
#: A step's qualified name (``alias.inner.step``).
MAX_QUALIFIED_NAME = 200

#: A container image reference (``[registry[:port]/]path[:tag][@digest]``), as
#: Docker and the OCI distribution spec write it; runtime placeholders allowed.
IMAGE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
MAX_IMAGE_REFERENCE = 512

#: Longest path or URI (``catalog``, ``output``, a dataset's ``uri``).
MAX_PATH = 4096
#: Longest step ``description`` (characters): a line of a report.
MAX_DESCRIPTION = 200
#: Longest free-text catalog cell (``source``, ``note``).
MAX_TEXT_CELL = 500

#: Control and format characters: C0, DEL, C1, the line and paragraph separators,
#: and the bidirectional overrides and isolates that reorder text without being
#: visible ("Trojan Source", CVE-2021-42574).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def is_control(c: str) -> bool:
    """A control or format character a terminal or an editor would act on."""
    return _CONTROL.match(c) is not None


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _first_control(text: str) -> str | None:
    m = _CONTROL.search(text)
    return m.group(0) if m else None


def _describe_char(c: str) -> str:
    if c == "\n":
        return "a line break"
    if c == "\t":
        return "a tab"
    if c == " ":
        return "a space"
    if c.isprintable() and not is_control(c):
        return f"'{c}'"
    return f"the control character U+{ord(c):04X}"


def _bad_char(text: str, allowed: re.Pattern[str]) -> str:
    """The first character that ``allowed`` (a character class pattern) rejects."""
    for c in text:
        if not allowed.fullmatch(c):
            return _describe_char(c)
    return "a character it does not allow"  # pragma: no cover - callers check first


_CATALOG_CHAR = re.compile(r"[A-Za-z0-9._+-]")
_ENV_CHAR = re.compile(r"[A-Za-z0-9_]")
_IMAGE_CHAR = re.compile(r"[A-Za-z0-9._/:@+-]")


#: The names :func:`env_name_problem` accepts, in one match: the rule's alphabet, its
#: length, and not the reserved prefix in any case.
_ENV_NAME_OK = re.compile(
    rf"(?!(?i:{RESERVED_ENV_PREFIX}))[A-Za-z_][A-Za-z0-9_]{{0,{MAX_ENV_NAME - 1}}}"
)


def env_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an environment variable of a step, or None."""
    if _ENV_NAME_OK.fullmatch(name):
        return None  # every step names a few, checked here and again by the IR
    if not name:
        return "it is empty"
    if len(name) > MAX_ENV_NAME:
        return f"it is longer than {MAX_ENV_NAME} characters"
    if not ENV_NAME.fullmatch(name):
        if name[0].isdigit():
            return "it starts with a digit"
        return f"it contains {_bad_char(name, _ENV_CHAR)}"
    if name.upper().startswith(RESERVED_ENV_PREFIX):
        return f"names starting with {RESERVED_ENV_PREFIX} (in any case) are reserved for exo"
    return None


def require_env_names(names: Iterable[str]) -> None:
    """Raise ValueError at the first name :func:`env_name_problem` refuses.

    The IR's own check, and the backends' internal assertion where a name is
    written (a step copied without validation must not reach an artifact)."""
    for name in names:
        if (problem := env_name_problem(name)) is not None:
            raise ValueError(f"{name[:40]!r} cannot name an environment variable: {problem}")


ENV_NAME_RULE = (
    "an environment variable name is ASCII letters, digits and _, not starting with a "
    f"digit, at most {MAX_ENV_NAME} characters, and not starting with {RESERVED_ENV_PREFIX}"
)


def _alphanumeric_first(
    text: str, whole: re.Pattern[str], char: re.Pattern[str], limit: int
) -> str | None:
    """Why ``text`` does not match ``whole`` (an ASCII letter or digit, then characters
    of ``char``) within ``limit`` characters, or None."""
    if not text:
        return "it is empty"
    if len(text) > limit:
        return f"it is longer than {limit} characters"
    if whole.fullmatch(text):
        return None
    if not (text[0].isascii() and text[0].isalnum()):
        return f"it starts with {_describe_char(text[0])}"
    return f"it contains {_bad_char(text, char)}"


def catalog_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an instance type, accelerator, cloud or region, or None."""
    return _alphanumeric_first(name, CATALOG_NAME, _CATALOG_CHAR, MAX_CATALOG_NAME)


CATALOG_NAME_RULE = (
    "a catalog name starts with an ASCII letter or digit, then holds letters, digits, "
    f". _ + and -, at most {MAX_CATALOG_NAME} characters"
)


def decl_name_problem(name: str, *, limit: int = MAX_DECL_NAME) -> str | None:
    """Why a declared (or qualified) name cannot be used, or None (the grammar fixes the alphabet)."""
    if len(name) > limit:
        return f"it is {len(name)} characters long; the limit is {limit}"
    return None


@functools.lru_cache(maxsize=1024)
def image_problem(text: str) -> str | None:
    """Why ``text`` (runtime placeholders written ``{name}``) is not an image reference.

    Remembered: a workflow's steps name a few images, each many times."""
    if len(text) > MAX_IMAGE_REFERENCE:
        return f"it is longer than {MAX_IMAGE_REFERENCE} characters"
    plain = re.sub(r"\{[A-Za-z_][A-Za-z0-9_]*\}", "x", text)
    return _alphanumeric_first(plain, IMAGE_REFERENCE, _IMAGE_CHAR, MAX_IMAGE_REFERENCE)


IMAGE_RULE = (
    "an image reference is [REGISTRY/]REPOSITORY[:TAG][@DIGEST]: ASCII letters, digits "
    f"and . _ / : @ + -, at most {MAX_IMAGE_REFERENCE} characters"
)


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot be a path or URI (``catalog``, ``output``, ``uri``), or None."""
    if len(text) > MAX_PATH:
        return f"it is longer than {MAX_PATH} characters"
    bad = _first_control(text)
    if bad is not None:
        return f"it contains {_describe_char(bad)}"
    return None


def text_problem(text: str, *, limit: int = MAX_TEXT_CELL) -> str | None:
    """Why ``text`` cannot be a free text (a catalog ``source`` or ``note``), or None.

    Line breaks and tabs are text; other control characters (escape sequences a
    terminal would act on, bidirectional overrides) are not."""
    if len(text) > limit:
        return f"it is longer than {limit} characters"
    bad = _first_control(text.replace("\r\n", "\n").translate(_TEXT_SPACE))
    if bad is not None:
        return f"it contains {_describe_char(bad)}"
    return None


_TEXT_SPACE = str.maketrans({"\n": " ", "\t": " "})


def description_problem(text: str) -> str | None:
    """Why ``text`` cannot be a step's ``description`` (one line of a report), or None:
    the rule of paths (no control characters), at most :data:`MAX_DESCRIPTION` long."""
    if len(text) > MAX_DESCRIPTION:
        return f"it is {len(text)} characters long; the limit is {MAX_DESCRIPTION}"
    problem = path_problem(text)
    return f"{problem}; a description is one line" if problem else None
