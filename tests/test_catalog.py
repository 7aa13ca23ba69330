"""Catalogs: the built-ins match their sources, user CSVs load, bad CSVs are reported
at the right row and column, all errors at once."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from exo.compiler.accelerators import ACCELERATORS, accelerator_memory_gib, accelerator_spec
from exo.compiler.catalog import (
    CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
    CatalogError,
    builtin_catalog_metadata,
    builtin_catalog_names,
    load_catalog,
    load_catalog_with_source,
    parse_catalog,
)
from exo.compiler.diagnostics import CompileError, Span, render_all_text

DATA = Path(__file__).parent / "data" / "catalogs"
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FACTS = SHARED / "reference" / "CLOUD-FACTS.md"
ONPREM = SHARED / "spec" / "examples" / "onprem"


# ----------------------------------------------------------------------------- built-ins


def test_builtin_names() -> None:
    assert builtin_catalog_names() == ["aws/us-east-1", "azure/eastus", "gcp/us-central1"]


@pytest.mark.parametrize("name", ["aws/us-east-1", "azure/eastus", "gcp/us-central1"])
def test_builtin_loads_with_metadata(name: str) -> None:
    cat = load_catalog(name, Path("/nonexistent"))
    assert cat.name == name
    assert cat.builtin
    assert cat.snapshot
    assert cat.source and "skypilot-org/skypilot-catalog" in cat.source
    meta = builtin_catalog_metadata(name)
    assert cat.default_spot_preemptions_per_hour == meta["default_spot_preemptions_per_hour"]
    assert meta["default_spot_preemptions_derivation"]
    cloud = name.split("/")[0]
    for row in cat.instances:
        assert row.cloud == cloud
        assert row.source and re.search(r"@ [0-9a-f]{40}$", row.source), row.source
        assert row.note, f"{row.instance_type} has no note"
        assert row.spot_usd_per_hour is not None
        assert row.spot_usd_per_hour < row.ondemand_usd_per_hour
        if row.accelerator:
            # every built-in accelerator is in the spec table
            assert row.accelerator in ACCELERATORS
            assert row.accelerator_memory_gib == ACCELERATORS[row.accelerator].memory_gib
        else:
            assert row.accelerator_count == 0
            assert row.accelerator_memory_gib is None


def test_builtin_is_package_data() -> None:
    root = resources.files("exo.stdlib").joinpath("catalogs")
    index = json.loads(root.joinpath("index.json").read_text(encoding="utf-8"))
    for name, meta in index["catalogs"].items():
        assert root.joinpath(meta["file"]).is_file(), name
        assert meta["file"] == f"{name}.csv"


def test_builtin_spot_checks() -> None:
    aws = load_catalog("aws/us-east-1", DATA)
    g5 = aws.get("g5.xlarge")
    assert g5 is not None
    assert (g5.accelerator, g5.accelerator_count, g5.vcpus, g5.memory_gib) == ("A10G", 1, 4, 16)
    assert g5.ondemand_usd_per_hour == 1.006
    assert g5.spot_usd_per_hour == 0.3970
    assert g5.accelerator_memory_gib == 24
    p4d = aws.get("p4d.24xlarge")
    assert p4d is not None
    assert (p4d.ondemand_usd_per_hour, p4d.spot_usd_per_hour) == (32.7726, 5.0933)
    assert p4d.accelerator_memory_gib == 40
    assert p4d.note and "pre-June-2025" in p4d.note
    p5en = aws.get("p5en.48xlarge")
    assert p5en is not None
    assert p5en.accelerator == "H200"
    assert p5en.accelerator_memory_gib == 141  # not the 80 the source metadata says
    assert (p5en.ondemand_usd_per_hour, p5en.spot_usd_per_hour) == (84.8, 24.2902)
    c6i = aws.get("c6i.xlarge")
    assert c6i is not None
    assert c6i.accelerator is None
    assert (c6i.ondemand_usd_per_hour, c6i.spot_usd_per_hour) == (0.17, 0.0632)

    gcp = load_catalog("gcp/us-central1", DATA)
    a3 = gcp.get("a3-highgpu-8g")
    assert a3 is not None
    assert a3.region == "us-east4"
    assert a3.note and "us-east4" in a3.note
    assert (a3.ondemand_usd_per_hour, a3.spot_usd_per_hour) == (87.83247, 15.80912)
    a2u = gcp.get("a2-ultragpu-1g")
    assert a2u is not None and a2u.region == "us-east5"
    assert gcp.get("n1-standard-8+1xT4") is not None

    azure = load_catalog("azure/eastus", DATA)
    nd = azure.get("Standard_ND96amsr_A100_v4")
    assert nd is not None
    assert (nd.accelerator, nd.accelerator_count, nd.vcpus, nd.memory_gib) == (
        "A100-80GB",
        8,
        96,
        1800,
    )
    assert (nd.ondemand_usd_per_hour, nd.spot_usd_per_hour) == (32.77, 3.6047)


def test_builtin_spot_preemption_rates() -> None:
    aws = load_catalog("aws/us-east-1", DATA)
    rates = {i.instance_type: i.spot_preemptions_per_hour for i in aws.instances}
    # AWS Spot Advisor buckets scaled to the 0.47/h p3.2xlarge trace (docs/catalogs.md)
    assert rates["p3.2xlarge"] == 0.47  # >20%: the measured trace rate
    assert rates["g4dn.xlarge"] == 0.329  # 15-20%
    assert rates["p4d.24xlarge"] == 0.235  # 10-15%
    assert rates["c6i.2xlarge"] == 0.141  # 5-10%
    assert rates["p4de.24xlarge"] == 0.047  # <5%
    assert rates["c6i.xlarge"] == aws.default_spot_preemptions_per_hour == 0.47  # no bucket
    gcp = load_catalog("gcp/us-central1", DATA)
    n2 = gcp.get("n2-standard-8")
    # 3 preemptions in 89 running hours of the two distinct c3-88 traces (docs/catalogs.md)
    assert n2 is not None and n2.spot_preemptions_per_hour == 0.034
    azure = load_catalog("azure/eastus", DATA)
    assert {i.spot_preemptions_per_hour for i in azure.instances} == {0.47}


def _facts_rows() -> list[dict[str, str]]:
    text = FACTS.read_text(encoding="utf-8")
    match = re.search(r"```csv\n(.*?)```", text, re.S)
    assert match is not None
    return list(csv.DictReader(io.StringIO(match.group(1))))


@pytest.mark.skipif(not FACTS.is_file(), reason="shared/reference not beside the checkout")
def test_builtins_match_the_facts_file_exactly() -> None:
    names = {"aws": "aws/us-east-1", "gcp": "gcp/us-central1", "azure": "azure/eastus"}
    expected: dict[str, set[str]] = {n: set() for n in names.values()}
    for r in _facts_rows():
        name = names[r["cloud"]]
        expected[name].add(r["instance_type"])
        row = load_catalog(name, DATA).get(r["instance_type"])
        assert row is not None, r["instance_type"]
        assert row.region == r["region"]
        assert (row.accelerator or "") == r["accelerator"]
        assert row.accelerator_count == int(r["accelerator_count"])
        assert row.vcpus == int(r["vcpus"])
        assert row.memory_gib == float(r["memory_gib"])
        assert row.ondemand_usd_per_hour == float(r["ondemand_usd_per_hour"])
        assert row.spot_usd_per_hour == float(r["spot_usd_per_hour"])
        if r["note"]:
            assert row.note and r["note"] in row.note
    for name, types in expected.items():
        assert load_catalog(name, DATA).instance_types() == types


# ----------------------------------------------------------------------------- user CSVs


@pytest.mark.skipif(not ONPREM.is_dir(), reason="shared/spec not beside the checkout")
def test_spec_onprem_catalog_loads() -> None:
    cat = load_catalog("./cluster.csv", ONPREM)
    assert cat.name == "./cluster.csv"
    assert cat.snapshot is None
    assert not cat.builtin
    assert len(cat.instances) == 6
    a100 = cat.get("a100x4")
    assert a100 is not None
    assert a100.accelerator_memory_gib == 80  # the row wins over the spec table (40)
    assert a100.spot_preemptions_per_hour == 0.08
    bigmem = cat.get("bigmem")
    assert bigmem is not None
    assert bigmem.spot_usd_per_hour is None  # no spot offer
    assert bigmem.spot_preemptions_per_hour == CUSTOM_DEFAULT_SPOT_PREEMPTIONS_PER_HOUR
    assert cat.accelerators() == {"A100", "L40S"}


@pytest.mark.skipif(not ONPREM.is_dir(), reason="shared/spec not beside the checkout")
def test_absolute_path() -> None:
    path = str(ONPREM / "cluster.csv")
    assert load_catalog(path, Path("/elsewhere")).name == path


def test_bom_crlf_blank_lines_header_case_and_extra_columns() -> None:
    cat, text = load_catalog_with_source("bom_crlf_ok.csv", DATA)
    assert text.startswith("Instance_Type")  # BOM dropped
    g1, g2 = cat.instances
    assert g1.accelerator == "MI300X"
    assert g1.accelerator_memory_gib is None  # unknown accelerator: memory fit unknown
    assert g1.spot_usd_per_hour is None
    assert g2.accelerator_memory_gib == 40  # `a100` found case-insensitively
    assert g2.spot_usd_per_hour == 0.8  # spaces around the number are fine
    assert (g1.line, g2.line) == (2, 4)


def test_accelerator_table() -> None:
    assert accelerator_memory_gib("H200") == 141
    assert accelerator_memory_gib("A100") == 40
    assert accelerator_memory_gib("a100-80gb") == 80
    assert accelerator_memory_gib("A100-40GB") == 40
    assert accelerator_memory_gib("TPU-v5e") is None
    t4 = accelerator_spec("T4")
    assert t4 is not None and t4.bf16_tflops is None and t4.fp16_tflops == 65
    h100 = accelerator_spec("H100")
    assert h100 is not None and (h100.bf16_tflops, h100.memory_bandwidth_gbps) == (989, 3350)
    assert set(ACCELERATORS) == {
        "T4",
        "A10G",
        "L4",
        "L40S",
        "V100",
        "A100",
        "A100-80GB",
        "H100",
        "H200",
    }


# ----------------------------------------------------------------------------- bad CSVs

#: file -> every (code, line, column) it must report, in source order.
BAD: dict[str, list[tuple[str, int, int]]] = {
    "missing_column.csv": [("E402", 1, 1)],
    "non_numeric_price.csv": [("E402", 2, 13)],
    "non_integer_vcpus.csv": [("E402", 2, 8)],
    "negative_values.csv": [("E402", 2, 10), ("E402", 2, 19)],
    "accelerator_zero_count.csv": [("E402", 2, 11)],
    "count_without_accelerator.csv": [("E402", 2, 5)],
    "duplicate_instance_type.csv": [("E402", 4, 1)],
    "empty.csv": [("E402", 1, 1)],
    "blank_lines_only.csv": [("E402", 1, 1)],
    "header_only.csv": [("E402", 1, 1)],
    "not_utf8.csv": [("E402", 2, 23)],
    "too_few_cells.csv": [("E402", 2, 20)],
    "too_many_cells.csv": [("E402", 2, 21)],
    "unclosed_quote.csv": [("E402", 2, 21)],
    "typo_column.csv": [("E402", 1, 102)],
    "currency_zero_nan.csv": [("E402", 2, 13), ("E402", 3, 9), ("E402", 3, 19)],
    # quoted cells (with commas, doubled quotes and a line break) before the bad one
    "quoted_cells.csv": [("E402", 4, 38)],
    "quoted_bad_price.csv": [("E402", 2, 28)],
    "many_errors.csv": [
        ("E402", 3, 6),  # accelerator_count 1 with no accelerator
        ("E402", 3, 9),  # vcpus 'eight'
        ("E402", 4, 1),  # empty instance_type
        ("E402", 4, 12),  # memory -1
        ("E402", 4, 15),  # price 'x'
        ("E402", 4, 21),  # preemptions -0.1
        ("E402", 5, 21),  # accelerator memory on a CPU row
    ],
}


def test_corpus_is_complete() -> None:
    assert {p.name for p in DATA.glob("*.csv")} == set(BAD) | {"bom_crlf_ok.csv"}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_catalog(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)  # files are named from the current directory
    with pytest.raises(CatalogError) as info:
        load_catalog(name, DATA)
    err = info.value
    assert isinstance(err, CompileError)
    got = [(d.code, d.span.line, d.span.column) for d in err.diagnostics if d.span]
    assert got == BAD[name]
    for d in err.diagnostics:
        assert d.span is not None and d.span.file == name
        assert d.help, d.message
    # the renderer can show every line with a caret
    assert name in err.sources
    rendered = render_all_text(err.diagnostics, err.sources).plain
    if err.sources[name].strip():
        assert rendered.count("^") >= len(err.diagnostics)


def _only(name: str) -> tuple[str, tuple[str, ...], Span]:
    with pytest.raises(CatalogError) as info:
        load_catalog(name, DATA)
    (d,) = info.value.diagnostics
    assert d.span is not None
    return d.message, d.help, d.span


def test_messages_read_like_advice() -> None:
    message, help, span = _only("non_integer_vcpus.csv")
    assert message == "column `vcpus` must be a whole number, got 'eight'"
    assert help[0].startswith("to fix: ")
    assert (span.end_column - span.column) == len("eight")

    message, help, span = _only("quoted_bad_price.csv")
    assert message == "column `ondemand_usd_per_hour` must be a number, got '1,006'"
    assert "decimal mark" in help[0]
    assert (span.end_column - span.column) == len('"1,006"')  # the quotes are underlined too

    message, help, _ = _only("missing_column.csv")
    assert message == "catalog header has no `vcpus` column"

    message, help, _ = _only("typo_column.csv")
    assert help == ("did you mean `spot_preemptions_per_hour`?",)

    message, help, _ = _only("duplicate_instance_type.csv")
    assert message == "instance type `gpu1` is listed twice"

    message, help, _ = _only("accelerator_zero_count.csv")
    assert message == "accelerator `A100` is set but `accelerator_count` is 0"


def test_currency_sign_hint() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog("currency_zero_nan.csv", DATA)
    first = info.value.diagnostics[0]
    assert first.help == ("to fix: write the number without a currency sign: 0.38",)


def test_render_shows_only_the_offending_cell() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog("quoted_cells.csv", DATA)
    text = render_all_text(info.value.diagnostics, info.value.sources).plain
    assert "quoted_cells.csv:4:38: error[E402]" in text
    # The cell at its place, the rest of the row blanked: a catalog error never
    # shows more of the file than the cell it is about.
    assert "\n4 | " + " " * 37 + '"8.5"\n' in text
    assert "\n  | " + " " * 37 + "^^^^^\n" in text
    assert "quoted-name" not in text and "note" not in text and "big-box" not in text


def test_not_utf8_renders() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog("not_utf8.csv", DATA)
    text = render_all_text(info.value.diagnostics, info.value.sources).plain
    assert "not valid UTF-8" in text
    assert "UTF-8" in info.value.diagnostics[0].help[0]


def test_multiline_cell_lines_are_counted() -> None:
    text = 'instance_type,accelerator,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,spot_usd_per_hour,note\na,,0,1,2,0.1,0.05,"x\ny\nz"\nb,,0,1,2,oops,0.05,\n'
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, name="inline.csv")
    (d,) = info.value.diagnostics
    assert d.span == Span("inline.csv", 5, 10, 5, 14)


# ----------------------------------------------------------------------------- not found


def test_not_found_suggests_builtin() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog("aws/us-east1", DATA)
    (d,) = info.value.diagnostics
    assert d.code == "E401"
    assert d.message == "catalog `aws/us-east1` not found"
    assert d.help[0] == "did you mean the built-in catalog `aws/us-east-1`?"
    assert any("built-in catalogs:" in h for h in d.help)


def test_not_found_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA.parent)
    where = Span.point("flow.exo", 3, 15)
    with pytest.raises(CatalogError) as info:
        load_catalog("./prices.csv", DATA, ref_span=where)
    (d,) = info.value.diagnostics
    assert d.code == "E401"
    assert d.span == where
    assert d.notes == (f"looked for catalogs{os.sep}prices.csv",)
    assert d.help == (
        "to fix: check the path; a relative path in the workflow is read from the folder of "
        f"the .exo file (catalogs{os.sep})",
    )
    assert not any("did you mean" in h for h in d.help)


def test_files_are_named_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``catalog = "./bad.csv"`` in x/wf.exo, checked from x's parent, is x/bad.csv."""
    (tmp_path / "x").mkdir()
    shutil.copy(DATA / "non_integer_vcpus.csv", tmp_path / "x" / "bad.csv")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CatalogError) as info:
        load_catalog("./bad.csv", tmp_path / "x")
    (d,) = info.value.diagnostics
    assert d.span is not None and d.span.file == f"x{os.sep}bad.csv"
    assert f"x{os.sep}bad.csv" in info.value.sources
    with pytest.raises(CatalogError) as info:
        load_catalog("x/bad.csv", tmp_path, given_on_cli=True)
    assert info.value.diagnostics[0].span.file == f"x{os.sep}bad.csv"  # type: ignore[union-attr]


def test_a_cli_catalog_is_read_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CatalogError) as info:
        load_catalog("nope.csv", tmp_path, given_on_cli=True)
    (d,) = info.value.diagnostics
    assert d.help == (
        "to fix: check the path; a relative --catalog path is read from the current directory",
    )
    assert d.notes == ("looked for nope.csv",)
    assert "folder of the .exo file" not in " ".join(d.help)


def test_folder_is_not_a_catalog() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(".", DATA)
    (d,) = info.value.diagnostics
    assert d.code == "E401"
    assert "folder" in d.message


def test_path_with_csv_suffix_of_a_builtin_name() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog("gcp/us-central1.csv", DATA)
    (d,) = info.value.diagnostics
    assert d.help[0] == "did you mean the built-in catalog `gcp/us-central1`?"


def test_docs_tables_match_the_builtins() -> None:
    docs = (REPO / "docs" / "catalogs.md").read_text(encoding="utf-8")
    root = resources.files("exo.stdlib").joinpath("catalogs")
    for name in builtin_catalog_names():
        meta = builtin_catalog_metadata(name)
        section = docs.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert f"Default λ: **{meta['default_spot_preemptions_per_hour']}/h**" in section
        text = root.joinpath(meta["file"]).read_text(encoding="utf-8")
        for r in csv.DictReader(io.StringIO(text)):
            (line,) = [
                ln for ln in section.splitlines() if ln.startswith(f"| `{r['instance_type']}` |")
            ]
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert r["ondemand_usd_per_hour"] in cells, line
            assert r["spot_usd_per_hour"] in cells, line
            assert (r["spot_preemptions_per_hour"] or "default") in cells, line
