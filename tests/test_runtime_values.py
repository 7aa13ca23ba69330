"""Each runtime placeholder's value for one shard attempt (DESIGN §6), in a fixed order:
the ``batch_*`` values, then the rest, then the ``shard_*`` aliases of the ``batch_*`` ones."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exo.backends.runtime.placeholders import ALIASES, runtime_values
from exo.backends.runtime.shards import Shard
from exo.compiler.ir import RUNTIME_PLACEHOLDERS


@given(
    index=st.integers(0, 10**6),
    start=st.integers(0, 10**9),
    size=st.integers(0, 10**6),
    shard_count=st.integers(1, 10**6),
    batch_size=st.none() | st.integers(1, 10**4),
    attempt=st.integers(1, 100),
    text=st.text(max_size=8),
)
def test_every_placeholder_and_alias_in_order(
    index: int,
    start: int,
    size: int,
    shard_count: int,
    batch_size: int | None,
    attempt: int,
    text: str,
) -> None:
    shard = Shard(index, start, start + size)
    values = runtime_values(
        step=f"s{text}",
        shard=shard,
        shard_count=shard_count,
        batch_size=batch_size,
        run_id=f"r{text}",
        attempt=attempt,
        input=f"i{text}",
        output=f"o{text}",
        checkpoint=f"c{text}",
    )
    want = {
        "batch_index": str(index),
        "batch_start": str(start),
        "batch_end": str(start + size),
        "batch_size": str(size if batch_size is None else batch_size),
        "shard_count": str(shard_count),
        "checkpoint": f"c{text}",
        "input": f"i{text}",
        "output": f"o{text}",
        "run_id": f"r{text}",
        "attempt": str(attempt),
        "step": f"s{text}",
    }
    want.update({alias: want[name] for alias, name in ALIASES.items()})
    assert list(values.items()) == list(want.items())
    assert sorted(values) == sorted(RUNTIME_PLACEHOLDERS)
