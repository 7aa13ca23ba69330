"""DESIGN §2 conformance: the spec's examples compile; its error cases fail where stated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exo.compiler.diagnostics import CompileError
from exo.compiler.frontend import compile_file

from .conftest import SPEC, example_id, spec_examples

ERRORS = sorted((SPEC / "errors").glob("*.exo"))
EXPECT = re.compile(r"#\s*expect:\s*(?P<pos>[0-9:|& ]+?)\s*--\s*(?P<what>.*)")


def expected_positions(path: Path) -> list[set[tuple[int, int]]]:
    """``A|B & C`` → [{A, B}, {C}]: each group needs one diagnostic at one of its positions."""
    m = EXPECT.match(path.read_text("utf-8").splitlines()[0])
    assert m, f"{path.name}: first line is not '# expect: POS -- text'"
    groups = []
    for group in m.group("pos").split("&"):
        alts = set()
        for alt in group.split("|"):
            line, col = alt.strip().split(":")
            alts.add((int(line), int(col)))
        groups.append(alts)
    return groups


def test_spec_inputs_present(spec_dir: Path) -> None:
    assert ERRORS, "no spec error cases found"
    assert spec_examples(), "no spec examples found"


@pytest.mark.parametrize("path", spec_examples(), ids=example_id)
def test_spec_example_compiles(path: Path) -> None:
    compiled = compile_file(path)
    assert compiled.program.steps
    assert compiled.program.workflow.name


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.name)
def test_spec_error_fails_at_stated_position(path: Path) -> None:
    with pytest.raises(CompileError) as info:
        compile_file(path)
    got = {(d.span.line, d.span.column) for d in info.value.diagnostics if d.span is not None}
    for alternatives in expected_positions(path):
        assert got & alternatives, (
            f"{path.name}: expected a diagnostic at one of {sorted(alternatives)}, got {sorted(got)}"
        )
    for d in info.value.diagnostics:
        assert re.fullmatch(r"E\d{3}", d.code)


def test_spec_error_messages_say_what_is_wrong() -> None:
    """The wording is a guide, but the key facts of each case must be in the message."""
    facts = {
        "bad_objective.exo": ["objective", "cost", "time", "cheapest"],
        "dependency_cycle.exo": ["cycle", "a -> b -> a"],
        "duplicate_step.exo": ["duplicate step 'prep'", "line 7"],
        "import_escape.exo": ["outside the project"],
        "missing_unit.exo": ["deadline", "duration", "number 8"],
        "no_performance_model.exo": ["throughput or duration"],
        "no_workflow.exo": ["workflow"],
        "syntax_missing_value.exo": ["unexpected '}'", "value"],
        "syntax_unclosed_block.exo": ["step 'a'", "not closed"],
        "throughput_missing_batch.exo": ["batch size 32", "A100"],
        "unknown_placeholder.exo": ["{bach_size}"],
        "unknown_reference.exo": ["summarise"],
    }
    for name, words in facts.items():
        with pytest.raises(CompileError) as info:
            compile_file(SPEC / "errors" / name)
        text = " ".join(d.message + " " + " ".join(d.help) for d in info.value.diagnostics)
        for w in words:
            assert w in text, f"{name}: {w!r} not in {text!r}"
    with pytest.raises(CompileError) as info:
        compile_file(SPEC / "errors" / "unknown_placeholder.exo")
    assert "did you mean {batch_size}?" in info.value.diagnostics[0].help
    with pytest.raises(CompileError) as info:
        compile_file(SPEC / "errors" / "unknown_reference.exo")
    assert "did you mean 'summarize'?" in info.value.diagnostics[0].help
