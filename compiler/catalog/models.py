"""The catalog's values: one row (:class:`InstanceType`), a whole catalog, its errors."""

# No ``from __future__ import annotations``: pydantic would evaluate each field's
# annotation from its text (a compile per field) when the models are built, at every
# start of ``exoc`` (docs/benchmarks.md, issue #16, seventh round).
from collections.abc import Mapping, Sequence

from pydantic import field_validator

from exo.compiler.csvcells import redact
from exo.compiler.diagnostics import CompileError, Diagnostic, excerpt, sort_diagnostics
from exo.compiler.frozen import Frozen, find_by
from exo.compiler.names import catalog_name_problem


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
        return find_by(self.instances, "instance_type", instance_type)


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
