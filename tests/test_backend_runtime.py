"""The shared runtime of the runners and the typed seams of the backend interface (#17).

No backend imports another (what they share is in ``backends/runtime``); the
local and Slurm runners decide output folders, missing secrets and step states
with one piece of code each; the registry keeps problems by backend name.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from exo.backends.api import Backend
from exo.backends.local import LocalBackend, LocalOptions
from exo.backends.registry import GROUP, load_entry_points, resolve_options
from exo.backends.runtime.outputs import OutputDir, output_folder, shard_index, shard_name
from exo.backends.runtime.progress import step_state
from exo.backends.runtime.secrets import missing_secrets
from exo.backends.slurm.jobs import output_word


def test_output_folders_are_where_the_slurm_script_publishes(tmp_path: Path) -> None:
    """The runner's folder for ``output`` is the one the job script's shell word names,
    literal braces (``{{``) included."""
    out = OutputDir(root="workflow", path="out/{{x}}/{run_id}/{step}")
    folder = output_folder(
        out, workflow_dir=tmp_path, state_dir=tmp_path / "s", run_id="r1", step="a"
    )
    assert folder == tmp_path / "out" / "{x}" / "r1" / "a"
    script = f"workflow_dir={tmp_path}; exo_run_id=r1; printf %s {output_word(out, 'a')}"
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert shell.stdout == str(folder)
    state = OutputDir(root="state", path="outputs/{step}")
    assert output_folder(
        state, workflow_dir=tmp_path, state_dir=tmp_path / "s", run_id="r1", step="b"
    ) == (tmp_path / "s" / "outputs" / "b")
    assert shard_index(shard_name(12)) == 12
    assert shard_index("shard-x") is None and shard_index(".exo-staging") is None


def test_missing_secrets_name_every_step_and_secret() -> None:
    problems = missing_secrets(
        [("a", ("TOKEN", "KEY")), ("b", ("KEY",))], {"TOKEN": "t"}, how="by name"
    )
    assert [(d.code, d.message) for d in problems] == [
        ("E704", "step `a` needs the secret `KEY`, which is not set in the environment"),
        ("E704", "step `b` needs the secret `KEY`, which is not set in the environment"),
    ]
    assert problems[0].notes == ("by name",)


def test_one_rule_for_a_steps_state() -> None:
    def state(**kw: object) -> str:
        args: dict[str, object] = {"done": False, "failed": False, "needs": (), "running": False}
        return step_state(**{**args, **kw})  # type: ignore[arg-type]

    assert state(done=True, failed=True) == "done"
    assert state(failed=True, needs=("failed",)) == "failed"
    for need in ("failed", "blocked", "cancelled"):
        assert state(needs=("done", need), running=True) == "blocked"
    assert state(needs=("done", None), running=True) == "running"
    assert state(needs=("running",)) == "pending"


def test_registry_keeps_problems_by_backend_name() -> None:
    """A broken plugin's problems are found by its name, not by searching messages."""
    eps = [
        metadata.EntryPoint("gone", "exo_no_such_module_anywhere:Backend", GROUP),
        metadata.EntryPoint("notabackend", "exo.backends.api:Artifact", GROUP),
        metadata.EntryPoint("local", "exo.backends.local:LocalBackend", GROUP),
    ]
    registry = load_entry_points(eps)
    assert set(registry.backends) == {"local"}
    assert sorted(registry.broken) == ["gone", "notabackend"]
    assert registry.problems == (*registry.broken["gone"], *registry.broken["notabackend"])
    found = registry.lookup("gone")
    assert isinstance(found, list) and [d.code for d in found] == ["E703"]
    assert "importing it failed" in found[0].message
    unknown = registry.lookup("go")
    assert isinstance(unknown, list) and [d.code for d in unknown] == ["E701"]


def test_options_resolve_to_the_backends_own_model() -> None:
    backend: Backend[LocalOptions] = LocalBackend()
    options, problems = resolve_options(backend, {"grace_s": 2}, {"backoff_s": "0"})
    assert problems == []
    assert isinstance(options, LocalOptions)
    assert (options.grace_s, options.backoff_s) == (2.0, 0.0)
