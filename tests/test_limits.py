"""Huge but legal numbers: a diagnostic at the value that names the limit, never E901.

Every number the front end and the catalog loader accept is within the limits
of ``exo.compiler.limits`` (documented in docs/language.md and docs/catalogs.md),
so that the cost model, the optimizer and the backends' 32-bit and 64-bit fields
only ever see values they can represent.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from exo.compiler import limits
from exo.compiler import values as V
from exo.compiler.catalog import CatalogError, parse_catalog
from exo.compiler.diagnostics import CompileError, DiagnosticSink, Span
from exo.compiler.frontend import compile_file
from exo.compiler.syntax import DurationLit, MoneyLit, Num, SizeLit

from .conftest import REPO
from .test_kubernetes_helpers import all_objects, emit, planned_from_file, validation_error

HEAD = "workflow w {\n  deadline = 8h\n  budget = $100\n}\n"
STEP = 'step s {\n  command = ["run"]\n  cpu = 1\n  duration = 1h\n'


def diagnostics(tmp_path: Path, text: str) -> list[tuple[str, int, int, str]]:
    path = tmp_path / "wf.exo"
    path.write_text(text, "utf-8")
    with pytest.raises(CompileError) as err:
        compile_file(path)
    return [
        (d.code, d.span.line, d.span.column, d.message)
        for d in err.value.diagnostics
        if d.span is not None
    ]


#: (text of the file, line and column of the value, limit as the message shows it)
OVER: list[tuple[str, int, int, str]] = [
    ("workflow w {\n  deadline = 999_999_999_999_999d\n}\n" + STEP + "}\n", 2, 14, "87600h"),
    ("workflow w {\n  deadline = 87601h\n}\n" + STEP + "}\n", 2, 14, "87600h"),
    ("workflow w {\n  budget = $999_999_999_999_999\n}\n" + STEP + "}\n", 2, 12, "$1_000_000_000"),
    ("workflow w {\n  quota { cpu = 2_000_000_000 }\n}\n" + STEP + "}\n", 2, 17, "1_000_000_000"),
    (HEAD + 'dataset d {\n  uri = "x"\n  items = 1_000_000_000_001\n}\n' + STEP + "}\n", 7, 11,
     "1_000_000_000_000"),
    (HEAD + STEP + "  items = 999_999_999_999_999\n}\n", 9, 11, "1_000_000_000_000"),
    (HEAD + STEP + "  retries = 3_000_000_000\n}\n", 9, 13, "1_000"),
    (HEAD + STEP + "  preemption_retries = 2_147_483_648\n}\n", 9, 24, "1_000"),
    (HEAD + STEP + "  timeout = 999_999_999h\n}\n", 9, 13, "87600h"),
    (HEAD + STEP + "  startup = 100000h\n}\n", 9, 13, "87600h"),
    (HEAD + STEP + "  memory = 2048TiB\n}\n", 9, 12, "1PiB"),
    (HEAD + STEP.replace("cpu = 1", "cpu = 65_536") + "}\n", 7, 9, "10_000"),
    (HEAD + 'step s {\n  command = ["run"]\n  accelerators = [A100]\n  gpus = 5000\n'
     "  duration = 1h\n}\n", 8, 10, "1_000"),
    (HEAD + 'step s {\n  command = ["run"]\n  items = 10\n  cpu = 1\n'
     "  replicas = 1..1_000_000_000\n  throughput { cpu = 1 }\n}\n", 9, 17, "100_000"),
    (HEAD + 'step s {\n  command = ["run"]\n  items = 10\n  cpu = 1\n'
     "  throughput { cpu = { 999_999_999_999_999: 1 } }\n}\n", 9, 24, "1_000_000_000_000"),
    (HEAD + 'step s {\n  command = ["run"]\n  items = 10\n  cpu = 1\n'
     "  throughput { cpu = 0.000_000_01 }\n}\n", 9, 22, "0.000001"),
    (HEAD + 'step s {\n  command = ["run"]\n  items = 10\n  cpu = 1\n'
     "  throughput { cpu = 999_999_999_999_999 }\n}\n", 9, 22, "1_000_000_000_000"),
    (HEAD + 'step s {\n  command = ["run"]\n  cpu = 1\n  duration { cpu = 100000h }\n}\n',
     8, 20, "87600h"),
    (HEAD + 'step s {\n  command = ["run"]\n  items = 10\n  cpu = 1\n'
     "  throughput { cpu = { 8: 1 } }\n  checkpoint = 100000h\n}\n", 10, 16, "87600h"),
    # through a param and through -p: reported where the value is used
    ("param n = 999_999_999_999_999\n" + HEAD + STEP + "  items = n\n}\n", 10, 11,
     "1_000_000_000_000"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "column", "limit"), OVER)
def test_values_beyond_the_limits_are_e203_at_the_value(
    tmp_path: Path, text: str, line: int, column: int, limit: str
) -> None:
    found = diagnostics(tmp_path, text)
    assert [(c, ln, col) for c, ln, col, _ in found] == [("E203", line, column)], found
    assert limit in found[0][3]


def test_param_overrides_meet_the_same_limits(tmp_path: Path) -> None:
    path = tmp_path / "wf.exo"
    path.write_text("param n = 10\n" + HEAD + STEP + "  items = n\n}\n")
    compile_file(path, {"n": "1_000_000_000_000"})  # at the limit: fine
    with pytest.raises(CompileError) as err:
        compile_file(path, {"n": "1_000_000_000_001"})
    assert [(d.code, d.span and d.span.line) for d in err.value.diagnostics] == [("E203", 10)]


SPAN = Span("x.exo", 3, 7, 3, 12)


@pytest.mark.parametrize(
    ("read", "value"),
    [
        (lambda s, v: V.integer(s, "items", v, limit=limits.ITEMS), Num(SPAN, 10**400, "1e400")),
        (lambda s, v: V.number(s, "rate", v, limit=limits.THROUGHPUT), Num(SPAN, math.inf, "1e400")),
        (lambda s, v: V.number(s, "rate", v), Num(SPAN, math.inf, "1e400")),
        (lambda s, v: V.number(s, "rate", v), Num(SPAN, 10**400, "1e400")),
        (lambda s, v: V.money_usd(s, "budget", v, limit=limits.AMOUNT_USD), MoneyLit(SPAN, 1e308, "$1e308")),
        (lambda s, v: V.money_usd(s, "budget", v, limit=limits.AMOUNT_USD), MoneyLit(SPAN, math.inf, "$1e400")),
        (lambda s, v: V.duration_h(s, "deadline", v, limit=limits.DURATION_H), DurationLit(SPAN, math.inf, "1e400h")),
        (lambda s, v: V.size_gib(s, "memory", v, limit=limits.SIZE_GIB), SizeLit(SPAN, 1e300, "1e300GiB")),
        (lambda s, v: V.int_range(s, "replicas", v, limit=limits.REPLICAS), Num(SPAN, 10**999, "1e999")),
    ],
)  # fmt: skip
def test_readers_refuse_what_floats_cannot_hold(read: object, value: object) -> None:
    """What a scientific-notation literal may produce (``1e400`` is infinite as a float,
    ``1e999`` as an integer is beyond any float): E203 at the value, no exception."""
    sink = DiagnosticSink()
    assert read(sink, value) is None  # type: ignore[operator]
    assert [(d.code, d.span) for d in sink.items] == [("E203", SPAN)]


CATALOG = (
    "instance_type,accelerator,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,"
    "spot_usd_per_hour,spot_preemptions_per_hour,accelerator_memory_gib\n"
)


@pytest.mark.parametrize(
    ("row", "column", "limit"),
    [
        ("a,,0,8,32,1e308,,,", 11, "1000000"),
        ("a,,0,8,32,1e400,,,", 11, "1000000"),
        ("a,,0,8,32,1.0,1e400,,", 15, "1000000"),
        ("a,,0,8,32,1.0,0.5,1e300,", 19, "60"),
        ("a,,0,1e999,32,1.0,,,", 6, "10_000"),
        ("a,,0,8,1e999,1.0,,,", 8, "1048576"),
        ("a,T4,1e10,8,32,1.0,,,", 6, "1_000"),
        ("a,T4,1,8,32,1.0,,,1e309", 19, "1048576"),
    ],
)
def test_catalog_numbers_beyond_the_limits_are_e416_at_the_cell(
    row: str, column: int, limit: str
) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(CATALOG + row + "\n", name="big.csv")
    (d,) = info.value.diagnostics
    assert (d.code, d.span and (d.span.line, d.span.column)) == ("E416", (2, column)), d
    assert limit in d.message


def test_documented_limits_match_the_code() -> None:
    """docs/language.md and docs/catalogs.md list the limits the code applies."""
    language = (REPO / "docs" / "language.md").read_text("utf-8")
    catalogs = (REPO / "docs" / "catalogs.md").read_text("utf-8")
    for limit in limits.ALL:
        shown = re.sub(r" \(.*\)$", "", limit.shown).removeprefix("$")
        assert shown in language or shown in catalogs, limit


def test_values_at_the_limits_compile_and_emit_valid_manifests(tmp_path: Path) -> None:
    """At the int32-bound limits, the Kubernetes objects still validate strictly."""
    path = tmp_path / "wf.exo"
    path.write_text(
        "workflow w {\n  deadline = 87600h\n  budget = $1_000_000_000\n"
        "  quota { cpu = 1_000_000_000 }\n}\n"
        'dataset d {\n  uri = "s3://b/d"\n  items = 1_000_000_000_000\n}\n'
        'step s {\n  input = d\n  image = "busybox:1.36"\n  command = ["run", "{batch_index}"]\n'
        "  cpu = 8\n  memory = 16GiB\n  batch_sizes = [1_000_000_000_000]\n"
        "  throughput { cpu = { 1_000_000_000_000: 1_000_000_000_000 } }\n"
        "  retries = 1_000\n  preemption_retries = 1_000\n  timeout = 87600h\n"
        "  checkpoint = batch\n}\n"
    )
    planned = planned_from_file(path)
    assert planned.plan.status != "infeasible"
    artifacts = emit(planned, namespace="limits")
    objects = all_objects(artifacts)
    assert objects
    for name, obj in objects:
        assert validation_error(obj, "1.33") is None, name
    job = next(o for n, o in objects if o["kind"] == "Job")
    assert job["spec"]["backoffLimitPerIndex"] == 1_000
    assert job["spec"]["template"]["spec"]["activeDeadlineSeconds"] == 87_600 * 3600


@pytest.mark.parametrize("p_duration_h", [1e16, math.inf])
def test_plan_figures_no_field_can_hold_are_e702_not_e901(
    tmp_path: Path, p_duration_h: float
) -> None:
    """A plan whose P-duration no Slurm --time (32-bit minutes) or Kubernetes
    activeDeadlineSeconds (int64) can hold is refused by the backends' checks."""
    from exo.backends.kubernetes import KubernetesBackend, KubernetesOptions
    from exo.backends.slurm import SlurmBackend, SlurmOptions

    path = tmp_path / "wf.exo"
    path.write_text(HEAD + STEP.replace("cpu = 1", 'cpu = 1\n  image = "busybox"') + "}\n")
    planned = planned_from_file(path)
    steps = [s.model_copy(update={"p_duration_h": p_duration_h}) for s in planned.plan.steps]
    huge = planned.model_copy(update={"plan": planned.plan.model_copy(update={"steps": steps})})
    for backend, options in (
        (SlurmBackend(), SlurmOptions()),
        (KubernetesBackend(), KubernetesOptions()),
    ):
        errors = [d for d in backend.check(huge, options) if d.severity == "error"]
        assert [d.code for d in errors] == ["E702"], (backend.name, errors)
        with pytest.raises(CompileError):
            backend.emit(huge, options)
