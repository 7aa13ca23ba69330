"""What one shard attempt runs: its folders, its argument vector and its environment.

Plain strings on this path: it runs once per shard (see docs/benchmarks.md,
local runner). What does not change from shard to shard (a step's folders,
the fixed part of its environment) is made once per step.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from ..api import expand, expand_command, runtime_values
from ..runtime import checkpoints
from ..runtime.launch import StepEnvironment
from ..runtime.shards import Shard
from .attempts import LoopSettings
from .tasks import LocalStep


def make_folder(path: str) -> None:
    """An attempt's private output folder, empty (its log is created by the spawn)."""
    try:
        os.mkdir(path)  # noqa: PTH102
    except FileExistsError:  # left by an attempt that never started (a crash)
        shutil.rmtree(path)
        os.mkdir(path)  # noqa: PTH102


class Commands:
    """The attempts of one run's shards, as the event loop starts them."""

    def __init__(self, settings: LoopSettings) -> None:
        self.s = settings
        self._dirs_made: dict[str, tuple[str, str]] = {}
        self._envs: dict[str, StepEnvironment] = {}

    def _input_for(self, st: LocalStep, values: Mapping[str, str]) -> str:
        if st.input_kind == "step":
            return str(self.s.outputs[st.input_ref])
        # A dataset URI is an IR string: ``{{`` stands for a brace.
        return expand(st.input_ref, {k: v for k, v in values.items() if k != "input"})

    def _dirs(self, st: LocalStep) -> tuple[str, str]:
        """The step's staging and log folders (created once)."""
        dirs = self._dirs_made.get(st.name)
        if dirs is None:
            staging, logdir = self.s.staging[st.name], self.s.logs / st.name
            staging.mkdir(parents=True, exist_ok=True)
            logdir.mkdir(parents=True, exist_ok=True)
            dirs = self._dirs_made[st.name] = (str(staging), str(logdir))
        return dirs

    def paths(self, st: LocalStep, idx: int, attempt: int) -> tuple[str, str]:
        staging, logdir = self._dirs(st)
        name = f"shard-{idx}.attempt-{attempt}"
        return f"{staging}/{name}", f"{logdir}/{name}.log"

    def checkpoint(self, st: LocalStep, idx: int) -> str:
        """The shard's checkpoint folder, kept over every attempt.

        The command creates it when it first writes there (the worker helper
        does): a run of many short shards that keep nothing pays no file-system
        operation for it (see docs/benchmarks.md, local runner).
        """
        # The same path as checkpoints.shard_checkpoint, without making Path objects per shard.
        return f"{self.s.checkpoints}/{st.name}/{checkpoints.shard_folder_name(idx)}"

    def environment(self, st: LocalStep) -> StepEnvironment:
        """The environment of the step's shards, less what varies (made once per step)."""
        env = self._envs.get(st.name)
        if env is None:
            env = self._envs[st.name] = StepEnvironment(
                self.s.base_env,
                st.env,
                secrets={name: self.s.secrets[name] for name in st.secrets},
                helper_lib=self.s.helper_lib,
            )
        return env

    def command(
        self, st: LocalStep, sh: Shard, attempt: int, staging: str
    ) -> tuple[list[str], dict[str, str]]:
        """The argument vector and the placeholders' values of one attempt."""
        idx = sh.index
        values = runtime_values(
            step=st.name,
            shard=sh,
            shard_count=st.shard_count,
            batch_size=st.batch_size,
            run_id=self.s.run_id,
            attempt=attempt,
            input="",
            output=str(staging),
            checkpoint=self.checkpoint(st, idx),
        )
        values["input"] = self._input_for(st, values)
        return expand_command(st.command, values), values
