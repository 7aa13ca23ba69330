"""A catalog CSV read as a table: the header's columns, then one validated row per record.

Cells and their spans come from :mod:`exo.compiler.csvcells`; every problem is
collected, and :func:`parse_catalog` raises them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from exo.compiler.catalog.models import Catalog, CatalogError, InstanceType
from exo.compiler.catalog.rows import (
    CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
    KNOWN_COLUMNS,
    REQUIRED_COLUMNS,
    validate_row,
)
from exo.compiler.csvcells import Record, header_span
from exo.compiler.csvcells import records as csv_records
from exo.compiler.diagnostics import Diagnostic, DiagnosticSink, Span, excerpt, suggest

_HEADER_HELP = "to fix: the first line must be the header: " + ",".join(REQUIRED_COLUMNS)


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
                "E402", "catalog file is empty", Span.point(file, 1, 1), help=(_HEADER_HELP,)
            )
        raise CatalogError(sink.items, {file: text})
    columns = _header_columns(header, file, sink)
    instances = _rows(records, columns, len(header.cells), default_spot_preemptions_per_hour, sink)
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


def _header_columns(header: Record, file: str, sink: DiagnosticSink) -> dict[str, int]:
    """Column name → index; a duplicate, a misspelt or a missing column is reported."""
    if not any(cell.strip().lower() in KNOWN_COLUMNS for cell in header.cells):
        # Not a catalog at all (a wrong path, a secrets file...): say so without
        # showing any of it.
        diag = Diagnostic(
            "E402",
            "this file is not a catalog: its first line names none of the catalog columns",
            Span.point(file, header.line, 1),
            help=(_HEADER_HELP,),
            notes=("nothing of the file is shown, in case it holds something private",),
        )
        raise CatalogError([diag], {})
    columns: dict[str, int] = {}
    written = {c.strip().lower() for c in header.cells}
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
            if guess is not None and guess not in written:
                sink.error(
                    "E402",
                    f"unknown column `{excerpt(cell.strip())}`",
                    span,
                    help=(f"did you mean `{guess}`?",),
                    notes=("columns with other names are ignored",),
                )
            continue
        columns[col] = idx
    for col in (c for c in REQUIRED_COLUMNS if c not in columns):
        sink.error(
            "E402",
            f"catalog header has no `{col}` column",
            header_span(header),
            help=("to fix: add the column; required columns: " + ", ".join(REQUIRED_COLUMNS),),
        )
    return columns


def _rows(
    records: Iterator[Record],
    columns: dict[str, int],
    width: int,
    default_rate: float,
    sink: DiagnosticSink,
) -> list[InstanceType]:
    """Every valid row; an instance type listed twice is reported at its second row."""
    instances: list[InstanceType] = []
    first_line: dict[str, int] = {}
    it_idx = columns.get("instance_type")
    for rec in records:
        row = validate_row(rec, columns, width, default_rate, sink)
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
    return instances
