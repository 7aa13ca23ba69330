"""Step attributes read once per distinct value and scope (``compiler/lowermemo.py``):
the same IR and the same diagnostics as reading every attribute at every place."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from exo.compiler import lower
from exo.compiler.diagnostics import CompileError, render_json
from exo.compiler.frontend import compile_file
from exo.compiler.lowermemo import value_key
from exo.compiler.parser import ExoParser
from exo.compiler.syntax import Attr, Decl

REPO = Path(__file__).resolve().parent.parent

HEAD = """
workflow w {
  deadline = 8h
  budget   = $100
  catalog  = "aws/us-east-1"
}
"""


def outcome(path: Path) -> str:
    """The IR's JSON and the warnings, or every diagnostic, as one text."""
    try:
        c = compile_file(path)
    except CompileError as e:
        return "error " + render_json(list(e.diagnostics))
    return c.program.model_dump_json() + render_json(list(c.warnings))


def both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    memo = outcome(path)
    with monkeypatch.context() as m:
        m.setattr(lower, "_read_once", lambda r, a, e, got: a.read(r, e, got))
        every = outcome(path)
    return memo, every


def test_values_read_once_give_the_same_outcome_with_errors_at_every_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeated values, good and bad, in two scopes whose params differ: each error is
    reported at each of its places, and each scope reads its own params."""
    step = (
        "step s{i} {{ cpu = {cpu} duration = 1m replicas = 1..n spot = {spot} "
        'startup = {startup} image = "{image}" command = ["run", "{{model}}", "{cmd}"] }}\n'
    )
    rnd = random.Random(7)
    values = {
        "cpu": ["1", "2", "0", "1.5", "n", "-1", "1__0"],
        "spot": ["allowed", "never", "alowed", '"only"', "n"],
        "startup": ["1m", "0s", "-1m", "5", "1hh"],
        "image": ["a/b:1", "a b", "{model}", "{run_id}"],
        "cmd": ["x", "{input}", "{nope}", "{{literal}}", "{n}"],
    }
    module = 'param n = 3\nparam model = "m"\n' + "".join(
        step.format(i=i, **{k: rnd.choice(v) for k, v in values.items()}) for i in range(12)
    )
    (tmp_path / "lib.exo").write_text(module, "utf-8")
    for trial in range(4):
        entry = 'import "lib.exo" as lib\nparam n = 2\nparam model = "e"\n' + HEAD
        entry += "".join(
            step.format(i=i, **{k: rnd.choice(v) for k, v in values.items()}) for i in range(30)
        )
        entry += (
            "step last { after = ["
            + ", ".join(f"lib.s{i}" for i in range(12))
            + "] duration = 1m }\n"
        )
        path = tmp_path / f"flow{trial}.exo"
        path.write_text(entry, "utf-8")
        memo, every = both(path, monkeypatch)
        assert memo == every


@pytest.mark.parametrize(
    "example",
    sorted(p.relative_to(REPO).as_posix() for p in (REPO / "examples").rglob("*.exo")),
)
def test_examples_lower_the_same(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    memo, every = both(REPO / example, monkeypatch)
    assert memo == every


def test_the_same_text_in_two_scopes_is_read_in_each(tmp_path: Path) -> None:
    (tmp_path / "lib.exo").write_text(
        "param n = 5\nstep inner { items = 9 throughput { cpu = 1 } cpu = 1 replicas = 1..n }\n",
        "utf-8",
    )
    (tmp_path / "flow.exo").write_text(
        'import "lib.exo" as lib\nparam n = 2\n'
        + HEAD
        + "step outer {\n  after = [lib.inner]\n  items = 9\n  throughput { cpu = 1 }\n"
        + "  cpu = 1\n  replicas = 1..n\n}\n",
        "utf-8",
    )
    c = compile_file(tmp_path / "flow.exo")
    assert c.program.step("outer").replicas.max == 2
    assert c.program.step("lib.inner").replicas.max == 5


def _values(text: str) -> list[Any]:
    tree = ExoParser().parse_recovering(text, "f.exo").module
    decl = tree.items[0]
    assert isinstance(decl, Decl)
    return [e.value for e in decl.entries if isinstance(e, Attr)]


def test_keys_tell_apart_what_reads_differently() -> None:
    """Equal keys only for values written alike: a name and a string, a placeholder
    and its escaped text, ``1`` and ``1.0``, a list and its one string, a bad literal."""
    written = [
        "x",
        '"x"',
        '"{x}"',
        '"{{x}}"',
        "1",
        "1.0",
        "1__0",
        '["x"]',
        "[x]",
        '["a", "b"]',
        '["a b"]',
        "1..2",
        "1..n",
        "true",
        '"true"',
        "1h",
        "60m",
        "8GiB",
        "$5",
        "[[1], 2]",
        "[[1, 2]]",
    ]
    text = "step s {\n" + "".join(f"  a{i} = {w}\n" for i, w in enumerate(written)) + "}\n"
    keys = [value_key(v) for v in _values(text)]
    assert None not in keys
    assert len(set(keys)) == len(written)
    again = [value_key(v) for v in _values(text.replace("\n  ", "\n      "))]
    assert again == keys  # the same values at other places: the same keys
    assert value_key(_values("step s { m = { 8: 1 } }")[0]) is None
