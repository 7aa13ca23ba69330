"""Golden files per stage: the IR of every example, rendered diagnostics of bad inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.compiler.diagnostics import CompileError, render_all_text, render_json
from exo.compiler.frontend import compile_file

from .conftest import REPO, all_examples, example_id
from .golden import golden

BAD = sorted((REPO / "tests" / "data" / "bad").glob("*.exo"))


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_ir_golden(path: Path, snapshot: SnapshotAssertion) -> None:
    program = compile_file(path).program
    assert json.dumps(program.model_dump(mode="json"), indent=2, sort_keys=True) == golden(
        snapshot, "json"
    )


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_diagnostics_golden(
    path: Path, snapshot: SnapshotAssertion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from the tests folder and name the file from there, as a user would, so the
    # goldens do not depend on the checkout path (catalog files are named from there too).
    monkeypatch.chdir(REPO / "tests")
    label = os.path.relpath(path, REPO / "tests")
    with pytest.raises(CompileError) as info:
        compile_file(path, label=label)
    text = render_all_text(info.value.diagnostics, info.value.sources).plain
    assert text == golden(snapshot, "txt", "text")
    data = json.loads(render_json(info.value.diagnostics))
    assert all(d["span"] is None or d["span"]["file"] for d in data["diagnostics"])
    assert render_json(info.value.diagnostics) == golden(snapshot, "json", "json")
