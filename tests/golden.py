"""One golden file per artifact: syrupy single-file snapshots whose file *is* the artifact.

``golden(snapshot, "yaml")`` asserts against ``__snapshots__/<test file>/<test id>.yaml``
holding the text exactly (no escaping, no indentation, newlines kept as written), so a
reviewer reads and diffs a manifest, a script or a report as itself. ``assert_files``
pins an emission of several files: one golden per file, named after it, plus
``[files].txt`` listing the file names, so an added or a missing file fails too.

Test ids hold ``/`` (``spec/examples/x.exo``), which a file name cannot: it is written
``~`` (``test_ir_golden[spec~examples~x.exo].json``), and an artifact's own path the
same way (``...[jobs~01-generate].yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from syrupy.assertion import SnapshotAssertion
from syrupy.data import SnapshotCollection
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation
from syrupy.types import SerializableData, SnapshotIndex

#: What stands for ``/`` in a golden's file name.
SLASH = "~"


def file_name(name: str) -> str:
    """A test id or an artifact path as one file name."""
    return name.replace("/", SLASH)


class Golden(SingleFileSnapshotExtension):
    """A text golden named after the test id; subclasses (``extension``) set the suffix."""

    _write_mode = WriteMode.TEXT
    file_extension = "txt"

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation, index: SnapshotIndex = 0) -> str:
        suffix = f"[{file_name(index)}]" if isinstance(index, str) else f".{index}" if index else ""
        name = cls._sanitize_filename(file_name(test_location.snapshot_name) + suffix)
        return name[: cls._max_stem_length()]

    @classmethod
    def matches_test_location(
        cls, *, test_location: PyTestLocation, snapshot_location: str
    ) -> bool:
        loc = Path(snapshot_location)
        stem = cls._snapshot_stem(loc.name)
        if stem is None or loc.parent.name != test_location.basename:
            return False
        if not test_location.matches_snapshot_site(snapshot_location):
            return False
        own = cls._sanitize_filename(file_name(test_location.snapshot_name_parametrized))
        return stem == own or stem.startswith((f"{own}[", f"{own}."))

    def read_snapshot_data_from_location(
        self, *, snapshot_location: str, snapshot_name: str, session_id: str
    ) -> SerializableData | None:
        try:
            # newline="": the golden's bytes are the artifact's, "\r" included.
            with Path(snapshot_location).open(encoding="utf-8", newline="") as f:
                return f.read()
        except FileNotFoundError:
            return None

    @classmethod
    def write_snapshot_collection(
        cls, *, snapshot_collection: SnapshotCollection, name_order: dict[str, int] | None = None
    ) -> None:
        data = next(iter(snapshot_collection)).data
        if not isinstance(data, str):
            raise TypeError(f"a golden holds text, not {type(data).__name__}")
        with Path(snapshot_collection.location).open("w", encoding="utf-8", newline="") as f:
            f.write(data)


@cache
def extension(suffix: str) -> type[Golden]:
    """The golden extension for files ending ``.suffix`` (one class per suffix)."""
    return type(f"Golden_{suffix}", (Golden,), {"file_extension": suffix})


def golden(snapshot: SnapshotAssertion, suffix: str, name: str | None = None) -> Any:
    """The snapshot to compare one artifact's text with (``name``: several per test)."""
    return snapshot(extension_class=extension(suffix), name=name)


def assert_files(snapshot: SnapshotAssertion, files: Mapping[str, str]) -> None:
    """Each file of an emission against its own golden, and the list of their names."""
    assert "".join(f"{name}\n" for name in sorted(files)) == golden(snapshot, "txt", "files")
    for name, text in sorted(files.items()):
        path = PurePosixPath(name)
        assert text == golden(snapshot, path.suffix[1:] or "txt", str(path.with_suffix("")))
