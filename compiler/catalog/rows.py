"""The catalog's columns and one row's validation: every bad cell reported with its span."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from exo.compiler import limits
from exo.compiler.accelerators import accelerator_memory_gib
from exo.compiler.catalog.models import InstanceType
from exo.compiler.csvcells import Record
from exo.compiler.diagnostics import DiagnosticSink, Span, excerpt
from exo.compiler.names import CATALOG_NAME_RULE, catalog_name_problem, text_problem
from exo.compiler.records import record

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


@record
class _Cells:
    """One record's cells by column name; each reader reports what is wrong with its cell."""

    rec: Record
    columns: Mapping[str, int]
    sink: DiagnosticSink

    def cell(self, col: str) -> tuple[str, Span] | None:
        idx = self.columns.get(col)
        if idx is None or idx >= len(self.rec.cells):
            return None
        return self.rec.cells[idx].strip(), self.rec.spans[idx]

    def number(self, col: str, *, whole: bool, required: bool, positive: bool = False) -> Any:
        c = self.cell(col)
        if c is None:
            return None
        return _number_cell(
            self.sink, col, c[0], c[1], whole=whole, required=required, positive=positive
        )

    def name(self, col: str) -> str | None:
        c = self.cell(col)
        if c is None or not c[0]:
            return None
        problem = (text_problem if col in _TEXT_COLUMNS else catalog_name_problem)(c[0])
        if problem is not None:
            _bad_name(self.sink, col, c[0], c[1], problem)
            return None
        return c[0]


def validate_row(
    rec: Record,
    columns: Mapping[str, int],
    width: int,
    default_rate: float,
    sink: DiagnosticSink,
) -> InstanceType | None:
    """The row as an :class:`InstanceType`, or None after reporting every bad cell."""
    before = len(sink.items)
    _check_width(rec, columns, width, sink)
    cells = _Cells(rec, columns, sink)
    c_it = cells.cell("instance_type")
    if c_it is not None and not c_it[0]:
        sink.error(
            "E402",
            "column `instance_type` is empty on this row",
            c_it[1],
            help=("to fix: " + _FIX["instance_type"],),
        )
    it_name = cells.name("instance_type")
    accelerator = cells.name("accelerator")
    cloud, region, source, note = (cells.name(c) for c in ("cloud", "region", "source", "note"))
    count = cells.number("accelerator_count", whole=True, required=True)
    vcpus = cells.number("vcpus", whole=True, required=True, positive=True)
    memory = cells.number("memory_gib", whole=False, required=True, positive=True)
    ondemand = cells.number("ondemand_usd_per_hour", whole=False, required=True)
    spot = cells.number("spot_usd_per_hour", whole=False, required=False)
    rate = cells.number("spot_preemptions_per_hour", whole=False, required=False)
    acc_mem = cells.number("accelerator_memory_gib", whole=False, required=False, positive=True)
    _check_accelerator(cells, accelerator, count, acc_mem)
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


def _check_width(rec: Record, columns: Mapping[str, int], width: int, sink: DiagnosticSink) -> None:
    """A row with more or fewer cells than the header has columns."""
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


def _check_accelerator(
    cells: _Cells, accelerator: str | None, count: int | None, acc_mem: float | None
) -> None:
    """The accelerator, its count and its memory must agree (a CPU instance has none)."""
    sink = cells.sink
    c_acc = cells.cell("accelerator")
    c_count = cells.cell("accelerator_count")
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
    c_mem = cells.cell("accelerator_memory_gib")
    if c_acc is not None and not c_acc[0] and acc_mem is not None and c_mem is not None:
        sink.error(
            "E402",
            "`accelerator_memory_gib` is set on a CPU instance (empty `accelerator`)",
            c_mem[1],
            help=("to fix: leave it empty, or name the accelerator",),
        )


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
