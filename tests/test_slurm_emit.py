"""The Slurm backend's emission: scripts for every example, tier mapping, quoting.

No cluster is needed here (tests/test_slurm_cluster.py runs the scripts on one).
``shellcheck`` checks every generated script; bash evaluates the shell words
built for runtime placeholders and must give exactly what
:func:`exo.backends.api.expand` gives.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from exo.backends.api import ALIASES, PlannedWorkflow, expand, shard_count
from exo.backends.conformance import BackendConformance
from exo.backends.runtime.checkpoints import helper_files
from exo.backends.slurm import SlurmBackend, SlurmOptions
from exo.backends.slurm import jobs as slurm_jobs
from exo.backends.slurm.shell import PLACEHOLDER_VARS, comment, literal, quote, word
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.diagnostics import CompileError, Severity
from exo.compiler.ir import Program, Step, Throughput, Workflow
from exo.compiler.pipeline import plan_for
from exo.compiler.plan import Plan, StepPlan

from .conftest import SPEC, all_examples, example_id
from .golden import assert_files

#: Options the examples are emitted with in snapshots (a preemptible partition for spot).
OPTIONS = SlurmOptions(spot_partition="preempt", account="ml-batch")
#: The onprem example's charge-back sheet names its partitions (cluster.csv `source`).
ONPREM = SlurmOptions(
    partitions={"A100": "gpu-a100", "L40S": "gpu-l40s", "cpu": "cpu", "bigmem": "bigmem"},
    spot_partitions={"A100": "preempt-a100", "L40S": "preempt-l40s", "cpu": "preempt-cpu"},
)


def require_shellcheck() -> str:
    exe = shutil.which("shellcheck")
    if exe is None:
        if os.environ.get("EXO_REQUIRE_SLURM") == "1":
            pytest.fail("shellcheck is not installed (EXO_REQUIRE_SLURM=1)")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    return exe


@functools.cache
def planned_example(path: Path) -> PlannedWorkflow:
    """Planning is the slow part; each example is planned once per session."""
    return plan_for(path, {})[0]


def emit(planned: PlannedWorkflow, options: SlurmOptions) -> dict[str, str]:
    return {a.path: a.content for a in SlurmBackend().emit(planned, options)}


def shellcheck(tmp_path: Path, files: dict[str, str]) -> None:
    exe = require_shellcheck()
    paths = []
    for name, content in files.items():
        if name.startswith("lib/"):
            continue  # the worker helper (Python)
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        paths.append(str(p))
    proc = subprocess.run(
        [exe, "--shell=bash", "--severity=style", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- every example --------------------------------------------------------------------------


class TestSlurmConformance(BackendConformance):
    backend_name = "slurm"

    def planned(self, path: Path) -> PlannedWorkflow:
        return planned_example(path)

    good_options = {"spot_partition": "preempt"}  # noqa: RUF012 - a ClassVar in the base
    bad_options = [  # noqa: RUF012
        {"partition": "gpu a100"},
        {"spot_partitions": {"A100": "x;y"}},
        {"time_margin": -0.5},
        {"extra_directives": ["exclusive"]},
        {"container": "docker"},
        {"gres_types": {"A100": "a 100"}},
    ]

    def example_files(self) -> list[Path]:
        return all_examples()


def scripts(files: dict[str, str]) -> dict[str, str]:
    """The shell scripts of an emission (not the worker helper under lib/)."""
    return {k: v for k, v in files.items() if not k.startswith("lib/")}


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_example_scripts_snapshot(path: Path, snapshot: object) -> None:
    files = emit(planned_example(path), OPTIONS)
    assert_files(snapshot, scripts(files))


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_example_scripts_pass_shellcheck(path: Path, tmp_path: Path) -> None:
    planned = planned_example(path)
    files = scripts(emit(planned, OPTIONS))
    assert set(files) == {"submit.sh"} | {f"steps/{s.name}.sbatch" for s in planned.program.steps}
    shellcheck(tmp_path, files)


def test_the_worker_helper_ships_with_the_scripts() -> None:
    """submit.sh copies lib/ beside the run; every shard has it on its PYTHONPATH."""
    files = emit(planned_example(SPEC / "examples" / "finetune_synthetic.exo"), OPTIONS)
    lib = {k.removeprefix("lib/"): v for k, v in files.items() if k.startswith("lib/")}
    assert lib == helper_files()
    assert "exo/worker/__init__.py" in lib and "exo/__init__.py" not in lib
    assert 'cp -R -- "$here/lib/." "$run_dir/lib/"' in files["submit.sh"]
    for name, text in files.items():
        if name.startswith("steps/"):
            assert "PYTHONPATH=$helper_lib${PYTHONPATH:+:$PYTHONPATH}" in text


def test_one_sbatch_per_step_with_arrays_and_dependencies() -> None:
    planned = planned_example(SPEC / "examples" / "finetune_synthetic.exo")
    files = emit(planned, OPTIONS)
    submit = files["submit.sh"]
    order = [s.name for s in planned.program.steps]
    lines = [ln for ln in submit.splitlines() if ln.startswith("submit ")]
    assert [ln.split()[1] for ln in lines] == order
    # evaluate waits for finetune (its input) and filter (after), by job id.
    evaluate = next(ln for ln in lines if ln.split()[1] == "evaluate")
    assert evaluate.endswith('"${job_2}:${job_1}"')
    for step in planned.program.steps:
        n = shard_count(step, planned.step_plan(step.name))
        script = files[f"steps/{step.name}.sbatch"]
        # One array task per planned replica, all at once (DESIGN §6).
        assert n == (planned.step_plan(step.name).replicas if step.throughput else 1)
        if n > 1:
            assert f"#SBATCH --array=0-{n - 1}\n" in script
        else:
            assert "--array" not in script


def test_onprem_tiers_map_to_partitions_by_accelerator_and_cpu(tmp_path: Path) -> None:
    planned = planned_example(SPEC / "examples" / "onprem" / "embed.exo")
    files = emit(planned, ONPREM)
    for sp in planned.plan.steps:
        script = files[f"steps/{sp.name}.sbatch"]
        key = sp.accelerator or "cpu"
        table = ONPREM.spot_partitions if sp.spot else ONPREM.partitions
        assert f"#SBATCH --partition={table[key]}\n" in script
        assert ("#SBATCH --requeue\n" in script) == sp.spot
        assert ("#SBATCH --signal=B:USR1@300\n" in script) == sp.spot
        if sp.accelerator:
            assert f"#SBATCH --gres=gpu:{sp.accelerator.lower()}:1\n" in script
    shellcheck(tmp_path, files)


# --- options, tiers and limits on a hand-built plan -------------------------------------------


def _catalog() -> Catalog:
    return Catalog(
        name="test",
        default_spot_preemptions_per_hour=0.1,
        instances=(
            InstanceType(
                instance_type="gpu4",
                accelerator="A100-80GB",
                accelerator_count=4,
                vcpus=32,
                memory_gib=256,
                ondemand_usd_per_hour=10,
                spot_usd_per_hour=3,
                spot_preemptions_per_hour=0.1,
            ),
            InstanceType(
                instance_type="cpu8",
                accelerator=None,
                accelerator_count=0,
                vcpus=8,
                memory_gib=32,
                ondemand_usd_per_hour=0.4,
                spot_usd_per_hour=0.1,
                spot_preemptions_per_hour=0.1,
            ),
        ),
    )


def _planned(step: Step, sp: StepPlan) -> PlannedWorkflow:
    program = Program(workflow=Workflow(name="w"), steps=(step,))
    plan = Plan(
        workflow="w",
        objective="cost",
        status="optimal",
        deadline_h=None,
        budget_usd=None,
        confidence=0.95,
        expected_cost_usd=sp.expected_cost_usd,
        makespan_h=sp.p_duration_h,
        lower_bound_usd=sp.expected_cost_usd,
        steps=[sp],
    )
    return PlannedWorkflow(program=program, plan=plan, catalog=_catalog(), base_dir="/srv/project")


def _gpu_step(**changes: object) -> tuple[Step, StepPlan]:
    step = Step(
        name="embed",
        items=1000,
        command=("embed", "--shard", "{batch_index}"),
        accelerators=("A100-80GB",),
        gpus=2,
        cpu=8,
        memory_gib=30.5,
        throughput=Throughput(per_batch={"A100-80GB": {100: 1.0}}),
        startup_h=0.1,
        retries=2,
    )
    sp = StepPlan(
        name="embed",
        instance_type="gpu4",
        accelerator="A100-80GB",
        accelerator_count=4,
        spot=True,
        batch_size=100,
        replicas=2,
        start_h=0,
        expected_duration_h=1.0,
        p_duration_h=1.1,
        expected_cost_usd=5.0,
    )
    step_changes = {k: v for k, v in changes.items() if k in Step.model_fields}
    plan_changes = {k: v for k, v in changes.items() if k in StepPlan.model_fields and k != "name"}
    return step.model_copy(update=step_changes), sp.model_copy(update=plan_changes)


def _directives(planned: PlannedWorkflow, options: SlurmOptions) -> list[str]:
    (job,) = slurm_jobs.build(planned, options)
    return list(job.directives)


def test_resources_gres_and_spot_directives() -> None:
    step, sp = _gpu_step()
    planned = _planned(step, sp)
    opts = SlurmOptions(spot_partition="preempt", qos="normal", account="ml")
    minutes = slurm_jobs.time_limit_minutes(step, sp, opts)
    assert _directives(planned, opts) == [
        "--job-name=exo.w.embed",
        "--partition=preempt",
        "--account=ml",
        "--array=0-1",
        f"--time={slurm_jobs.format_time(minutes)}",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=8",
        "--mem=31232M",
        "--gres=gpu:a100-80gb:2",
        "--requeue",
        "--signal=B:USR1@300",
        "--open-mode=append",
    ]


def test_tier_lookup_order_instance_then_accelerator_then_default() -> None:
    step, sp = _gpu_step()
    opts = SlurmOptions(
        partition="general",
        spot_partition="scavenger",
        spot_partitions={"A100-80GB": "preempt-a100", "gpu4": "preempt-gpu4"},
        spot_qos="low",
    )
    assert slurm_jobs.tier(step, sp, opts).partition == "preempt-gpu4"
    assert slurm_jobs.tier(step, sp, opts).qos == "low"
    opts2 = opts.model_copy(update={"spot_partitions": {"A100-80GB": "preempt-a100"}})
    assert slurm_jobs.tier(step, sp, opts2).partition == "preempt-a100"
    opts3 = opts.model_copy(update={"spot_partitions": {}})
    assert slurm_jobs.tier(step, sp, opts3).partition == "scavenger"
    on_demand = sp.model_copy(update={"spot": False})
    t = slurm_jobs.tier(step, on_demand, opts)
    assert (t.partition, t.qos, t.spot) == ("general", None, False)


def test_spot_via_qos_only_keeps_the_on_demand_partition() -> None:
    step, sp = _gpu_step()
    t = slurm_jobs.tier(step, sp, SlurmOptions(partitions={"gpu4": "gpu"}, spot_qos="preemptible"))
    assert (t.partition, t.qos, t.spot, t.spot_unmapped) == ("gpu", "preemptible", True, False)


def test_unmapped_spot_tier_is_a_warning_not_an_error() -> None:
    planned = _planned(*_gpu_step())
    problems = SlurmBackend().check(planned, SlurmOptions())
    assert [(d.code, d.severity) for d in problems] == [("E702", Severity.WARNING)]
    assert "spot" in problems[0].message and problems[0].help
    assert emit(planned, SlurmOptions())  # still emitted, with --requeue


def test_gres_type_naming_and_untyped_gres() -> None:
    planned = _planned(*_gpu_step())
    typed = _directives(planned, SlurmOptions(gres_types={"A100-80GB": "a100_80g"}))
    assert "--gres=gpu:a100_80g:2" in typed
    untyped = _directives(planned, SlurmOptions(gres_types={"A100-80GB": ""}, gres_name="gpgpu"))
    assert "--gres=gpgpu:2" in untyped


def test_extra_directives_are_quoted_sbatch_lines() -> None:
    planned = _planned(*_gpu_step())
    files = emit(planned, SlurmOptions(extra_directives=["--constraint=[ib&v100]", "--exclusive"]))
    script = files["steps/embed.sbatch"]
    assert "#SBATCH '--constraint=[ib&v100]'\n#SBATCH --exclusive\n" in script


def test_time_limit_covers_a_shards_attempts_and_backoff() -> None:
    step, sp = _gpu_step()
    opts = SlurmOptions(time_margin=0.5, backoff_s=60, backoff_max_s=90, min_time_minutes=1)
    # A shard is one replica's whole share: each attempt gets the step's P-duration.
    expected = 1.1 * 1.5 * 60 * 3 + (60 + 90) / 60
    assert slurm_jobs.time_limit_minutes(step, sp, opts) == pytest.approx(expected, abs=1)
    with_timeout = step.model_copy(update={"timeout_h": 0.25, "retries": 0})
    assert slurm_jobs.time_limit_minutes(with_timeout, sp, opts) == 15
    assert slurm_jobs.time_limit_minutes(with_timeout, sp, SlurmOptions()) == 15
    assert slurm_jobs.format_time(15) == "0-00:15:00"
    assert slurm_jobs.format_time(3 * 1440 + 61) == "3-01:01:00"


def test_check_reports_what_cannot_be_emitted() -> None:
    step, sp = _gpu_step(command=(), output="out/{batch_index}")
    planned = _planned(step, sp)
    problems = SlurmBackend().check(planned, SlurmOptions(spot_partition="p", max_array_size=1))
    messages = sorted(d.message for d in problems)
    assert all(d.code == "E702" and d.severity is Severity.ERROR for d in problems)
    assert len(problems) == 3, messages
    assert any("no `command`" in m for m in messages)
    assert any("{batch_index}" in m for m in messages)
    assert any("MaxArraySize is 1" in m for m in messages)
    with pytest.raises(CompileError):
        SlurmBackend().emit(planned, SlurmOptions())


@pytest.mark.parametrize(
    "changes", [{"env": {"exo_output": "x"}}, {"env": {"1BAD": "y"}}, {"secrets": ("HF-TOKEN",)}]
)
def test_env_names_are_the_irs_rule_and_asserted_where_written(changes: dict[str, object]) -> None:
    """The front end and the IR refuse these names (E207, one rule for every backend); a
    step copied past validation still cannot put one into a script."""
    with pytest.raises(ValidationError):
        Step.model_validate({**_gpu_step()[0].model_dump(), **changes})
    planned = _planned(*_gpu_step(**changes))
    assert not [d for d in SlurmBackend().check(planned, SlurmOptions(spot_partition="p"))]
    with pytest.raises(ValueError, match="environment variable"):
        SlurmBackend().emit(planned, SlurmOptions(spot_partition="p"))


def test_infeasible_plan_is_refused() -> None:
    planned = _planned(*_gpu_step())
    bad = planned.model_copy(
        update={"plan": planned.plan.model_copy(update={"status": "infeasible"})}
    )
    (d,) = SlurmBackend().check(bad, SlurmOptions())
    assert d.code == "E702" and "infeasible" in d.message


def test_options_accept_cli_style_pairs_and_reject_bad_names() -> None:
    o = SlurmOptions.model_validate(
        {"partitions": "cpu=cpu, A100=gpu-a100", "extra_directives": "--exclusive"}
    )
    assert o.partitions == {"A100": "gpu-a100", "cpu": "cpu"}
    assert o.extra_directives == ["--exclusive"]
    for bad in (
        {"partitions": "cpu"},
        {"partition": "a\nb"},
        {"account": "x y"},
        {"extra_directives": ["--x\n#SBATCH --y"]},
        {"extra_directives": ["--comment='$(touch x)'"]},
        {"extra_directives": ["--comment=a\\b"]},
        {"extra_directives": ["--comment=a#b"]},
        {"extra_directives": ["--comment=two words"]},
        {"signal_seconds": 70_000},
        {"backoff_s": float("inf")},
        {"time_margin": float("nan")},
    ):
        with pytest.raises(ValidationError):
            SlurmOptions.model_validate(bad)


def test_secrets_are_referenced_by_name_never_by_value(tmp_path: Path) -> None:
    step, sp = _gpu_step(secrets=("HF_TOKEN",), env={"MODE": "fast"})
    files = emit(_planned(step, sp), SlurmOptions(spot_partition="p"))
    assert "${HF_TOKEN+set}" in files["submit.sh"]
    assert "${HF_TOKEN+set}" in files["steps/embed.sbatch"]
    shellcheck(tmp_path, files)


# --- quoting -------------------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
_PIECE = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            "{batch_index}",
            "{shard_index}",
            "{shard_end}",
            "{checkpoint}",
            "{output}",
            "{input}",
            "{run_id}",
            "{{",
            "}}",
            "{unknown}",
            "$(touch /nonexistent)",
            "`id`",
            "'",
            '"',
            "\\",
            "\n",
            "$HOME",
            "*",
            "~",
            "--x=",
            " ",
        ]
    ),
)


def _bash_words(words: list[str], values: dict[str, str]) -> list[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({PLACEHOLDER_VARS[k]: v for k, v in values.items()})
    script = "printf '%s\\0'" + "".join(" " + w for w in words) + "\n"
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        capture_output=True,
        check=True,
    )
    return proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    templates=st.lists(st.lists(_PIECE, max_size=6).map("".join), min_size=1, max_size=4),
    own=st.fixed_dictionaries({k: _TEXT for k in PLACEHOLDER_VARS if k not in ALIASES}),
)
def test_words_give_exactly_what_expand_gives(templates: list[str], own: dict[str, str]) -> None:
    # An alias (`{shard_index}`) has its twin's value (`{batch_index}`), as in api.runtime_values.
    values = {**own, **{alias: own[name] for alias, name in ALIASES.items()}}
    words = [word(t, PLACEHOLDER_VARS) for t in templates]
    assert _bash_words(words, values) == [expand(t, values) for t in templates]


@settings(max_examples=50, deadline=None)
@given(value=_TEXT)
def test_quote_and_literal_are_one_literal_word(value: str) -> None:
    assert _bash_words([quote(value), literal(value)], {}) == [value, value]


@given(st.text(alphabet=st.characters(codec=None), max_size=40))
def test_a_comment_is_one_printable_line_whatever_the_text(text: str) -> None:
    """``shell.comment``'s fast path (the whole text printable) agrees with its rule."""
    out = comment(text)
    assert out == "".join(c if c.isprintable() else "?" for c in text)
    assert out.isprintable() and len(out) == len(text)
