"""The standard library (``stdlib/std/*.exo``) and the project's own ``examples/``.

Every std module must import cleanly into a workflow, with every declaration
usable where its type belongs, and be documented in ``docs/language.md``.
Every example must check, plan within its deadline and budget, and keep its
commands free of shells; the quickstart must run end to end on this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exo.compiler.catalog import builtin_catalog_names
from exo.compiler.frontend import Compiled, compile_file
from exo.compiler.modules import std_names
from exo.compiler.optimizer import optimize
from exo.compiler.parser import parse_text
from exo.compiler.syntax import Decl, Num, Param, SizeLit, Str

from .conftest import REPO, example_id, repo_examples

STD_DIR = REPO / "stdlib" / "std"
LANGUAGE_DOC = REPO / "docs" / "language.md"
QUICKSTART = REPO / "examples" / "quickstart.exo"
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "fish", "/bin/sh", "/bin/bash", "/usr/bin/env"}


def std_modules() -> list[str]:
    """``std/llm``, ``std/embeddings``, ... as users import them."""
    return std_names()


def std_items(module: str) -> tuple[dict[str, Param], dict[str, Decl]]:
    """The params and datasets a std module declares, from its syntax tree."""
    name = module.removeprefix("std/")
    path = STD_DIR / f"{name}.exo"
    items = parse_text(path.read_text("utf-8"), f"{module}.exo").items
    params = {i.name: i for i in items if isinstance(i, Param)}
    datasets = {i.name: i for i in items if isinstance(i, Decl) and i.kind == "dataset"}
    return params, datasets


def size_gib(module: str, name: str) -> float:
    value = std_items(module)[0][name].value
    assert isinstance(value, SizeLit), f"{module}: {name} is not a size"
    return value.gib


def workflow_using(module: str, tmp_path: Path) -> Path:
    """A workflow that imports ``module`` and uses every one of its declarations.

    Each param is substituted into a command; each dataset is the input of a
    CPU step, so that its item count flows into the IR.
    """
    alias = module.removeprefix("std/")
    params, datasets = std_items(module)
    lines = [
        f'import "{module}"',
        'workflow uses-std { deadline = 8h  budget = $100  catalog = "aws/us-east-1" }',
    ]
    if params:
        args = ", ".join(f'"{{{alias}.{p}}}"' for p in params)
        lines.append(f"step show {{ command = [{args}]  cpu = 1  duration = 1m }}")
    for d in datasets:
        lines.append(
            f"step read_{d} {{ input = {alias}.{d}  command = "
            '["true", "{batch_index}"]  cpu = 1  throughput { cpu = 100 } }'
        )
    path = tmp_path / "uses_std.exo"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


# --- the standard library ---------------------------------------------------------------


def test_the_stdlib_has_the_documented_modules() -> None:
    assert set(std_modules()) >= {"std/llm", "std/embeddings", "std/evals", "std/corpora"}


@pytest.mark.parametrize("module", std_modules())
def test_std_module_imports_and_every_declaration_resolves(module: str, tmp_path: Path) -> None:
    params, datasets = std_items(module)
    assert params or datasets, f"{module} declares nothing"
    compiled = compile_file(workflow_using(module, tmp_path))
    program = compiled.program
    alias = module.removeprefix("std/")
    if params:
        shown = program.step("show").command
        assert len(shown) == len(params)
        for text, (name, param) in zip(shown, params.items(), strict=True):
            assert text, f"{module}: {name} substitutes to an empty string"
            assert "{" not in text and "}" not in text, f"{module}: {name} left a placeholder"
            if isinstance(param.value, Str):
                assert text == param.value.text
    for name, decl in datasets.items():
        ds = program.datasets[f"{alias}.{name}"]
        assert ds.uri and ds.items and ds.items > 0, f"{module}: dataset {name} lacks uri or items"
        assert program.step(f"read_{name}").items == ds.items
        assert decl.name == name


@pytest.mark.parametrize("module", std_modules())
def test_std_module_checks_under_an_alias(module: str, tmp_path: Path) -> None:
    path = tmp_path / "alias.exo"
    path.write_text(
        f'import "{module}" as lib\n'
        'workflow w { deadline = 1h  catalog = "gcp/us-central1" }\n'
        'step s { command = ["true"]  cpu = 1  duration = 1m }\n',
        "utf-8",
    )
    compiled = compile_file(path)
    # Unused datasets of an import do not join the workflow.
    assert compiled.program.datasets == {}
    assert [s.name for s in compiled.program.steps] == ["s"]


def llm_models() -> list[str]:
    params = std_items("std/llm")[0]
    return sorted(n for n, p in params.items() if f"{n}_weights" in params)


@pytest.mark.parametrize("model", llm_models())
def test_llm_kv_cache_figures_scale_with_sequence_length(model: str) -> None:
    params = std_items("std/llm")[0]
    name = params[model].value
    assert isinstance(name, Str)
    assert "/" in name.text, "a model is named by its Hub repository id"
    kv1 = size_gib("std/llm", f"{model}_kv_1k")
    assert size_gib("std/llm", f"{model}_kv_4k") == pytest.approx(4 * kv1)
    assert size_gib("std/llm", f"{model}_kv_8k") == pytest.approx(8 * kv1)
    # One token's K and V over all layers in 16-bit precision is a whole number of KiB.
    per_token_kib = kv1 * 2**20 / 1024
    assert per_token_kib == pytest.approx(round(per_token_kib))
    assert size_gib("std/llm", f"{model}_weights") > 0


def test_llm_kv_cache_per_token_matches_the_model_shapes() -> None:
    """KV bytes per token = layers x kv_heads x head_dim x 2 (K, V) x 2 bytes."""
    shapes = {  # layers, KV heads, head dim (config.json on the Hugging Face Hub)
        "llama_3_1_8b": (32, 8, 128),
        "llama_3_1_70b": (80, 8, 128),
        "llama_3_2_3b": (28, 8, 128),
        "qwen_2_5_0_5b": (24, 2, 64),
        "qwen_2_5_7b": (28, 4, 128),
        "qwen_2_5_72b": (80, 8, 128),
        "mistral_7b": (32, 8, 128),
        "gemma_2_9b": (42, 8, 256),
    }
    assert set(shapes) == set(llm_models())
    for model, (layers, kv_heads, head_dim) in shapes.items():
        per_token_bytes = layers * kv_heads * head_dim * 2 * 2
        got = size_gib("std/llm", f"{model}_kv_1k") * 2**30 / 1024
        assert got == pytest.approx(per_token_bytes), model


def test_embedding_models_have_dimension_limit_and_weights() -> None:
    params = std_items("std/embeddings")[0]
    models = sorted(n for n in params if f"{n}_dim" in params)
    assert len(models) >= 5
    for m in models:
        assert isinstance(params[m].value, Str)
        for suffix in ("_dim", "_max_tokens"):
            v = params[m + suffix].value
            assert isinstance(v, Num) and isinstance(v.value, int) and v.value > 0, m + suffix
        assert size_gib("std/embeddings", f"{m}_weights") > 0


@pytest.mark.parametrize("module", std_modules())
def test_std_module_is_documented_in_the_language_reference(module: str) -> None:
    doc = LANGUAGE_DOC.read_text("utf-8")
    assert f'import "{module}"' in doc or f"`{module}`" in doc, f"{module} is not documented"
    params, datasets = std_items(module)
    missing = [n for n in [*params, *datasets] if not re.search(rf"\b{re.escape(n)}\b", doc)]
    assert not missing, f"{module}: not mentioned in docs/language.md: {missing}"


# --- the project's examples -------------------------------------------------------------


def compile_example(path: Path) -> Compiled:
    return compile_file(path, label=str(path.relative_to(REPO)))


def test_examples_exist_for_the_main_use_cases() -> None:
    names = {example_id(p) for p in repo_examples()}
    assert "repo/examples/quickstart.exo" in names
    assert "repo/examples/onprem/doc_index.exo" in names
    assert len(names) >= 6


@pytest.mark.parametrize("path", repo_examples(), ids=example_id)
def test_example_checks(path: Path) -> None:
    program = compile_example(path).program
    assert program.steps
    assert program.workflow.deadline_h is not None and program.workflow.budget_usd is not None


def test_every_example_module_is_imported_by_an_example() -> None:
    entries = set(repo_examples())
    modules = set((REPO / "examples").glob("**/*.exo")) - entries
    imported: set[Path] = set()
    for path in entries:
        for m in re.finditer(r'^import\s+"(\./[^"]+)"', path.read_text("utf-8"), re.MULTILINE):
            imported.add((path.parent / m.group(1)).resolve())
    assert {m.resolve() for m in modules} <= imported


def test_examples_use_every_builtin_catalog() -> None:
    used = {compile_example(p).program.workflow.catalog for p in repo_examples()}
    assert set(builtin_catalog_names()) <= used
    assert any(c.endswith(".csv") for c in used), "no example brings its own catalog"


@pytest.mark.parametrize("path", repo_examples(), ids=example_id)
def test_example_commands_are_argument_lists_without_a_shell(path: Path) -> None:
    for step in compile_example(path).program.steps:
        assert step.command, f"{step.name} has no command"
        assert step.command[0] not in SHELLS, f"{step.name} runs a shell"


@pytest.mark.parametrize("path", repo_examples(), ids=example_id)
def test_example_has_a_plan_within_deadline_and_budget(path: Path) -> None:
    compiled = compile_example(path)
    plan = optimize(compiled.program, compiled.catalog)
    assert plan.status in ("optimal", "feasible"), plan.explanation
    assert plan.makespan_h is not None and plan.expected_cost_usd is not None
    wf = compiled.program.workflow
    assert wf.deadline_h is not None and wf.budget_usd is not None
    assert plan.makespan_h <= wf.deadline_h + 1e-6
    assert plan.expected_cost_usd <= wf.budget_usd + 1e-6
    assert {s.name for s in plan.steps} == set(compiled.program.step_names())


def test_quickstart_is_cpu_only_and_runs_python() -> None:
    program = compile_example(QUICKSTART).program
    for step in program.steps:
        assert not step.accelerators, f"{step.name} asks for accelerators"
        assert step.command[0] == "python3"
    assert program.params["docs"] == 5_000


def test_quickstart_runs_end_to_end_on_the_local_backend(tmp_path: Path) -> None:
    work = tmp_path / "qs"
    work.mkdir()
    shutil.copy(QUICKSTART, work / "quickstart.exo")
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "exo.compiler", "run", "quickstart.exo", "--state-dir", str(state)]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summaries = sorted(state.glob("**/summary.txt"))
    assert len(summaries) == 1, summaries
    docs = 5_000
    words = sum(1 + i % 7 for i in range(docs))  # make_docs writes 1..7 words per document
    want = f"documents: {docs}, words: {words}, mean words per document: {words / docs:.2f}"
    assert summaries[0].read_text("utf-8").strip() == want
