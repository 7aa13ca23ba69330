"""Pricing catalogs: models, built-in catalogs and CSV loading with diagnostics.

A catalog is a CSV file with the DESIGN §3 columns. The built-in catalogs live in
``exo.stdlib`` (``catalogs/<cloud>/<region>.csv``) and are described by
``catalogs/index.json`` (snapshot, source, default spot preemption rate). A user
catalog is any CSV path, relative to the folder of the ``.exo`` file (or absolute).

:func:`load_catalog` validates every cell and reports every problem at once, as
:class:`CatalogError` (a :class:`CompileError`) whose spans point at the row and
column of the bad cell; :attr:`CatalogError.sources` carries the CSV text so the
diagnostics renderer can show the line with a caret. See ``docs/catalogs.md``.

The package is split by job:

- ``models``: :class:`InstanceType`, :class:`Catalog`, :class:`CatalogError`;
- ``builtin``: the index of the catalogs shipped with exo;
- ``table``: a CSV text read as a header and rows, with spans (:func:`parse_catalog`);
- ``rows``: the columns and one row's validation;
- ``loading``: a reference (built-in name or path) to a catalog (:func:`load_catalog`).
"""

from __future__ import annotations

from exo.compiler.catalog.builtin import builtin_catalog_metadata, builtin_catalog_names
from exo.compiler.catalog.loading import (
    builtin_catalogs_offering,
    load_catalog,
    load_catalog_with_source,
    shown_path,
)
from exo.compiler.catalog.models import Catalog, CatalogError, InstanceType
from exo.compiler.catalog.rows import (
    CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
    KNOWN_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
)
from exo.compiler.catalog.table import parse_catalog

__all__ = [
    "CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR",
    "KNOWN_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Catalog",
    "CatalogError",
    "InstanceType",
    "builtin_catalog_metadata",
    "builtin_catalog_names",
    "builtin_catalogs_offering",
    "load_catalog",
    "load_catalog_with_source",
    "parse_catalog",
    "shown_path",
]
