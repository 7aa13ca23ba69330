"""The folder of files shipped inside one of exo's packages (the grammar, the standard
library's modules, the built-in catalogs), for reading them.

Where the package is a folder of source or bytecode files (every install ``pip``
makes, editable or not), that folder is the same :class:`~pathlib.Path` that
``importlib.resources.files`` returns for it, found without importing
:mod:`importlib.resources` and its readers (``zipfile``, ``tempfile``, ...: about 1% of
``exoc check`` of a small file, docs/benchmarks.md, issue #16, seventh round). Anywhere
else (a zip archive, a custom loader) it is ``importlib.resources.files``'s answer.
"""

from __future__ import annotations

import importlib
from importlib.machinery import SourceFileLoader, SourcelessFileLoader
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def package_files(package: str) -> Traversable:
    """The files of ``package`` (a package's name, imported here if need be)."""
    spec = importlib.import_module(package).__spec__
    loader = spec.loader if spec is not None else None
    if isinstance(loader, SourceFileLoader | SourcelessFileLoader):
        # importlib.readers.FileReader, which a file loader's resource reader is
        return Path(loader.path).parent
    from importlib import resources

    return resources.files(package)
