"""docs/diagnostics.md documents exactly the registered codes."""

from __future__ import annotations

import re

from exo.compiler.diagnostics import CODES

from .conftest import REPO


def test_every_code_is_documented_and_every_documented_code_exists() -> None:
    text = (REPO / "docs" / "diagnostics.md").read_text("utf-8")
    documented = set(re.findall(r"^### (E\d{3}) — ", text, re.MULTILINE))
    assert documented == set(CODES), {
        "undocumented": sorted(set(CODES) - documented),
        "unknown": sorted(documented - set(CODES)),
    }
