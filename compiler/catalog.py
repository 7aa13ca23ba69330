"""Pricing catalogs: models, built-in catalogs and CSV loading with diagnostics."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class Catalog(Frozen):
    #: Built-in name (``aws/us-east-1``) or the path it was loaded from.
    name: str
    #: When the prices were collected (``YYYY-MM-DD`` or a description), if known.
    snapshot: str | None = None
    default_spot_preemptions_per_hour: float
    instances: tuple[InstanceType, ...]

    def accelerators(self) -> set[str]:
        return {i.accelerator for i in self.instances if i.accelerator}

    def instance_types(self) -> set[str]:
        return {i.instance_type for i in self.instances}

    def get(self, instance_type: str) -> InstanceType | None:
        for i in self.instances:
            if i.instance_type == instance_type:
                return i
        return None


def builtin_catalog_names() -> list[str]:
    raise NotImplementedError


def load_catalog(ref: str, base_dir: Path) -> Catalog:
    """Load a built-in catalog by name or a CSV path relative to ``base_dir``.

    Raises :class:`exo.compiler.diagnostics.CompileError` (codes E401/E402)
    with file, row and column for every bad cell.
    """
    raise NotImplementedError
