"""Pricing catalogs: models, built-in catalogs and CSV loading with diagnostics.

A catalog is a CSV file with the DESIGN §3 columns. The built-in catalogs live in
``exo.stdlib`` (``catalogs/<cloud>/<region>.csv``) and are described by
``catalogs/index.json`` (snapshot, source, default spot preemption rate). A user
catalog is any CSV path, relative to the folder of the ``.exo`` file (or absolute).

:func:`load_catalog` validates every cell and reports every problem at once, as
:class:`CatalogError` (a :class:`CompileError`) whose spans point at the row and
column of the bad cell; :attr:`CatalogError.sources` carries the CSV text so the
diagnostics renderer can show the line with a caret. See ``docs/catalogs.md``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import field_validator

from exo.compiler import limits
from exo.compiler.accelerators import accelerator_memory_gib
from exo.compiler.csvcells import Record, header_span, redact
from exo.compiler.csvcells import records as csv_records
from exo.compiler.diagnostics import (
    CompileError,
    Diagnostic,
    DiagnosticSink,
    Span,
    excerpt,
    sort_diagnostics,
    suggest,
)
from exo.compiler.frozen import Frozen
from exo.compiler.inputs import MAX_CATALOG_BYTES, InputRefused, read_regular_file
from exo.compiler.names import (
    CATALOG_NAME_RULE,
    catalog_name_problem,
    path_problem,
    text_problem,
)


class InstanceType(Frozen):
    """One catalog row (DESIGN §3 columns), with defaults already applied."""

    instance_type: str
    #: ``None`` for a CPU instance.
    accelerator: str | None
    accelerator_count: int
    vcpus: int
    memory_gib: float
    ondemand_usd_per_hour: float
    #: ``None`` when there is no spot offer.
    spot_usd_per_hour: float | None
    cloud: str | None = None
    region: str | None = None
    #: Memory of one accelerator; from the row, else the accelerator spec table.
    accelerator_memory_gib: float | None = None
    #: From the row, else the catalog's documented default.
    spot_preemptions_per_hour: float
    source: str | None = None
    #: Free-text remark from the optional ``note`` column.
    note: str | None = None
    #: 1-based line of the row in the CSV file (for diagnostics that point at it).
    line: int | None = None

    @field_validator("instance_type", "accelerator", "cloud", "region")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        # The loader reports these with file, row and column (E415); this keeps a
        # catalog built any other way from carrying a name no artifact can hold.
        if value is not None and (problem := catalog_name_problem(value)) is not None:
            raise ValueError(f"{excerpt(value)!r} is not a catalog name: {problem}")
        return value


class Catalog(Frozen):
    #: Built-in name (``aws/us-east-1``) or the path it was loaded from.
    name: str
    #: When the prices were collected (``YYYY-MM-DD`` or a description), if known.
    snapshot: str | None = None
    default_spot_preemptions_per_hour: float
    instances: tuple[InstanceType, ...]
    #: Where the prices come from (built-ins), if known.
    source: str | None = None
    #: True for a catalog shipped with exo.
    builtin: bool = False

    def accelerators(self) -> set[str]:
        return {i.accelerator for i in self.instances if i.accelerator}

    def instance_types(self) -> set[str]:
        return {i.instance_type for i in self.instances}

    def get(self, instance_type: str) -> InstanceType | None:
        for i in self.instances:
            if i.instance_type == instance_type:
                return i
        return None


class CatalogError(CompileError):
    """Every problem found in one catalog, plus the text needed to render them."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: Mapping[str, str]) -> None:
        super().__init__(sort_diagnostics(diagnostics))
        #: ``{span.file: text}`` for the diagnostics renderer: only the cells the
        #: diagnostics point at are kept, every other character is blanked, so that
        #: an error never shows the rest of a file (which may not be a catalog at all).
        self.sources: dict[str, str] = {
            file: redact(text, [d.span for d in self.diagnostics if d.span and d.span.file == file])
            for file, text in sources.items()
        }


# --------------------------------------------------------------------------- columns

REQUIRED_COLUMNS: tuple[str, ...] = (
    "instance_type",
    "accelerator",
    "accelerator_count",
    "vcpus",
    "memory_gib",
    "ondemand_usd_per_hour",
    "spot_usd_per_hour",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "cloud",
    "region",
    "accelerator_memory_gib",
    "spot_preemptions_per_hour",
    "source",
    "note",
)
KNOWN_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: Default ``spot_preemptions_per_hour`` of a user catalog (a CSV path) for rows
#: that leave the cell empty: the measured AWS GPU spot rate (docs/catalogs.md).
CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR = 0.47

#: How to fix a bad cell, per column (completes "to fix: ...").
_FIX: dict[str, str] = {
    "instance_type": "give each row a unique instance type name, e.g. g5.xlarge",
    "accelerator": "name the accelerator (e.g. A100), or leave it empty for a CPU instance",
    "accelerator_count": "write the number of accelerators per instance as digits, e.g. 8 (0 for a CPU instance)",
    "vcpus": "write the number of vCPUs per instance as digits, e.g. 8",
    "memory_gib": "write the instance memory in GiB as a plain number, e.g. 64",
    "ondemand_usd_per_hour": "write the on-demand price in USD per instance-hour as a plain number, e.g. 0.526",
    "spot_usd_per_hour": "write the spot price in USD per instance-hour as a plain number, e.g. 0.1845, or leave it empty when there is no spot offer",
    "spot_preemptions_per_hour": "write the expected preemptions per running hour as a plain number, e.g. 0.05, or leave it empty for the catalog default",
    "accelerator_memory_gib": "write the memory of one accelerator in GiB as a plain number, e.g. 80, or leave it empty to use the built-in spec",
}

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_BUILTIN_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*/[A-Za-z0-9_.-]+")


# --------------------------------------------------------------------------- built-ins


@dataclass(frozen=True, slots=True)
class _BuiltinInfo:
    name: str
    file: str
    snapshot: str | None
    source: str | None
    default_spot_preemptions_per_hour: float


def _catalogs_dir() -> Any:
    return resources.files("exo.stdlib").joinpath("catalogs")


@cache
def _builtin_index() -> Mapping[str, _BuiltinInfo]:
    raw = json.loads(_catalogs_dir().joinpath("index.json").read_text(encoding="utf-8"))
    out: dict[str, _BuiltinInfo] = {}
    for name, meta in raw["catalogs"].items():
        out[name] = _BuiltinInfo(
            name=name,
            file=meta["file"],
            snapshot=meta.get("snapshot"),
            source=meta.get("source"),
            default_spot_preemptions_per_hour=float(meta["default_spot_preemptions_per_hour"]),
        )
    return out


def builtin_catalog_names() -> list[str]:
    """Names of the catalogs shipped with exo, sorted (``aws/us-east-1``, ...)."""
    return sorted(_builtin_index())


def builtin_catalog_metadata(name: str) -> dict[str, Any]:
    """The ``index.json`` entry of a built-in catalog (snapshot, source, derivations)."""
    raw = json.loads(_catalogs_dir().joinpath("index.json").read_text(encoding="utf-8"))
    meta: dict[str, Any] = raw["catalogs"][name]
    return meta


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


# --------------------------------------------------------------------------- loading


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
    index = _builtin_index()
    info = index.get(ref)
    if info is not None:
        text = _catalogs_dir().joinpath(info.file).read_text(encoding="utf-8")
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


# --------------------------------------------------------------------------- parsing


def parse_catalog(
    text: str,
    *,
    name: str,
    label: str | None = None,
    default_spot_preemptions_per_hour: float = CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
    snapshot: str | None = None,
    source: str | None = None,
    builtin: bool = False,
) -> Catalog:
    """Parse and validate catalog CSV ``text``; spans use ``label`` (default: ``name``)
    as the file.

    Raises :class:`CatalogError` with every problem found.
    """
    sink = DiagnosticSink()
    file = label or name
    records = csv_records(text, file, sink)
    header = next(records, None)
    if header is None:
        if not sink.items:
            sink.error(
                "E402",
                "catalog file is empty",
                Span.point(file, 1, 1),
                help=("to fix: the first line must be the header: " + ",".join(REQUIRED_COLUMNS),),
            )
        raise CatalogError(sink.items, {file: text})

    if not any(cell.strip().lower() in KNOWN_COLUMNS for cell in header.cells):
        # Not a catalog at all (a wrong path, a secrets file...): say so without
        # showing any of it.
        diag = Diagnostic(
            "E402",
            "this file is not a catalog: its first line names none of the catalog columns",
            Span.point(file, header.line, 1),
            help=("to fix: the first line must be the header: " + ",".join(REQUIRED_COLUMNS),),
            notes=("nothing of the file is shown, in case it holds something private",),
        )
        raise CatalogError([diag], {})
    columns: dict[str, int] = {}
    for idx, cell in enumerate(header.cells):
        col = cell.strip().lower()
        span = header.spans[idx]
        if not col:
            continue  # unnamed column: ignored
        if col in columns:
            sink.error(
                "E402",
                f"column `{col}` appears twice in the header",
                span,
                help=("to fix: remove or rename one of them",),
            )
            continue
        if col not in KNOWN_COLUMNS:
            guess = suggest(col, KNOWN_COLUMNS, cutoff=0.75)
            if guess is not None and guess not in {c.strip().lower() for c in header.cells}:
                sink.error(
                    "E402",
                    f"unknown column `{excerpt(cell.strip())}`",
                    span,
                    help=(f"did you mean `{guess}`?",),
                    notes=("columns with other names are ignored",),
                )
            continue
        columns[col] = idx
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    for col in missing:
        sink.error(
            "E402",
            f"catalog header has no `{col}` column",
            header_span(header),
            help=("to fix: add the column; required columns: " + ", ".join(REQUIRED_COLUMNS),),
        )

    instances: list[InstanceType] = []
    first_line: dict[str, int] = {}
    width = len(header.cells)
    for rec in records:
        row = _validate_row(rec, columns, width, default_spot_preemptions_per_hour, sink)
        it_idx = columns.get("instance_type")
        if it_idx is not None and it_idx < len(rec.cells):
            it_name = rec.cells[it_idx].strip()
            if it_name and it_name in first_line:
                sink.error(
                    "E402",
                    f"instance type `{excerpt(it_name)}` is listed twice",
                    rec.spans[it_idx],
                    help=("to fix: keep one row per instance type",),
                    notes=(f"first listed on line {first_line[it_name]}",),
                )
                continue
            if it_name:
                first_line[it_name] = rec.line
        if row is not None:
            instances.append(row)

    if not sink.items and not instances:
        sink.error(
            "E402",
            "catalog has a header but no instance types",
            header_span(header),
            help=("to fix: add one row per instance type below the header",),
        )
    if sink.items:
        raise CatalogError(sink.items, {file: text})
    return Catalog(
        name=name,
        snapshot=snapshot,
        default_spot_preemptions_per_hour=default_spot_preemptions_per_hour,
        instances=tuple(instances),
        source=source,
        builtin=builtin,
    )


def _validate_row(
    rec: Record,
    columns: Mapping[str, int],
    width: int,
    default_rate: float,
    sink: DiagnosticSink,
) -> InstanceType | None:
    before = len(sink.items)
    if len(rec.cells) > width:
        sink.error(
            "E402",
            f"row has {len(rec.cells)} cells but the header has {width} columns",
            rec.spans[width],
            help=("to fix: remove the extra cells, or quote a cell that contains a comma",),
        )
    elif len(rec.cells) < width:
        absent = [c for c, i in columns.items() if i >= len(rec.cells)]
        sink.error(
            "E402",
            f"row has {len(rec.cells)} cells but the header has {width} columns",
            rec.end,
            help=(
                "to fix: add the missing cells"
                + (f" ({', '.join(absent)})" if absent else "")
                + "; an empty cell is written as nothing between two commas",
            ),
        )

    def cell(col: str) -> tuple[str, Span] | None:
        idx = columns.get(col)
        if idx is None or idx >= len(rec.cells):
            return None
        return rec.cells[idx].strip(), rec.spans[idx]

    def number(col: str, *, whole: bool, required: bool, positive: bool = False) -> Any:
        c = cell(col)
        if c is None:
            return None
        return _number_cell(
            sink, col, c[0], c[1], whole=whole, required=required, positive=positive
        )

    def name(col: str) -> str | None:
        c = cell(col)
        if c is None or not c[0]:
            return None
        problem = (text_problem if col in _TEXT_COLUMNS else catalog_name_problem)(c[0])
        if problem is not None:
            _bad_name(sink, col, c[0], c[1], problem)
            return None
        return c[0]

    c_it = cell("instance_type")
    if c_it is not None and not c_it[0]:
        sink.error(
            "E402",
            "column `instance_type` is empty on this row",
            c_it[1],
            help=("to fix: " + _FIX["instance_type"],),
        )
    it_name = name("instance_type")
    accelerator = name("accelerator")
    cloud, region, source, note = name("cloud"), name("region"), name("source"), name("note")
    count = number("accelerator_count", whole=True, required=True)
    vcpus = number("vcpus", whole=True, required=True, positive=True)
    memory = number("memory_gib", whole=False, required=True, positive=True)
    ondemand = number("ondemand_usd_per_hour", whole=False, required=True)
    spot = number("spot_usd_per_hour", whole=False, required=False)
    rate = number("spot_preemptions_per_hour", whole=False, required=False)
    acc_mem = number("accelerator_memory_gib", whole=False, required=False, positive=True)

    c_acc = cell("accelerator")
    c_count = cell("accelerator_count")
    if accelerator is not None and count == 0 and c_count is not None:
        sink.error(
            "E402",
            f"accelerator `{excerpt(accelerator)}` is set but `accelerator_count` is 0",
            c_count[1],
            help=(
                "to fix: give the number of accelerators per instance, or leave `accelerator` "
                "empty for a CPU instance",
            ),
        )
    if c_acc is not None and not c_acc[0] and count is not None and count > 0:
        sink.error(
            "E402",
            f"`accelerator_count` is {count} but `accelerator` is empty",
            c_acc[1],
            help=(
                "to fix: name the accelerator (e.g. A100), or set `accelerator_count` to 0 "
                "for a CPU instance",
            ),
        )
    c_mem = cell("accelerator_memory_gib")
    if c_acc is not None and not c_acc[0] and acc_mem is not None and c_mem is not None:
        sink.error(
            "E402",
            "`accelerator_memory_gib` is set on a CPU instance (empty `accelerator`)",
            c_mem[1],
            help=("to fix: leave it empty, or name the accelerator",),
        )

    if len(sink.items) > before or it_name is None or None in (count, vcpus, memory, ondemand):
        return None
    if acc_mem is None and accelerator is not None:
        acc_mem = accelerator_memory_gib(accelerator)
    return InstanceType(
        instance_type=it_name,
        accelerator=accelerator,
        accelerator_count=count,
        vcpus=vcpus,
        memory_gib=memory,
        ondemand_usd_per_hour=ondemand,
        spot_usd_per_hour=spot,
        cloud=cloud,
        region=region,
        accelerator_memory_gib=acc_mem,
        spot_preemptions_per_hour=default_rate if rate is None else rate,
        source=source,
        note=note,
        line=rec.line,
    )


#: Columns of free text (any one-line text); the other text columns hold names.
_TEXT_COLUMNS = frozenset({"source", "note"})

#: The largest value of each numeric column (``exo.compiler.limits``).
_LIMITS: dict[str, limits.Limit] = {
    "accelerator_count": limits.GPUS,
    "vcpus": limits.CPUS,
    "memory_gib": limits.SIZE_GIB,
    "ondemand_usd_per_hour": limits.PRICE_USD_PER_H,
    "spot_usd_per_hour": limits.PRICE_USD_PER_H,
    "spot_preemptions_per_hour": limits.PREEMPTIONS_PER_H,
    "accelerator_memory_gib": limits.SIZE_GIB,
}


def _bad_name(sink: DiagnosticSink, col: str, raw: str, span: Span, problem: str) -> None:
    if col in _TEXT_COLUMNS:
        rule = "to fix: keep the text on one line, without control characters"
    else:
        rule = "to fix: " + CATALOG_NAME_RULE
    sink.error(
        "E415",
        f"column `{col}`: '{excerpt(raw)}' is not allowed: {problem}",
        span,
        help=(rule,),
        notes=(
            "catalog names reach job scripts, node labels and file names, where they "
            "cannot be quoted; they are refused rather than rewritten",
        )
        if col not in _TEXT_COLUMNS
        else (),
    )


def _number_cell(
    sink: DiagnosticSink,
    col: str,
    raw: str,
    span: Span,
    *,
    whole: bool,
    required: bool,
    positive: bool,
) -> int | float | None:
    """The value of a numeric cell, or None after reporting why it is not one."""
    fix = "to fix: " + _FIX[col]
    if not raw:
        if required:
            sink.error("E402", f"column `{col}` is empty on this row", span, help=(fix,))
        return None
    kind = "a whole number" if whole else "a number"
    shown = excerpt(raw)
    if not _NUMBER.fullmatch(raw):
        cleaned = re.sub(r"[$€£\s]", "", raw)
        if "," in cleaned or "_" in cleaned:
            hint = (
                "to fix: write the number with a dot as the decimal mark and no thousands "
                "separators (e.g. 1.006, or 1006)"
            )
        elif cleaned != raw and _NUMBER.fullmatch(cleaned):
            hint = f"to fix: write the number without a currency sign: {excerpt(cleaned)}"
        else:
            hint = fix
        sink.error("E402", f"column `{col}` must be {kind}, got '{shown}'", span, help=(hint,))
        return None
    value = float(raw)
    limit = _LIMITS[col]
    if value < 0:
        sink.error("E402", f"column `{col}` must not be negative, got '{shown}'", span, help=(fix,))
        return None
    if not math.isfinite(value) or value > limit.high:
        sink.error(
            "E416",
            f"column `{col}` is {shown}, beyond the limit of {limit.shown} for {limit.what}",
            span,
            help=(fix,),
            notes=("catalog limits are listed in docs/catalogs.md",),
        )
        return None
    if whole and value != int(value):
        sink.error("E402", f"column `{col}` must be {kind}, got '{shown}'", span, help=(fix,))
        return None
    if positive and value == 0:
        sink.error(
            "E402", f"column `{col}` must be greater than 0, got '{shown}'", span, help=(fix,)
        )
        return None
    return int(value) if whole else value
