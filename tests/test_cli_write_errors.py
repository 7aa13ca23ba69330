"""An -o path that cannot be written is the user's to fix: exit 2 and say so, no E901."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import REPO
from .test_cli_frontend import exoc

QUICKSTART = str(REPO / "examples" / "quickstart.exo")


@pytest.mark.parametrize("fmt", ["json", "text", "markdown"])
def test_plan_output_in_a_missing_folder(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / "missing" / "plan.out"
    r = exoc("plan", QUICKSTART, "--format", fmt, "-o", str(target))
    assert r.returncode == 2, r.stderr
    assert "cannot write" in r.stderr and "E901" not in r.stderr


def test_compile_into_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    r = exoc("compile", QUICKSTART, "--target", "local", "-o", str(blocker))
    assert r.returncode == 2, r.stderr
    assert "cannot write" in r.stderr and "E901" not in r.stderr
