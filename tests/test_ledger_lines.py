"""The ledger's two lines per attempt, built as text (issue #16): the very bytes the JSON
encoder writes for the record, whatever the step name, the numbers or the tier.

The reference is the record as :class:`~exo.backends.runtime.ledger.LedgerWriter` built
it before (a dict, ``"v"`` added, ``sort_keys``), encoded by ``ledger._line``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exo.backends.runtime import ledger
from exo.backends.runtime.ledger import LedgerWriter, Recorder, Tier
from exo.worker import contract

#: Any text: quotes, backslashes, control characters, non-ASCII, lone surrogates.
TEXT = st.text(st.characters(codec=None, categories=None), max_size=20) | st.sampled_from(
    ['"', "\\", "\n\t\x00\x1f\x7f", "é✓😀", "\ud800", "</script>", ""]
)
FLOATS = st.floats() | st.sampled_from(
    [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1e16, 1e-7, 1.7976931348623157e308]
)
NUMBERS = st.integers() | FLOATS | st.booleans() | st.none()
TIERS = st.none() | st.builds(Tier, TEXT, st.booleans(), st.none() | st.integers())


def _start_record(
    host: str,
    t: float,
    step: str,
    shard: int,
    attempt: int,
    items: tuple[int, int],
    tier: Tier | None,
    committed: int,
    fallback: str | None,
) -> dict[str, Any]:
    """The ``start`` record as a dict (what ``attempt_started`` encoded before)."""
    rec: dict[str, Any] = {
        "event": "start",
        "t": t,
        "step": step,
        "shard": shard,
        "attempt": attempt,
        "items": list(items),
        "host": host,
        "committed": committed,
    }
    if tier is not None:
        rec.update(instance_type=tier.instance_type, spot=tier.spot, batch_size=tier.batch_size)
    if fallback is not None:
        rec["fallback"] = fallback
    return rec


def _end_record(
    t: Any,
    step: str,
    shard: Any,
    attempt: Any,
    exit_code: Any,
    outcome: str,
    committed: Any,
    first_batch_at: Any,
) -> dict[str, Any]:
    """The ``end`` record as a dict (what ``attempt_ended`` encoded before)."""
    return {
        "event": "end",
        "t": t,
        "step": step,
        "shard": shard,
        "attempt": attempt,
        "exit": exit_code,
        "outcome": outcome,
        "committed": committed,
        "first_batch_at": first_batch_at,
    }


@given(
    host=TEXT,
    t=NUMBERS,
    step=TEXT,
    shard=NUMBERS,
    attempt=NUMBERS,
    items=st.tuples(NUMBERS, NUMBERS),
    tier=TIERS,
    committed=NUMBERS,
    fallback=st.none() | TEXT,
)
@example("h", 1.7e9, "a", 0, 1, (0, 10), Tier("c6i.xlarge", True, None), 0, None)
@example("h", 1.7e9, 'a"b', 0, 1, (0, 10), Tier("c6i.xlarge", False, 4), 3, "late")
def test_a_start_line_is_the_encoders_bytes(
    host: str,
    t: Any,
    step: str,
    shard: Any,
    attempt: Any,
    items: tuple[Any, Any],
    tier: Tier | None,
    committed: Any,
    fallback: str | None,
) -> None:
    rec = _start_record(host, t, step, shard, attempt, items, tier, committed, fallback)
    got = ledger.start_line(
        ledger._json(host), t, step, shard, attempt, items, tier, committed, fallback
    )
    assert got == ledger._line(rec)


@given(
    t=NUMBERS,
    step=TEXT,
    shard=NUMBERS,
    attempt=NUMBERS,
    exit_code=NUMBERS,
    outcome=TEXT | st.sampled_from(ledger.OUTCOMES),
    committed=NUMBERS,
    first_batch_at=NUMBERS,
)
@example(1.7e9, "a", 0, 1, 0, "succeeded", 0, None)
@example(1.7e9, "a\u2028", 3, 2, -9, "preempted", 5, 1.7e9 + 0.25)
def test_an_end_line_is_the_encoders_bytes(
    t: Any,
    step: str,
    shard: Any,
    attempt: Any,
    exit_code: Any,
    outcome: str,
    committed: Any,
    first_batch_at: Any,
) -> None:
    rec = _end_record(t, step, shard, attempt, exit_code, outcome, committed, first_batch_at)
    got = ledger.end_line(t, step, shard, attempt, exit_code, outcome, committed, first_batch_at)
    assert got == ledger._line(rec)


@given(st.lists(NUMBERS | TEXT, max_size=4) | st.tuples(NUMBERS, st.lists(NUMBERS, max_size=2)))
def test_any_items_and_any_value_encode_as_in_a_record(items: Any) -> None:
    """Items that are not two numbers (and values of other types) take the encoder's path."""
    assert ledger._array(items) == ledger._ENCODER.encode(list(items))
    for value in items:
        assert ledger._json(value) == json.dumps(value)


def test_the_writer_writes_each_line_once_and_survives_a_closed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(path)
    writes: list[bytes] = []
    real = os.write

    def counted(fd: int, data: bytes) -> int:
        writes.append(data)
        return real(fd, data)

    monkeypatch.setattr(ledger.os, "write", counted)
    tier = Tier("c6i.xlarge", True, 8)
    w.attempt_started(1.5, "a\x01", 2, 1, (4, 6), tier, 1, fallback="too late")
    w.attempt_ended(
        2.5, "a\x01", 2, 1, exit_code=0, outcome="succeeded", committed=2, first_batch_at=None
    )
    assert writes == [
        ledger._line(_start_record(w.host, 1.5, "a\x01", 2, 1, (4, 6), tier, 1, "too late")),
        ledger._line(_end_record(2.5, "a\x01", 2, 1, 0, "succeeded", 2, None)),
    ]
    assert path.read_bytes() == b"".join(writes)
    w.close()
    w.attempt_started(3.0, "a", 0, 1, (0, 1), None, 0)  # the fd is closed: no exception
    w.attempt_ended(3.5, "a", 0, 1, exit_code=1, outcome="failed", committed=0, first_batch_at=None)
    assert path.read_bytes() == b"".join(writes[:2])


def _checkpoint(folder: Path, first_batch_at: float) -> None:
    """A shard's checkpoint folder with items 0-2 committed by attempt 1."""
    batch = folder / contract.BATCHES / "0-2"
    batch.mkdir(parents=True)
    (batch / contract.RECORD).write_text(json.dumps({"format": 1, "attempt": 1}))
    (folder / contract.ATTEMPTS).mkdir()
    record = {"format": 1, "attempt": 1, "first_batch_at": first_batch_at}
    (folder / contract.ATTEMPTS / "x.json").write_text(json.dumps(record))


def test_the_recorder_reads_the_checkpoint_folder_only_when_it_exists(tmp_path: Path) -> None:
    """Without a folder: nothing committed, no first batch; with one: what it records.
    A folder is looked for where an earlier run left one, or where an attempt started
    here may have made one (nothing else writes there while the runner holds the run)."""
    path = tmp_path / "l.jsonl"
    rec = Recorder(LedgerWriter(path), {"a": Tier("m", True, None)}, tmp_path / "ck")
    _checkpoint(tmp_path / "ck" / "a" / "shard-1", 11.25)  # an earlier run's
    rec.started("a", 0, 1, (0, 4), 10.0)
    assert rec.ended("a", 0, 1, (0, 4), 0, "succeeded") is False  # kept nothing
    rec.started("a", 1, 1, (0, 4), 11.0, fallback="late")
    assert rec.ended("a", 1, 1, (0, 4), 1, "failed") is True
    rec.started("a", 2, 1, (0, 4), 12.0)
    _checkpoint(tmp_path / "ck" / "a" / "shard-2", 12.5)  # made by the attempt
    assert rec.ended("a", 2, 1, (0, 4), 1, "failed") is True
    rec.started("a", 2, 2, (0, 4), 13.0)  # the next attempt sees what it committed
    rec.close()
    lines = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [(x["event"], x["committed"]) for x in lines] == [
        ("start", 0),
        ("end", 0),
        ("start", 2),
        ("end", 2),
        ("start", 0),
        ("end", 2),
        ("start", 2),
    ]
    assert (lines[1]["first_batch_at"], lines[3]["first_batch_at"]) == (None, 11.25)
    assert (lines[2]["spot"], lines[2]["fallback"]) == (False, "late")
