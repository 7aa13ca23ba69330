"""Start-up helpers of issue #16 (seventh round): :func:`exo.compiler.records.record`
(frozen for the type checker, plain slots at run time) and
:func:`exo.compiler.packagedata.package_files` (the package's folder without
:mod:`importlib.resources`)."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from importlib import resources
from pathlib import Path

import pytest

from exo.compiler import records, syntax
from exo.compiler.diagnostics import Span
from exo.compiler.packagedata import package_files
from exo.compiler.records import record


def test_a_record_is_a_slotted_dataclass_compared_by_identity() -> None:
    @record
    class Point:
        x: int
        y: int = 0

    p, q = Point(1), Point(1)
    assert dataclasses.is_dataclass(Point)
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y"]
    assert p != q and p == p and hash(p) != hash(q)  # identity, as eq=False gives
    assert (
        repr(p)
        == "test_a_record_is_a_slotted_dataclass_compared_by_identity.<locals>.Point(x=1, y=0)"
    )
    assert not hasattr(p, "__dict__")
    with pytest.raises(AttributeError):
        p.z = 1  # type: ignore[attr-defined]
    assert dataclasses.replace(p, y=2).y == 2


def _both(body: str) -> tuple[type, type]:
    """The same class body as a record and as the slotted dataclass ``record`` stands for."""
    made: list[type] = []
    for decorate in (record, dataclasses.dataclass(slots=True, eq=False)):
        namespace: dict[str, object] = {"field": dataclasses.field}
        exec(f"class Point:\n{body}", namespace)
        made.append(decorate(namespace["Point"]))  # type: ignore[arg-type]
    return made[0], made[1]


@pytest.mark.parametrize(
    "body",
    [
        '    """A point."""\n    x: int\n    y: "int | None" = None\n    z: str = "z"\n',
        '    """No fields."""\n',
        '    """A list each."""\n    x: int\n    ys: list = field(default_factory=list)\n',
        "    x: int\n",  # no docstring: dataclass writes one from the signature
        '    """Checked."""\n    x: int\n    def __post_init__(self):\n        pass\n',
    ],
    ids=["defaults", "empty", "factory", "undocumented", "post-init"],
)
def test_a_record_is_what_the_slotted_dataclass_would_be(body: str) -> None:
    """A record's ``__init__`` and ``__repr__`` are not compiled per class (issue #16,
    ninth round) but behave as the ones ``dataclass`` writes: same signature, defaults,
    annotations, stored values, ``repr`` and errors."""
    fast, slow = _both(body)
    assert inspect.signature(fast) == inspect.signature(slow)
    assert fast.__doc__ == slow.__doc__
    for attr in ("__defaults__", "__annotations__", "__qualname__", "__module__"):
        assert getattr(fast.__init__, attr) == getattr(slow.__init__, attr)  # type: ignore[misc]
    assert fast.__match_args__ == slow.__match_args__  # type: ignore[attr-defined]
    assert fast.__slots__ == slow.__slots__  # type: ignore[attr-defined]
    names = [f.name for f in dataclasses.fields(slow)]
    assert [f.name for f in dataclasses.fields(fast)] == names
    required = [p for p in inspect.signature(slow).parameters.values() if p.default is p.empty]
    args = [f"<{p.name}>" for p in required]
    a, b = fast(*args), slow(*args)
    assert repr(a) == repr(b)
    assert [getattr(a, n) for n in names] == [getattr(b, n) for n in names]
    wrong: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((*args, *range(5)), {}),
        ((), {"nope": 1}),
    ]
    if required:
        wrong.append(((), {}))
    for bad_args, bad_kwargs in wrong:
        with pytest.raises(TypeError) as fast_error:
            fast(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError) as slow_error:
            slow(*bad_args, **bad_kwargs)
        assert str(fast_error.value) == str(slow_error.value)


def test_a_record_repr_is_guarded_against_cycles_and_keeps_its_own() -> None:
    @record
    class Cell:
        """Holds anything, itself too."""

        value: object

    @record
    class Shown:
        """Says its own name."""

        x: int

        def __repr__(self) -> str:
            return "shown"

    cell = Cell(None)
    object.__setattr__(cell, "value", cell)
    assert repr(cell).endswith("Cell(value=...)")
    assert repr(Shown(1)) == "shown"


def test_a_record_with_a_default_before_a_required_field_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'y' follows default argument"):

        @record
        class Bad:
            """Out of order."""

            x: int = 0
            y: int  # type: ignore[misc]


def test_syntax_nodes_are_records_and_spans_stay_frozen() -> None:
    span = Span("a.exo", 1, 1, 1, 4)
    node = syntax.Ref(span, "abc")
    assert node != syntax.Ref(span, "abc")  # eq=False, as before
    assert node.__match_args__ == ("span", "name")
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.line = 2  # type: ignore[misc]  # hashed by value: truly frozen


def test_the_type_checker_refuses_assigning_to_a_record(tmp_path: Path) -> None:
    """The immutability a record keeps is the type checker's: ``make lint`` fails on an
    assignment to a field of a syntax node (or of any record). Checked on a copy of
    ``records.py`` itself, so that mypy needs no other module of exo."""
    mypy = pytest.importorskip("mypy.api")
    (tmp_path / "records_copy.py").write_text(Path(records.__file__).read_text("utf-8"))
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from records_copy import record\n\n\n"
        "@record\nclass Node:\n    name: str\n\n\n"
        'node = Node("a")\nnode.name = "b"\n'
    )
    out, _, code = mypy.run(
        ["--strict", "--no-incremental", str(probe), str(tmp_path / "records_copy.py")]
    )
    assert code == 1
    assert 'probe.py:10: error: Property "name" defined in "Node" is read-only' in out
    assert out.count("error:") == 1


@pytest.mark.parametrize("package", ["exo.stdlib", "exo.compiler"])
def test_package_files_is_what_importlib_resources_finds(package: str) -> None:
    assert package_files(package) == resources.files(package)
    assert isinstance(package_files(package), Path)


def test_package_files_of_a_zipped_package_is_importlib_resources_answer(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "pkgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_pkg/__init__.py", "")
        z.writestr("zipped_pkg/data.txt", "hello")
    sys.path.insert(0, str(archive))
    try:
        files = package_files("zipped_pkg")
        assert not isinstance(files, Path)
        assert files.joinpath("data.txt").read_text() == "hello"
    finally:
        sys.path.remove(str(archive))
        sys.modules.pop("zipped_pkg", None)
