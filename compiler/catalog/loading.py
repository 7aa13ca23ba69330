"""Loading a catalog by reference: a built-in name, or a CSV path read with every check."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from exo.compiler.catalog.builtin import builtin_catalog_names, builtin_index, builtin_text
from exo.compiler.catalog.models import Catalog, CatalogError
from exo.compiler.catalog.rows import CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR
from exo.compiler.catalog.table import parse_catalog
from exo.compiler.diagnostics import Diagnostic, Span, excerpt, suggest
from exo.compiler.inputs import MAX_CATALOG_BYTES, InputRefused, read_regular_file
from exo.compiler.names import path_problem

_BUILTIN_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*/[A-Za-z0-9_.-]+")


def load_catalog(
    ref: str, base_dir: Path, *, ref_span: Span | None = None, given_on_cli: bool = False
) -> Catalog:
    """Load a built-in catalog by name or a CSV path relative to ``base_dir``.

    ``ref_span`` is where the reference was written (the ``catalog = ...`` value);
    a "not found" diagnostic points there. ``given_on_cli``: the reference came
    from ``--catalog`` (``base_dir`` is then the current directory), which the
    help of a "not found" says. Raises :class:`CatalogError` (E401/E402) with
    file, row and column for every bad cell; the file is named as the user would
    name it from the current directory.
    """
    catalog, _text = load_catalog_with_source(
        ref, base_dir, ref_span=ref_span, given_on_cli=given_on_cli
    )
    return catalog


def load_catalog_with_source(
    ref: str, base_dir: Path, *, ref_span: Span | None = None, given_on_cli: bool = False
) -> tuple[Catalog, str]:
    """Like :func:`load_catalog`, also returning the CSV text (keyed by ``catalog.name``)."""
    info = builtin_index().get(ref)
    if info is not None:
        text = builtin_text(info)
        catalog = parse_catalog(
            text,
            name=ref,
            default_spot_preemptions_per_hour=info.default_spot_preemptions_per_hour,
            snapshot=info.snapshot,
            source=info.source,
            builtin=True,
        )
        return catalog, text

    if (problem := path_problem(ref)) is not None:
        diag = Diagnostic(
            "E210",
            f"catalog path '{excerpt(ref)}' is not allowed: {problem}",
            ref_span,
            help=("to fix: rename the file so that its path has no control characters",),
        )
        raise CatalogError([diag], {})
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    label = shown_path(path, ref)
    data = _read_bytes(ref, path, label, base_dir, ref_span, given_on_cli)
    text = _decode(label, data)
    catalog = parse_catalog(
        text,
        name=ref,
        label=label,
        default_spot_preemptions_per_hour=CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
    )
    return catalog, text


def shown_path(path: Path, ref: str) -> str:
    """How diagnostics name a catalog file: as written when absolute, else relative to
    the current directory (the way the user would type it), whatever folder the
    reference was resolved from."""
    if Path(ref).expanduser().is_absolute():
        return str(path)
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)


def _not_found(
    ref: str,
    label: str,
    base_dir: Path,
    ref_span: Span | None,
    reason: str,
    given_on_cli: bool,
) -> CatalogError:
    names = builtin_catalog_names()
    help: list[str] = []
    looks_builtin = _BUILTIN_LIKE.fullmatch(ref) is not None and not ref.lower().endswith(".csv")
    guess = suggest(ref.removesuffix(".csv"), names)
    if guess is not None and (looks_builtin or ref.removesuffix(".csv") == guess):
        help.append(f"did you mean the built-in catalog `{guess}`?")
    if looks_builtin:
        help.append("built-in catalogs: " + ", ".join(f"`{n}`" for n in names))
    elif Path(ref).expanduser().is_absolute():
        help.append("to fix: check the path")
    elif given_on_cli:
        help.append(
            "to fix: check the path; a relative --catalog path is read from the current directory"
        )
    else:
        folder = os.path.relpath(base_dir)
        shown = "the current directory" if folder == "." else f"{folder}{os.sep}"
        help.append(
            "to fix: check the path; a relative path in the workflow is read from the folder "
            f"of the .exo file ({shown})"
        )
    diag = Diagnostic(
        "E401",
        f"catalog `{ref}` {reason}",
        ref_span,
        help=tuple(help),
        notes=(f"looked for {label}",),
    )
    return CatalogError([diag], {})


def _read_bytes(
    ref: str,
    path: Path,
    label: str,
    base_dir: Path,
    ref_span: Span | None,
    given_on_cli: bool,
) -> bytes:
    def not_found(reason: str) -> CatalogError:
        return _not_found(ref, label, base_dir, ref_span, reason, given_on_cli)

    if path.is_dir():
        raise not_found("is a folder, not a CSV file")
    try:
        return read_regular_file(path, MAX_CATALOG_BYTES)
    except InputRefused as exc:
        raise not_found(exc.reason) from None
    except FileNotFoundError:
        raise not_found("not found") from None
    except OSError as exc:
        raise not_found(f"cannot be read ({exc.strerror or exc})") from None


def _decode(file: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        before = data[bom : exc.start]
        line = before.count(b"\n") + 1
        last = before.rsplit(b"\n", 1)[-1]
        column = len(last.decode("utf-8", errors="replace")) + 1
        shown = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
        diag = Diagnostic(
            "E402",
            f"catalog is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line})",
            Span.point(file, line, column),
            help=("to fix: save the file as UTF-8 (in a spreadsheet: CSV UTF-8)",),
        )
        raise CatalogError([diag], {file: shown}) from None


def builtin_catalogs_offering(name: str) -> list[str]:
    """The built-in catalogs that offer an accelerator or instance type called ``name``."""
    return [n for n, offered in _builtin_offers().items() if name in offered]


@cache
def _builtin_offers() -> Mapping[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for name in builtin_catalog_names():
        catalog = load_catalog(name, Path())
        out[name] = frozenset(catalog.accelerators() | catalog.instance_types())
    return out
