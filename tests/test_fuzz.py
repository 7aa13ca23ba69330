"""Fuzzing the front end: random text, random bytes and mutated examples never raise
anything but the project's diagnostic error, and every diagnostic renders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exo.compiler.diagnostics import CompileError, render_all_text, render_json
from exo.compiler.frontend import compile_file

from .conftest import all_examples

#: Cases per test; CI runs thousands in all (EXO_FUZZ_EXAMPLES raises it for long runs).
EXAMPLES = int(os.environ.get("EXO_FUZZ_EXAMPLES", "1200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

SEEDS = [p.read_text("utf-8") for p in all_examples()]
TOKENS = [
    "workflow", "step", "dataset", "param", "import", "backend", "as", "{", "}", "[", "]",
    "=", ",", ":", "..", "\n", " ", "#", '"', "\\", "$", "w", "s", "d", "8h", "1h30m", "$5",
    "16GiB", "0.5", "10_000", "-1", "1e6", "2.5e-3", "1e999", "true", "input", "after", "items", "cpu", "duration",
    "throughput", "accelerators", "A100", "replicas", "1..4", "{batch_index}", "{{", "}}",
    '"std/llm"', '"./x.exo"', "catalog", '"aws/us-east-1"', "quota", "999999999999999999999",
]  # fmt: skip

_DIR = Path(tempfile.mkdtemp(prefix="exo-fuzz-"))


def _compile_bytes(data: bytes) -> None:
    path = _DIR / "case.exo"
    path.write_bytes(data)
    try:
        compile_file(path)
    except CompileError as e:
        assert e.diagnostics
        render_all_text(e.diagnostics, e.sources)
        render_json(e.diagnostics)
        for d in e.diagnostics:
            if d.span is not None:
                assert d.span.line >= 1 and d.span.column >= 1, d


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=80))
def test_token_soup(tokens: list[str]) -> None:
    _compile_bytes(" ".join(tokens).encode())


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _compile_bytes(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "duplicate", "swap"]),
            st.floats(0, 1),
            st.integers(1, 40),
            st.sampled_from(TOKENS),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_examples(seed: str, edits: list[tuple[str, float, int, str]]) -> None:
    text = seed
    for op, where, length, token in edits:
        i = int(where * len(text))
        if op == "delete":
            text = text[:i] + text[i + length :]
        elif op == "insert":
            text = text[:i] + token + text[i:]
        elif op == "duplicate":
            text = text[:i] + text[i : i + length] + text[i:]
        else:
            j = min(len(text), i + length)
            text = text[:i] + text[j : j + length] + text[i:j] + text[j + length :]
    _compile_bytes(text.encode())
