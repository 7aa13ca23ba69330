"""Instructions of whole commands (valgrind's cachegrind), and how well they predict CPU.

On a shared host the CPU seconds of one command move by more than the changes
being measured, from minute to minute. The number of instructions a process
executes does not depend on the host's load: ``valgrind --tool=cachegrind
--cache-sim=no`` counts them (user space only), here for the command and every
process it starts (``--trace-children=yes``), with ``PYTHONHASHSEED=0`` so that
both Python programs hash, and so iterate, the same way every run.

A ratio of instructions is a ratio of CPU seconds only if both commands run
their instructions at the same rate on this host. :func:`rates` measures that:
each command's CPU seconds of plain runs (interleaved, so both see the same
minutes of the host) divided by its instruction count.

Used by ``bench_check.py --count``; a sibling script, not a package.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Count:
    """One command's instructions under cachegrind, its processes' summed."""

    tool: str
    instructions: int
    processes: int
    seconds: float  # wall seconds under valgrind (tens of times a plain run)


@dataclass(frozen=True)
class Rate:
    """CPU seconds of plain runs of one command, against its instruction count."""

    tool: str
    instructions: int
    user: tuple[float, ...]  # user CPU seconds of each run
    system: tuple[float, ...]  # system CPU seconds of each run

    def per_giga(self, *, with_system: bool) -> tuple[float, ...]:
        """CPU seconds per 10^9 instructions, run by run (nanoseconds per instruction)."""
        cpu = (u + s for u, s in zip(self.user, self.system, strict=True))
        return tuple(c / self.instructions * 1e9 for c in (cpu if with_system else self.user))


def counting_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment both commands are counted and timed in: the hash seed fixed,
    and bytecode caches written (a warm-up run then leaves them warm for every run)."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONHASHSEED"] = "0"
    return env


def valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None:
        raise SystemExit("valgrind not found: install it (apt-get install valgrind) to count")
    return found


def summed(folder: Path) -> tuple[int, int]:
    """Instructions summed over every cachegrind output file in ``folder``, and their number."""
    total = files = 0
    for path in sorted(folder.iterdir()):
        m = _SUMMARY.search(path.read_text(errors="replace"))
        if m is None:
            raise SystemExit(f"{path}: no 'summary:' line (did valgrind finish?)")
        total += int(m.group(1))
        files += 1
    if files == 0:
        raise SystemExit(f"{folder}: cachegrind wrote no output")
    return total, files


def cachegrind(tool: str, cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Count:
    """``cmd`` run once under cachegrind with its children traced (it must succeed)."""
    with tempfile.TemporaryDirectory(prefix="exo-cg-") as tmp:
        argv = [
            valgrind(),
            "--tool=cachegrind",
            "--cache-sim=no",
            "--trace-children=yes",
            f"--cachegrind-out-file={tmp}/cg.%p",
            *cmd,
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(
                f"{tool} failed under cachegrind (exit {proc.returncode}): {' '.join(cmd)}\n"
                + proc.stderr.decode(errors="replace")[-3000:]
            )
        instructions, processes = summed(Path(tmp))
    return Count(tool, instructions, processes, seconds)


def plain_cpu(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """User and system CPU seconds of one plain run (it must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(list(cmd), cwd=cwd, env=dict(env), capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def turned(tools: Sequence[_T], r: int) -> list[_T]:
    """``tools`` in the order of round ``r``: turned by one every round, so that each
    takes each place in turn (a shared host's speed drifts within a round)."""
    k = r % len(tools)
    return [*tools[k:], *tools[:k]]


def rates(
    tools: Sequence[tuple[str, Sequence[str]]],
    counts: Mapping[str, int],
    cwd: Path,
    env: Mapping[str, str],
    rounds: int,
) -> list[Rate]:
    """``rounds`` rounds of one plain run of each command, the order turned by one every
    round (each command's runs spread over the same minutes), against its instructions."""
    user: dict[str, list[float]] = {name: [] for name, _ in tools}
    system: dict[str, list[float]] = {name: [] for name, _ in tools}
    for r in range(rounds):
        for name, cmd in turned(tools, r):
            u, s = plain_cpu(cmd, cwd, env)
            user[name].append(u)
            system[name].append(s)
    return [Rate(name, counts[name], tuple(user[name]), tuple(system[name])) for name, _ in tools]


def counts_table(rows: Sequence[tuple[str, Count]], reference: str) -> str:
    """Markdown: each (workload, count), and its ratio to ``reference`` on the same workload."""
    by_label = {(label, c.tool): c.instructions for label, c in rows}
    lines = [
        f"| workload | command | instructions | processes | {reference} / command "
        "| under cachegrind (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, c in rows:
        ref = by_label.get((label, reference))
        ratio = "" if ref is None or c.tool == reference else f"{ref / c.instructions:.2f}x"
        lines.append(
            f"| {label} | {c.tool} | {c.instructions / 1e6:,.0f}M | {c.processes} | {ratio} "
            f"| {c.seconds:.0f} |"
        )
    return "\n".join(lines)


def _spread(xs: Sequence[float]) -> str:
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def rates_table(rs: Sequence[Rate]) -> str:
    """Markdown: each command's CPU seconds and seconds per 10^9 instructions, run by run."""
    lines = [
        "| command | instructions | runs | user CPU (s) | system CPU (s) "
        "| user s / 10^9 instr. | (user + system) s / 10^9 instr. |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rs:
        lines.append(
            f"| {r.tool} | {r.instructions / 1e6:,.0f}M | {len(r.user)} | {_spread(r.user)} "
            f"| {_spread(r.system)} | {_spread(r.per_giga(with_system=False))} "
            f"| {_spread(r.per_giga(with_system=True))} |"
        )
    return "\n".join(lines)


def prediction(reference: Rate, other: Rate) -> str:
    """How far the ratio of instructions is the ratio of CPU seconds, in words."""
    ratio = reference.instructions / other.instructions
    ref_rate = statistics.median(reference.per_giga(with_system=True))
    other_rate = statistics.median(other.per_giga(with_system=True))
    measured = (sum(reference.user) + sum(reference.system)) / (sum(other.user) + sum(other.system))
    factor = ref_rate / other_rate
    verdict = (
        "the same rate within 5%: the ratio of instructions stands for the ratio of CPU"
        if abs(factor - 1) <= 0.05
        else "the rates differ by more than 5%: the ratio of instructions is only an "
        "estimate of the ratio of CPU seconds"
    )
    return (
        f"{reference.tool} / {other.tool}: {ratio:.2f}x the instructions; "
        f"CPU per instruction (median, user + system) {ref_rate:.3f} against "
        f"{other_rate:.3f} s / 10^9, {factor:.2f}x ({verdict}); "
        f"predicted CPU ratio {ratio * factor:.2f}x, measured in these runs "
        f"(sums) {measured:.2f}x"
    )
