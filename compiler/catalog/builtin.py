"""The catalogs shipped with exo: ``exo.stdlib``'s ``catalogs/index.json`` and its files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from exo.compiler.packagedata import package_files
from exo.compiler.records import record


@record
class BuiltinInfo:
    """One ``index.json`` entry: where the CSV is and what the catalog says of itself."""

    name: str
    file: str
    snapshot: str | None
    source: str | None
    default_spot_preemptions_per_hour: float


def catalogs_dir() -> Any:
    return package_files("exo.stdlib").joinpath("catalogs")


@cache
def builtin_index() -> Mapping[str, BuiltinInfo]:
    raw = json.loads(catalogs_dir().joinpath("index.json").read_text(encoding="utf-8"))
    out: dict[str, BuiltinInfo] = {}
    for name, meta in raw["catalogs"].items():
        out[name] = BuiltinInfo(
            name=name,
            file=meta["file"],
            snapshot=meta.get("snapshot"),
            source=meta.get("source"),
            default_spot_preemptions_per_hour=float(meta["default_spot_preemptions_per_hour"]),
        )
    return out


def builtin_catalog_names() -> list[str]:
    """Names of the catalogs shipped with exo, sorted (``aws/us-east-1``, ...)."""
    return sorted(builtin_index())


def builtin_catalog_metadata(name: str) -> dict[str, Any]:
    """The ``index.json`` entry of a built-in catalog (snapshot, source, derivations)."""
    raw = json.loads(catalogs_dir().joinpath("index.json").read_text(encoding="utf-8"))
    meta: dict[str, Any] = raw["catalogs"][name]
    return meta


def builtin_text(info: BuiltinInfo) -> str:
    """The CSV text of a built-in catalog."""
    text: str = catalogs_dir().joinpath(info.file).read_text(encoding="utf-8")
    return text
