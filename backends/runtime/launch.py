"""The environment one shard attempt is started with.

The local runner and ``exoc profile`` start shards themselves and build it the
same way: the step's ``env`` with the runtime placeholders filled in (values inserted literally, never through a shell), the step's
secrets by name, the ``EXO_*`` variables (DESIGN §6) and the worker helper
first on ``PYTHONPATH``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .checkpoints import python_path
from .placeholders import expand, shard_environment


def shard_env(
    base: Mapping[str, str],
    step_env: Mapping[str, str],
    values: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    helper_lib: str | None,
) -> dict[str, str]:
    """The environment of one attempt; later entries win.

    ``base`` (the runner's environment, or a minimal one), then the step's
    ``env`` expanded, then ``secrets`` (values by name), then the ``EXO_*``
    variables, then ``helper_lib`` put first on ``PYTHONPATH``.
    """
    env = dict(base)
    env.update({k: expand(v, values) for k, v in step_env.items()})
    env.update(secrets)
    env.update(shard_environment(values))
    if helper_lib is not None:
        env["PYTHONPATH"] = python_path(helper_lib, env.get("PYTHONPATH"))
    return env
