"""A step's shard environment made once per step (issue #16): ``StepEnvironment`` gives
:func:`shard_env`'s dict (keys, values, order) and the entries the spawner encodes from it
(``spawner._entry``, the checks of ``os.posix_spawn``), or raises what they raise."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exo.backends.local import spawner
from exo.backends.runtime.launch import StepEnvironment, environment_entry, shard_env
from exo.backends.runtime.placeholders import ENVIRONMENT, runtime_values
from exo.backends.runtime.shards import Shard

#: Names that overlap between the base, the step's env, the secrets and the EXO_* variables,
#: and names the encoding refuses (empty, with ``=`` or a null byte, not encodable).
NAMES = st.sampled_from(
    ["PATH", "HOME", "PYTHONPATH", "EXO_STEP", "EXO_OUTPUT", "EXO_BATCH_INDEX", "A", "B", "é"]
) | st.sampled_from(["", "A=B", "N\0", "\ud800", "\udcff"])
PIECES = ["{output}", "{batch_index}", "{step}", "{{", "}}", "{nope}", "x", ":", "é"]
#: Values with and without placeholders, some with what the encoding refuses.
VALUES = st.lists(st.sampled_from([*PIECES, "\0", "\ud800", "\udc80"]), max_size=4).map(
    "".join
) | st.text(max_size=6)
CLEAN = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)
ENVS = st.dictionaries(NAMES, VALUES, max_size=6)
CLEAN_ENVS = st.dictionaries(NAMES.filter(lambda n: _prefix_ok(n)), CLEAN, max_size=6)
#: A shard's placeholder values: all there (now and then one the encoding refuses), or
#: now and then some missing (a ``KeyError``, the same one).
SHARD_VALUES = (
    st.fixed_dictionaries({name: CLEAN for name in ENVIRONMENT})
    | st.fixed_dictionaries({name: CLEAN | VALUES for name in ENVIRONMENT})
    | st.fixed_dictionaries({}, optional={name: CLEAN for name in ENVIRONMENT})
)


def _prefix_ok(name: str) -> bool:
    try:
        environment_entry(name, "")
    except ValueError:
        return False
    return True


def outcome(make: Callable[[], Any]) -> tuple[str, Any]:
    """What ``make`` returns, or the exception it raises (its type and message)."""
    try:
        return "ok", make()
    except (ValueError, KeyError) as exc:
        return type(exc).__name__, str(exc)


def reference(
    base: Mapping[str, str],
    step_env: Mapping[str, str],
    values: Mapping[str, str],
    secrets: Mapping[str, str],
    helper_lib: str | None,
) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """:func:`shard_env`, and its entries as the spawner encodes them."""

    def env() -> dict[str, str]:
        return shard_env(base, step_env, values, secrets=secrets, helper_lib=helper_lib)

    def entries() -> list[bytes]:
        return spawner.Request(0, "/bin/true", ["true"], env(), []).env

    return outcome(lambda: list(env().items())), outcome(entries)


def check(
    base: Mapping[str, str],
    step_env: Mapping[str, str],
    values: Mapping[str, str],
    secrets: Mapping[str, str],
    helper_lib: str | None,
) -> None:
    want_env, want_entries = reference(base, step_env, values, secrets, helper_lib)
    made = StepEnvironment(base, step_env, secrets=secrets, helper_lib=helper_lib)
    assert outcome(lambda: list(made.env(values).items())) == want_env
    assert outcome(lambda: made.entries(values)) == want_entries
    if want_env[0] == "ok":
        env = dict(want_env[1])
        for name in [*env, "NOT_SET"]:
            assert made.get(name, values) == env.get(name)


@given(
    base=ENVS,
    step_env=ENVS,
    values=SHARD_VALUES,
    secrets=st.dictionaries(NAMES, VALUES, max_size=3),
    helper_lib=st.none() | VALUES,
)
@example(dict(os.environ), {}, {n: f"v-{n}" for n in ENVIRONMENT}, {}, "/lib")
@example(
    {"PYTHONPATH": "/a"}, {"PYTHONPATH": "{output}:/b"}, dict.fromkeys(ENVIRONMENT, "v"), {}, "/l"
)
@settings(max_examples=500)
def test_the_same_environment_and_entries_as_shard_env(
    base: dict[str, str],
    step_env: dict[str, str],
    values: dict[str, str],
    secrets: dict[str, str],
    helper_lib: str | None,
) -> None:
    check(base, step_env, values, secrets, helper_lib)


@given(
    base=CLEAN_ENVS,
    step_env=CLEAN_ENVS,
    values=st.fixed_dictionaries({name: CLEAN for name in ENVIRONMENT}),
    secrets=st.dictionaries(NAMES.filter(_prefix_ok), CLEAN, max_size=3),
    helper_lib=st.none() | CLEAN,
)
def test_the_same_for_environments_that_encode(
    base: dict[str, str],
    step_env: dict[str, str],
    values: dict[str, str],
    secrets: dict[str, str],
    helper_lib: str | None,
) -> None:
    """Without refused entries (the runner's usual case: the fast path only)."""
    check(base, step_env, values, secrets, helper_lib)


def test_one_step_environment_serves_every_shard_of_a_step() -> None:
    """Made once, used for shards whose values differ (a runner's thousands of starts)."""
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/site", "EXO_STEP": "stale"}
    step_env = {"OUT": "{output}/part-{batch_index}", "BRACES": "{{x}}", "TOKEN": "{run_id}"}
    secrets = {"TOKEN": "s3cret"}
    made = StepEnvironment(base, step_env, secrets=secrets, helper_lib="/lib")
    for i in range(5):
        values = runtime_values(
            step="a",
            shard=Shard(i, 10 * i, 10 * i + 10),
            shard_count=5,
            batch_size=None,
            run_id="r1",
            attempt=1,
            input="in",
            output=f"/out/shard-{i}",
            checkpoint=f"/ck/shard-{i}",
        )
        env = shard_env(base, step_env, values, secrets=secrets, helper_lib="/lib")
        assert list(made.env(values).items()) == list(env.items())
        assert made.entries(values) == spawner.Request(0, "/bin/true", ["true"], env, []).env
        assert env["OUT"] == f"/out/shard-{i}/part-{i}" and env["TOKEN"] == "s3cret"


@settings(max_examples=60, deadline=None)
@given(name=NAMES | st.text(max_size=4), value=VALUES)
def test_environment_entry_is_what_os_posix_spawn_gives(name: str, value: str) -> None:
    """Refused exactly where ``os.posix_spawn`` refuses the variable; else the very entry
    the started process gets (``env -0`` prints it)."""
    read, write = os.pipe()
    try:
        pid = os.posix_spawn(
            "/usr/bin/env",
            ["env", "-0"],
            {name: value},
            file_actions=[(os.POSIX_SPAWN_DUP2, write, 1)],
        )
    except ValueError:
        with pytest.raises(ValueError):
            environment_entry(name, value)
        return
    finally:
        os.close(write)
        with os.fdopen(read, "rb") as f:
            seen = f.read()
    os.waitpid(pid, 0)
    assert seen == environment_entry(name, value) + b"\0"
