"""Durable run state in SQLite, and the lock that keeps one runner per state directory.

The database uses WAL journaling with ``synchronous=NORMAL``: a committed
transaction survives the runner being killed at any moment (kill -9, Ctrl-C,
a crash); only a power loss can drop the last transactions, which is safe
because publishing a shard is an atomic rename checked against the disk on
resume. Secrets and environment values are never written here.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT UNIQUE NOT NULL,
    workflow TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    runner_pid INTEGER,
    runner_start TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- what the run executes: a later `exoc run` of an unchanged program reuses this plan
    program_hash TEXT,
    plan_json TEXT,
    graph_json TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    output_dir TEXT NOT NULL,
    shards INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS shards (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    preemptions INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    pid_start TEXT,
    log TEXT,
    reason TEXT,
    PRIMARY KEY (run_id, step, idx)
);
"""


class StateCorrupt(Exception):
    """The state database is not one a runner wrote, or is damaged."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class StateLocked(Exception):
    """Another runner holds the state directory."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is locked by {holder}")


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    workflow: str
    state: str
    started_at: float
    updated_at: float
    runner_pid: int | None
    runner_start: str | None
    cancel_requested: bool
    program_hash: str | None = None
    plan_json: str | None = None
    graph_json: str | None = None


@dataclass(frozen=True, slots=True)
class StepRow:
    step: str
    fingerprint: str
    output_dir: str
    shards: int


@dataclass(frozen=True, slots=True)
class ShardRow:
    step: str
    idx: int
    #: ``pending`` | ``running`` | ``done`` | ``failed``
    state: str = "pending"
    #: Attempts started so far (``EXO_ATTEMPT`` of the latest one).
    attempts: int = 0
    #: Error retries used (non-zero exits, timeouts) in the current invocation.
    retries: int = 0
    preemptions: int = 0
    pid: int | None = None
    pid_start: str | None = None
    log: str | None = None
    reason: str | None = None

    def with_(self, **changes: object) -> ShardRow:
        """A copy with ``changes``, as ``dataclasses.replace`` makes it, without its walk
        over the fields' metadata: the runner makes three per shard (see docs/benchmarks.md)."""
        new = object.__new__(ShardRow)
        for name in _SHARD_FIELDS:
            value = changes.pop(name) if name in changes else getattr(self, name)
            object.__setattr__(new, name, value)
        if changes:
            raise TypeError(f"ShardRow has no field {', '.join(sorted(changes))}")
        return new


_SHARD_FIELDS = tuple(f.name for f in fields(ShardRow))


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (identifies a process across PID reuse)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def same_process(pid: int | None, start: str | None) -> bool:
    return pid is not None and start is not None and process_start(pid) == start


@contextmanager
def exclusive_lock(state_dir: Path) -> Iterator[IO[str]]:
    """Hold ``state_dir/lock`` for the block; :class:`StateLocked` if another runner has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StateLocked(path, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"exoc run, pid {os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


def is_locked(state_dir: Path) -> bool:
    path = state_dir / "lock"
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


#: Columns each table of a runner's database has (a database without them is foreign).
_COLUMNS = {
    "meta": {"key", "value"},
    "runs": {"run_id", "workflow", "state", "program_hash", "plan_json", "graph_json"},
    "steps": {"run_id", "step", "fingerprint", "output_dir", "shards"},
    "shards": {"run_id", "step", "idx", "state", "attempts", "pid", "log", "reason"},
}


def _check_file(path: Path) -> bool:
    """Whether the database exists; :class:`StateCorrupt` if the name is not a regular file."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise StateCorrupt(path, "it is a symbolic link, not the database a runner writes")
    if stat.S_ISDIR(st.st_mode):
        raise StateCorrupt(path, "it is a folder, not a database file")
    if not stat.S_ISREG(st.st_mode):
        raise StateCorrupt(path, "it is not a regular file (a device, FIFO or socket)")
    return st.st_size > 0


def _check_database(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged database, or one another program (or a newer exo) wrote."""
    found = db.execute("PRAGMA quick_check").fetchall()
    if found != [("ok",)]:
        first = str(found[0][0]) if found else "no answer"
        raise StateCorrupt(path, f"it is damaged (SQLite's check says: {first[:200]})")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    foreign = sorted(tables - set(_COLUMNS) - {"sqlite_sequence"})
    if foreign:
        raise StateCorrupt(path, f"it is not an exo run state (it has a `{foreign[0][:40]}` table)")
    # A runner killed while creating the schema leaves some tables: the rest are created.
    for table in sorted(tables & set(_COLUMNS)):
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if not _COLUMNS[table] <= have:
            raise StateCorrupt(path, f"it is not an exo run state (table `{table}` differs)")
    row = None
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is not None and row[0] != str(SCHEMA_VERSION):
        raise StateCorrupt(
            path,
            f"its schema version is {str(row[0])[:20]!r}; this exoc reads version "
            f"{SCHEMA_VERSION} (written by another version of exo?)",
        )


def move_aside(path: Path, now: float) -> Path:
    """Keep a broken database (and its journal files) as ``<name>.broken-<time>``; the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    target = path.with_name(f"{path.name}.broken-{stamp}")
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists() and not extra.is_dir():
            extra.rename(target.with_name(target.name + suffix))
    path.rename(target)
    return target


class Store:
    """The SQLite database of one state directory."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the database; :class:`StateCorrupt` if it is not a usable one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        existed = _check_file(path)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            if existed:
                _check_database(self.db, path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self.db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.DatabaseError as err:
            self.db.close()
            if isinstance(err, sqlite3.OperationalError) and not existed:
                raise  # a new database that cannot be written: a folder problem
            raise StateCorrupt(path, f"SQLite says: {err}") from None
        except StateCorrupt:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- runs ------------------------------------------------------------------------

    def latest_run(self, workflow: str) -> RunRow | None:
        row = self.db.execute(
            "SELECT run_id, workflow, state, started_at, updated_at, runner_pid, runner_start,"
            " cancel_requested, program_hash, plan_json, graph_json"
            " FROM runs WHERE workflow = ? ORDER BY seq DESC LIMIT 1",
            (workflow,),
        ).fetchone()
        if row is None:
            return None
        return RunRow(
            run_id=row[0],
            workflow=row[1],
            state=row[2],
            started_at=row[3],
            updated_at=row[4],
            runner_pid=row[5],
            runner_start=row[6],
            cancel_requested=bool(row[7]),
            program_hash=row[8],
            plan_json=row[9],
            graph_json=row[10],
        )

    def create_run(self, run_id: str, workflow: str, now: float) -> None:
        """A new run of ``workflow``; its earlier runs' rows go in the same transaction.

        Only a workflow's latest run is read back (resume, ``status``, ``cancel``,
        ``calibrate``): an older run's rows (its plan, task graph and shards, a
        megabyte or more per 1,000 steps) were dead weight that every open's
        integrity check read again. Each run's history stays in its ledger file.
        Callers stop what an earlier run left running before they start a new one."""
        with self.transaction() as db:
            for table in ("shards", "steps"):
                db.execute(
                    f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM runs WHERE workflow = ?)",
                    (workflow,),
                )
            db.execute("DELETE FROM runs WHERE workflow = ?", (workflow,))
            db.execute(
                "INSERT INTO runs(run_id, workflow, state, started_at, updated_at)"
                " VALUES (?, ?, 'running', ?, ?)",
                (run_id, workflow, now, now),
            )

    def set_run(self, run_id: str, now: float, **fields: object) -> None:
        allowed = {
            "state",
            "runner_pid",
            "runner_start",
            "cancel_requested",
            "program_hash",
            "plan_json",
            "graph_json",
        }
        assert set(fields) <= allowed, fields
        sets = ", ".join(f"{k} = ?" for k in sorted(fields))
        values = [fields[k] for k in sorted(fields)]
        with self.transaction() as db:
            db.execute(
                f"UPDATE runs SET {sets}, updated_at = ? WHERE run_id = ?",
                (*values, now, run_id),
            )

    # --- steps and shards ------------------------------------------------------------

    def steps(self, run_id: str) -> dict[str, StepRow]:
        rows = self.db.execute(
            "SELECT step, fingerprint, output_dir, shards FROM steps WHERE run_id = ?", (run_id,)
        )
        return {r[0]: StepRow(*r) for r in rows}

    def shards(self, run_id: str) -> dict[tuple[str, int], ShardRow]:
        rows = self.db.execute(
            "SELECT step, idx, state, attempts, retries, preemptions, pid, pid_start, log, reason"
            " FROM shards WHERE run_id = ?",
            (run_id,),
        )
        return {(r[0], r[1]): ShardRow(*r) for r in rows}

    def replace_steps(self, run_id: str, rows: Sequence[StepRow]) -> None:
        """(Re)register steps with all their shards pending, in one transaction."""
        if not rows:
            return
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM shards WHERE run_id = ? AND step = ?",
                ((run_id, row.step) for row in rows),
            )
            db.executemany(
                "INSERT OR REPLACE INTO steps(run_id, step, fingerprint, output_dir, shards)"
                " VALUES (?, ?, ?, ?, ?)",
                ((run_id, r.step, r.fingerprint, r.output_dir, r.shards) for r in rows),
            )
            db.executemany(
                "INSERT INTO shards(run_id, step, idx, state) VALUES (?, ?, ?, 'pending')",
                ((run_id, row.step, i) for row in rows for i in range(row.shards)),
            )

    def drop_step(self, run_id: str, step: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM shards WHERE run_id = ? AND step = ?", (run_id, step))
            db.execute("DELETE FROM steps WHERE run_id = ? AND step = ?", (run_id, step))

    def save(self, run_id: str, rows: Iterable[ShardRow]) -> None:
        """Write shard rows in one transaction."""
        batch = [
            (
                r.state,
                r.attempts,
                r.retries,
                r.preemptions,
                r.pid,
                r.pid_start,
                r.log,
                r.reason,
                run_id,
                r.step,
                r.idx,
            )
            for r in rows
        ]
        if not batch:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE shards SET state = ?, attempts = ?, retries = ?, preemptions = ?,"
                " pid = ?, pid_start = ?, log = ?, reason = ?"
                " WHERE run_id = ? AND step = ? AND idx = ?",
                batch,
            )
