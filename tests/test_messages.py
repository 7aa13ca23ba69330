"""Messages a new user meets: every error of a file after a syntax error or a bad unit,
no knock-on errors, scientific notation, cycles seen from the entry file, totals
across files, suggestions that name the right thing, and backend warnings with
``file:line``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from exo.backends.registry import installed
from exo.compiler import parser
from exo.compiler.cli import app
from exo.compiler.diagnostics import CompileError, Diagnostic, suggest
from exo.compiler.frontend import compile_file

HEAD = """workflow w {
  deadline = 8h
  budget   = $100
  catalog  = "aws/us-east-1"
}
"""


def diagnostics(tmp_path: Path, text: str, name: str = "flow.exo") -> list[Diagnostic]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CompileError) as info:
        compile_file(path, label=name)
    return list(info.value.diagnostics)


def where(diags: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in diags if d.span is not None]


# --- recovery after syntax errors and bad literals --------------------------------------


SEVERAL = """workflow w {
  deadline = 8hrs
  budget   = $10
  catalog  = "aws/us-east-1"
}

step a {
  items    = 1000
  command  = ["echo"]
  cpu      = 1
  memory   = 4Gib
  throughput { cpu = 10 }
}

step b {
  input = a
  cpu = = 1
  command = ["echo"]
}

step c {
  input = a
  cpu   = 1
  duration = 1h
  replicas = 1..
}

step d {
  input = a
  cpu = 1
  duration = 10m
"""


def test_every_syntax_error_and_bad_literal_of_a_file_is_reported(tmp_path: Path) -> None:
    d = diagnostics(tmp_path, SEVERAL)
    assert where(d) == [
        ("E010", 2, 15),  # 8hrs
        ("E010", 11, 15),  # 4Gib
        ("E003", 17, 9),  # cpu = = 1
        ("E003", 26, 1),  # replicas = 1.. then '}'
        ("E005", 28, 8),  # step d is never closed
    ]
    assert "did you mean 'GiB'?" in d[1].help


def test_an_unclosed_block_before_the_next_declaration(tmp_path: Path) -> None:
    text = HEAD + "step a {\n  cpu = 1\n  duration = 1m\n\nstep b {\n  cpu = = 2\n}\n"
    d = diagnostics(tmp_path, text)
    assert where(d) == [("E005", 6, 8), ("E003", 11, 9)]
    assert d[0].message == (
        "syntax error: block of step 'a' is not closed (the next declaration starts at line 10)"
    )


def test_the_spec_syntax_errors_keep_their_position(spec_dir: Path) -> None:
    for name, first in (
        ("syntax_missing_value.exo", (9, 11)),
        ("syntax_unclosed_block.exo", (7, 8)),
    ):
        with pytest.raises(CompileError) as info:
            compile_file(spec_dir / "errors" / name)
        d = info.value.diagnostics[0]
        assert d.span is not None and (d.span.line, d.span.column) == first


def test_a_bad_unit_does_not_stop_the_other_checks(tmp_path: Path) -> None:
    text = HEAD.replace("8h", "8hrs") + (
        "step s {\n  cpu = 1\n  duration = 1h\n  durration = 5m\n  memory = 16Gib\n}\n"
    )
    d = diagnostics(tmp_path, text)
    assert [x.code for x in d] == ["E010", "E104", "E010"]  # before: only the first E010
    assert not any(x.code == "E201" for x in d)  # no type error on the stand-in values


def test_a_param_carrying_a_bad_literal_is_reported_once(tmp_path: Path) -> None:
    text = "param d = 8hrs\n" + HEAD.replace("deadline = 8h", "deadline = d")
    text += "step s { cpu = 1 duration = 1h }\n"
    assert where(diagnostics(tmp_path, text)) == [("E010", 1, 12)]


def test_recovery_is_bounded() -> None:
    most = parser.MAX_SYNTAX_ERRORS
    text = "".join(f"step s{i} {{ cpu = = 1 }}\n" for i in range(3 * most))
    parsed = parser.parse_recovering(text, "many.exo")
    assert len(parsed.syntax_errors) == most


def test_a_misspelt_input_has_no_knock_on_item_count_error(tmp_path: Path) -> None:
    text = HEAD + (
        "dataset docs { items = 100 }\n"
        "step a { inptu = docs  cpu = 1  throughput { cpu = 10 } }\n"
        "step b { input = a  cpu = 1  throughput { cpu = 10 } }\n"
    )
    d = diagnostics(tmp_path, text)
    assert [x.code for x in d] == ["E104"]  # before: E104 and E306 (twice with step b)
    assert "did you mean `input`?" in d[0].help


# --- scientific notation ------------------------------------------------------------------


def test_scientific_notation_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "flow.exo"
    path.write_text(
        HEAD + "step s { items = 1e6  cpu = 1  throughput { cpu = 2.5e3 } }\n", encoding="utf-8"
    )
    step = compile_file(path).program.step("s")
    assert step.items == 1_000_000 and isinstance(step.items, int)
    assert step.throughput is not None


@pytest.mark.parametrize(
    ("literal", "code", "message"),
    [
        ("1e999", "E009", "number '1e999' is too large"),
        ("1e15", "E009", "number '1e15' is too large"),
        ("1e-999", "E009", "number '1e-999' is too small"),
        ("1e6s", "E010", "a number in scientific notation cannot take a unit: '1e6s'"),
    ],
)
def test_scientific_notation_out_of_range(
    tmp_path: Path, literal: str, code: str, message: str
) -> None:
    d = diagnostics(tmp_path, HEAD + f"step s {{ items = {literal}  cpu = 1  duration = 1h }}\n")
    assert [(x.code, x.message) for x in d] == [(code, message)]


def test_the_language_docs_describe_scientific_notation() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "language.md").read_text(encoding="utf-8")
    assert "`1e6`" in docs and "scientific notation" in docs.lower()


# --- imports, several files ---------------------------------------------------------------


def test_an_import_cycle_through_the_entry_file_is_reported_at_its_import(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.exo").write_text('import "./flow.exo"\n', encoding="utf-8")
    d = diagnostics(tmp_path, 'import "./a.exo"\n' + HEAD)
    assert [(x.code, Path(x.span.file).name, x.span.line) for x in d if x.span] == [
        ("E111", "a.exo", 1),
        ("E111", "flow.exo", 1),  # where the user is looking
    ]
    assert "flow.exo -> a.exo -> flow.exo" in d[1].message


def test_check_of_several_files_gives_a_grand_total(tmp_path: Path) -> None:
    good = tmp_path / "good.exo"
    good.write_text(HEAD + "step s { cpu = 1 duration = 1h }\n", encoding="utf-8")
    bad = tmp_path / "bad.exo"
    bad.write_text(HEAD + "step s { cpu = 1 durration = 1h zzz = 1 }\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(good), str(bad), str(bad)])
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"6 errors in 2 of 3 files checked: {bad}, {bad}"  # before: no total
    ok = CliRunner().invoke(app, ["check", str(good), str(good)])
    assert ok.exit_code == 0 and ok.stderr.strip() == "ok: 2 files checked"


# --- suggestions --------------------------------------------------------------------------


def test_k8s_suggests_kubernetes() -> None:
    assert suggest("k8s", ["kubernetes", "local", "slurm"]) == "kubernetes"
    assert suggest("kube", ["kubernetes", "local", "slurm"]) == "kubernetes"
    found = installed().lookup("k8s")
    assert isinstance(found, list)
    assert "did you mean `kubernetes`?" in found[0].help


def test_an_accelerator_of_another_catalog_names_that_catalog(tmp_path: Path) -> None:
    text = HEAD + (
        "step s {\n  items = 100\n  accelerators = [A10G]\n  throughput { A10G = { 8: 1.0 } }\n}\n"
    )
    path = tmp_path / "flow.exo"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CompileError) as info:
        compile_file(path, catalog="gcp/us-central1")
    first = info.value.diagnostics[0]
    assert first.code == "E403"
    assert "`A10G` is offered by the built-in catalog `aws/us-east-1`" in first.help[0]
    assert not any("A100" in h and "did you mean" in h for h in first.help)


def test_a_misspelt_accelerator_still_gets_a_spelling_suggestion(tmp_path: Path) -> None:
    text = HEAD + "step s {\n  items = 100\n  accelerators = [A10O]\n  duration = 1h\n}\n"
    d = diagnostics(tmp_path, text)
    assert d[0].code == "E403" and d[0].help[0] == "did you mean `A10G`?"


# --- backend warnings carry file:line -----------------------------------------------------


@pytest.mark.parametrize("target", ["slurm", "kubernetes"])
def test_backend_warnings_point_at_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "wf.exo").write_text(
        HEAD + 'step a {\n  items = 1000\n  command = ["echo"]\n  cpu = 1\n'
        "  throughput { cpu = 10 }\n}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compile", "x/wf.exo", "--target", target, "-o", "out"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning[E702]" in line]
    assert warnings, result.stderr
    assert all(line.startswith("x/wf.exo:6:6: warning[E702]") for line in warnings), warnings
    assert "6 | step a {" in result.stderr  # the source line is shown
