"""Shared fixtures: where the repo, its examples and the shared spec inputs are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SPEC = SHARED / "spec"


def spec_examples() -> list[Path]:
    """Entry files of the spec's examples (modules that only hold datasets are imported)."""
    files = sorted(SPEC.glob("examples/**/*.exo"))
    return [f for f in files if _declares_workflow(f)]


def repo_examples() -> list[Path]:
    files = sorted((REPO / "examples").glob("**/*.exo"))
    return [f for f in files if _declares_workflow(f)]


def _declares_workflow(path: Path) -> bool:
    return re.search(r"^workflow\s", path.read_text("utf-8"), re.MULTILINE) is not None


def all_examples() -> list[Path]:
    return spec_examples() + repo_examples()


def example_id(path: Path) -> str:
    """``spec/examples/x.exo`` or ``repo/examples/x.exo``: unique across both sets."""
    for prefix, base in (("spec", SPEC), ("repo", REPO)):
        if path.is_relative_to(base):
            return f"{prefix}/{path.relative_to(base)}"
    return path.name


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    if not SPEC.is_dir():
        pytest.fail(f"the shared spec inputs are missing: expected {SPEC} beside the checkout")
    return SPEC


@pytest.fixture(autouse=True)
def _own_plan_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test keeps its plans in a folder of its own (``EXO_PLAN_CACHE``): a plan one
    test made is never reused by another, and the user's cache is never touched."""
    folder = tmp_path_factory.mktemp("plans")
    monkeypatch.setenv("EXO_PLAN_CACHE", str(folder))
    return folder
