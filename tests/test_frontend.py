"""Front-end behaviour: params, imports, placeholders, units, validation and lowering."""

from __future__ import annotations

from pathlib import Path

import pytest

from exo.compiler.diagnostics import CompileError, Diagnostic
from exo.compiler.frontend import Compiled, compile_file
from exo.compiler.ir import step_dag

HEAD = """
workflow w {
  deadline = 8h
  budget   = $100
  catalog  = "aws/us-east-1"
}
"""


def build(tmp_path: Path, text: str, files: dict[str, str] | None = None, **kw: object) -> Compiled:
    for name, body in (files or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body, "utf-8")
    entry = tmp_path / "flow.exo"
    entry.write_text(text, "utf-8")
    return compile_file(entry, **kw)  # type: ignore[arg-type]


def errors(
    tmp_path: Path, text: str, files: dict[str, str] | None = None, **kw: object
) -> list[Diagnostic]:
    with pytest.raises(CompileError) as info:
        build(tmp_path, text, files, **kw)
    return list(info.value.diagnostics)


def codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


def test_units_are_converted(tmp_path: Path) -> None:
    c = build(
        tmp_path,
        HEAD
        + """
dataset d { items = 10_000 }
step s {
  input = d
  accelerators = [A10G]
  throughput { A10G = { 8: 1.5, 16: 2.5 } }
  startup = 1h30m
  model_memory = 512MiB
  memory_per_item = 16MB
  memory = 2GiB
  timeout = 90s
  checkpoint = 15m
}
""",
    )
    s = c.program.step("s")
    assert s.items == 10_000
    assert s.startup_h == pytest.approx(1.5)
    assert s.model_memory_gib == pytest.approx(0.5)
    assert s.memory_per_item_gib == pytest.approx(16e6 / 2**30)
    assert s.timeout_h == pytest.approx(90 / 3600)
    assert s.checkpoint.kind == "interval" and s.checkpoint.interval_h == pytest.approx(0.25)
    assert s.batch_sizes == (8, 16)  # default: the keys of the throughput maps
    assert s.gpus == 1  # default when accelerators are set
    assert c.program.workflow.deadline_h == 8 and c.program.workflow.budget_usd == 100


def test_params_substituted_and_overridden(tmp_path: Path) -> None:
    text = (
        'param model = "m-8b"\nparam n = 500\nparam dl = 4h\n'
        + HEAD.replace("deadline = 8h", "deadline = dl")
        + """
step s {
  items = n
  command = ["run", "--model={model}", "--shard={batch_index}", "{{literal}}"]
  cpu = 2
  throughput { cpu = 10 }
}
"""
    )
    c = build(tmp_path, text)
    s = c.program.step("s")
    assert s.items == 500
    assert s.command == ("run", "--model=m-8b", "--shard={batch_index}", "{{literal}}")
    assert c.program.workflow.deadline_h == 4
    c2 = build(tmp_path, text, params={"model": "x {y}", "n": "7", "dl": "30m"})
    s2 = c2.program.step("s")
    assert s2.command[1] == "--model=x {{y}}"  # braces from a param value stay literal
    assert s2.items == 7
    assert c2.program.workflow.deadline_h == 0.5
    assert c2.program.params == {"dl": "30m", "model": "x {{y}}", "n": 7}


def test_param_override_type_checked(tmp_path: Path) -> None:
    text = "param n = 500\n" + HEAD + "step s {\n items = n\n cpu = 1\n throughput { cpu = 1 }\n}\n"
    d = errors(tmp_path, text, params={"n": "lots"})
    assert codes(d) == ["E113"] and "number" in d[0].message
    d = errors(tmp_path, text, params={"nn": "1"})
    assert codes(d) == ["E113"] and "did you mean `n`?" in d[0].help


def test_imports_std_relative_alias_and_reachability(tmp_path: Path) -> None:
    lib = """
dataset docs { uri = "s3://b/docs" items = 100 }
step unused { cpu = 1 duration = 1m }
step prep { input = docs cpu = 1 throughput { cpu = 10 } }
"""
    c = build(
        tmp_path,
        'import "./lib/common.exo" as common\n'
        + HEAD
        + "step s { input = common.prep cpu = 1 throughput { cpu = 5 } }\n",
        {"lib/common.exo": lib},
    )
    names = [s.name for s in c.program.steps]
    assert names == ["common.prep", "s"]  # imported steps join only when needed
    assert c.program.step("s").items == 100  # propagated through the imported step
    assert list(c.program.datasets) == ["common.docs"]
    assert list(step_dag(c.program).edges) == [("common.prep", "s")]


def test_import_errors(tmp_path: Path) -> None:
    d = errors(tmp_path, 'import "./missing.exo"\n' + HEAD + "step s { cpu = 1 duration = 1m }\n")
    assert codes(d) == ["E109"]
    d = errors(tmp_path, 'import "std/llmm"\n' + HEAD + "step s { cpu = 1 duration = 1m }\n")
    assert codes(d) == ["E109"]
    d = errors(
        tmp_path,
        'import "./a.exo"\n' + HEAD + "step s { cpu = 1 duration = 1m }\n",
        {"a.exo": 'import "./b.exo"\n', "b.exo": 'import "./a.exo"\n'},
    )
    # at the import that closes the cycle, and at the entry file's import into it
    assert codes(d) == ["E111", "E111"]
    assert all("a.exo -> b.exo -> a.exo" in x.message for x in d)
    where = [(Path(x.span.file).name, x.span.line) for x in d if x.span]
    assert where == [("b.exo", 1), ("flow.exo", 1)]
    d = errors(tmp_path, 'import "/etc/passwd"\n' + HEAD + "step s { cpu = 1 duration = 1m }\n")
    assert codes(d) == ["E110"]
    d = errors(
        tmp_path,
        'import "./a.exo"\n' + HEAD + "step s { cpu = 1 duration = 1m }\n",
        {"a.exo": HEAD},
    )
    assert codes(d) == ["E112"]


def test_every_error_is_reported(tmp_path: Path) -> None:
    d = errors(
        tmp_path,
        HEAD.replace("budget   = $100", "budget = 100")
        + """
step a {
  cpu = 1
  duration = 10m
  replicas = 4..2
  retires = 3
  spot = sometimes
  accelerators = [A100x]
  command = ["{nope}"]
}
step b {
  input = a
  input = a
  duration = 0s
}
""",
    )
    assert sorted(codes(d)) == sorted(
        ["E201", "E205", "E104", "E204", "E403", "E106", "E303", "E103", "E202"]
    )
    by_code = {x.code: x for x in d}
    assert "did you mean `retries`?" in by_code["E104"].help
    assert "did you mean `allowed`?" not in by_code["E204"].help  # nothing close enough
    assert any("A100" in h for h in by_code["E403"].help)
    # Source order.
    assert [x.span.line for x in d if x.span] == sorted(x.span.line for x in d if x.span)


@pytest.mark.parametrize(
    ("snippet", "code"),
    [
        ("step s { cpu = 1 duration = 1m after = [s] }", "E502"),
        ("step s { cpu = 1 throughput { cpu = 5 } }", "E306"),
        ("step s { cpu = 1 duration = 1m throughput { cpu = 5 } items = 1 }", "E305"),
        ("step s { cpu = 1 duration = 1m checkpoint = batch }", "E304"),
        ("step s { items = 5 cpu = 1 throughput { cpu = 5 } checkpoint = batch }", "E304"),
        ("step s { cpu = 1 gpus = 2 duration = 1m }", "E201"),
        ("stpe s { cpu = 1 duration = 1m }", "E105"),
        ("step s { cpu = 1 duration = 1m memory = 16 }", "E201"),
        ("step s { items = 5 accelerators = [A100] throughput { H100 = { 8: 1.0 } } }", "E307"),
        ("step s { items = 5 throughput { A100 = 1 } }", "E307"),
        ("step s { items = 5 throughput { cpu = 0 } }", "E202"),
        ("step s { input = w cpu = 1 duration = 1m }", "E101"),
        ('step s { cpu = 1 duration = 1m command = "run" }', "E201"),
        ("step s { cpu = 1 duration = 1m spot = never retries = -1 }", "E202"),
    ],
)
def test_step_rules(tmp_path: Path, snippet: str, code: str) -> None:
    assert code in codes(errors(tmp_path, HEAD + snippet + "\n"))


def test_workflow_rules(tmp_path: Path) -> None:
    d = errors(
        tmp_path, HEAD.replace("}", "  confidence = 1.5\n}") + "step s { cpu = 1 duration = 1m }\n"
    )
    assert codes(d) == ["E203"]
    d = errors(tmp_path, HEAD + HEAD.replace("w {", "w2 {") + "step s { cpu = 1 duration = 1m }\n")
    assert codes(d) == ["E108"]
    d = errors(
        tmp_path,
        HEAD.replace('"aws/us-east-1"', '"aws/us-east1"') + "step s { cpu = 1 duration = 1m }\n",
    )
    assert codes(d) == ["E401"]
    d = errors(
        tmp_path,
        HEAD.replace("}", "  quota { A1000 = 8 }\n}") + "step s { cpu = 1 duration = 1m }\n",
    )
    assert codes(d) == ["E403"] and "did you mean `A100`?" in d[0].help


def test_custom_catalog_and_override(tmp_path: Path) -> None:
    csv = (
        "instance_type,accelerator,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,spot_usd_per_hour\n"
        "box,,0,4,16,0.2,\n"
    )
    text = HEAD.replace('"aws/us-east-1"', '"./cat.csv"') + "step s { cpu = 1 duration = 1m }\n"
    c = build(tmp_path, text, {"cat.csv": csv})
    assert c.catalog.instance_types() == {"box"}
    c2 = build(tmp_path, text, {"cat.csv": csv}, catalog="gcp/us-central1")
    assert "n2-standard-8" in c2.catalog.instance_types()


def test_backend_blocks_become_options(tmp_path: Path) -> None:
    c = build(
        tmp_path,
        HEAD
        + 'backend slurm { partition = "gpu" margin = 10m extra = ["--exclusive"] map { A100 = "a100" } }\n'
        + "step s { cpu = 1 duration = 1m }\n",
    )
    assert c.program.backend_options == {
        "slurm": {
            "partition": "gpu",
            "margin": "10m",
            "extra": ["--exclusive"],
            "map": {"A100": "a100"},
        }
    }


def test_topological_order_follows_declarations(tmp_path: Path) -> None:
    c = build(
        tmp_path,
        HEAD
        + """
step c { after = [a, b] cpu = 1 duration = 1m }
step b { cpu = 1 duration = 1m }
step a { cpu = 1 duration = 1m }
""",
    )
    assert [s.name for s in c.program.steps] == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "E107"),
        (b"\xff\xfe garbage", "E002"),
        (b"workflow w {" + b"a {" * 40 + b"}" * 41, "E008"),
        (b"workflow w { deadline = 99999999999999999999h }", "E009"),
        (b"workflow w { deadline = 8x }", "E010"),
        (b'workflow w { catalog = "abc }', "E006"),
        (b'workflow w { catalog = "a\\qb" }', "E007"),
        (b'workflow w { catalog = "a{b" }', "E011"),
        (b"workflow w { deadline = [" + b"[" * 5000 + b"]" * 5001 + b" }", "E008"),
        (b"workflow w { x = 'single' }", "E004"),
    ],
)
def test_hostile_files_get_diagnostics(tmp_path: Path, data: bytes, code: str) -> None:
    f = tmp_path / "bad.exo"
    f.write_bytes(data)
    with pytest.raises(CompileError) as info:
        compile_file(f)
    assert code in [d.code for d in info.value.diagnostics]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        compile_file(tmp_path / "nope.exo")
    assert [d.code for d in info.value.diagnostics] == ["E001"]


def test_range_bounds_may_name_params(tmp_path: Path) -> None:
    c = build(
        tmp_path,
        "param most = 6\n"
        + HEAD
        + "step s { items = 10 cpu = 1 replicas = 2..most throughput { cpu = 1 } }\n",
    )
    r = c.program.step("s").replicas
    assert (r.min, r.max) == (2, 6)
    d = errors(
        tmp_path,
        'param most = "six"\n'
        + HEAD
        + "step s { items = 10 cpu = 1 replicas = 2..most throughput { cpu = 1 } }\n",
    )
    assert codes(d) == ["E201"]


def test_secrets_are_variable_names(tmp_path: Path) -> None:
    d = errors(tmp_path, HEAD + 'step s { cpu = 1 duration = 1m secrets = ["HF TOKEN", "{x}"] }\n')
    assert codes(d) == ["E207", "E207"]
    assert "HF TOKEN" in d[0].message and "{x}" in d[1].message


# --- params that name params -------------------------------------------------------------

STEP_USING = 'step s {{ cpu = 1 duration = 1m command = ["run", "{use}"] retries = {ret} }}\n'


@pytest.mark.parametrize(
    ("params", "cycle", "line"),
    [
        ("param a = b\nparam b = a\n", "a -> b -> a", 1),
        ("param a = a\n", "a -> a", 1),
        ('param x = 1\nparam a = "{b}"\nparam b = "{c}/x"\nparam c = "{a}"\n', "a -> b -> c -> a", 2),
        ("param a = [b]\nparam b = a\n", "a -> b -> a", 1),
        ("param a = b\nparam b = c\nparam c = d\nparam d = e\nparam e = b\n", "b -> c -> d -> e -> b", 2),
    ],
)  # fmt: skip
def test_param_cycles_are_reported_once_with_the_cycle(
    tmp_path: Path, params: str, cycle: str, line: int
) -> None:
    """``param a = b``, ``param b = a`` was accepted silently (and a cycle through
    placeholders crashed with E901): one E503 per cycle, at its first param, and no
    follow-on type errors where the params are used."""
    d = errors(tmp_path, params + HEAD + STEP_USING.format(use="{a}", ret="a"))
    assert codes(d) == ["E503"], d
    assert d[0].message == f"parameter cycle: {cycle}"
    assert d[0].span is not None and d[0].span.line == line


def test_param_cycles_in_an_imported_module_and_through_overrides(tmp_path: Path) -> None:
    d = errors(
        tmp_path,
        'import "./lib.exo"\n' + HEAD + STEP_USING.format(use="{lib.p}", ret="1"),
        {"lib.exo": 'param p = "{q}"\nparam q = "{p}"\n'},
    )
    assert codes(d) == ["E503"] and "lib.p -> lib.q -> lib.p" in d[0].message
    # -p can turn a name param into a cycle
    d = errors(
        tmp_path,
        "param a = b\nparam b = c\nparam c = s\n" + HEAD + STEP_USING.format(use="x", ret="1"),
        params={"c": "a"},
    )
    assert codes(d) == ["E503"] and "a -> b -> c -> a" in d[0].message


def test_param_chains_are_followed_to_16_and_reported_beyond(tmp_path: Path) -> None:
    chain = "".join(f"param p{i} = p{i + 1}\n" for i in range(15)) + "param p15 = 2\n"
    ok = build(tmp_path, chain + HEAD + STEP_USING.format(use="{p0}", ret="p0"))
    assert ok.program.steps[0].retries == 2 and ok.program.steps[0].command[1] == "2"
    chain = "".join(f"param p{i} = p{i + 1}\n" for i in range(40)) + "param p40 = 2\n"
    d = errors(tmp_path, chain + HEAD + STEP_USING.format(use="{p0}", ret="p0"))
    assert codes(d) == ["E504"], d
    assert d[0].span is not None and d[0].span.line == 41 - 17 + 1  # where it gets too long


def test_a_long_chain_of_string_params_does_not_exhaust_the_stack(tmp_path: Path) -> None:
    chain = "".join(f'param s{i} = "{{s{i + 1}}}/x"\n' for i in range(3000)) + 'param s3000 = "r"\n'
    d = errors(tmp_path, chain + HEAD + STEP_USING.format(use="{s0}", ret="1"))
    assert codes(d) == ["E504"] and "E901" not in codes(d)


# --- a placeholder's text, remembered per scope and name (Reading.template) ----------------


def test_placeholder_text_is_the_same_in_every_step_and_every_error_is_reported(
    tmp_path: Path,
) -> None:
    """The text of ``{model}`` is worked out once per scope and reused; a placeholder
    whose reading reports something is read (and reported) at every place it is used."""
    steps = "".join(
        f'step s{i} {{ cpu = 1 duration = 1m command = ["run", "{{model}}", "{{tag}}-{{model}}"] }}\n'
        for i in range(3)
    )
    c = build(tmp_path, 'param model = "m-{tag}"\nparam tag = 7\n' + HEAD + steps)
    assert {c.program.step(f"s{i}").command for i in range(3)} == {("run", "m-7", "7-m-7")}
    # A list placed in a string: E201 at each of the three places, not only the first.
    d = errors(tmp_path, "param model = [1, 2]\nparam tag = 7\n" + HEAD + steps)
    assert codes(d) == ["E201"] * 6
    assert len({(x.span.line, x.span.column) for x in d if x.span}) == 6
    # A bad literal: reported once, at the literal, and its uses add nothing.
    d = errors(tmp_path, 'param model = "m-{tag}"\nparam tag = 1__0\n' + HEAD + steps)
    assert [(x.code, x.span and x.span.line) for x in d] == [("E009", 2)]
    # An unknown placeholder inside a param: reported at the param.
    d = errors(tmp_path, 'param model = "{nope}"\nparam tag = 7\n' + HEAD + steps)
    assert [(x.code, x.span and x.span.line) for x in d] == [("E106", 1)]
