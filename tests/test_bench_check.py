"""``bench_check.py --count``: instructions of whole commands, children included (issue #16).

The comparison with ``snakemake -n`` is made in instructions, which the shared host's
speed does not change; these tests run the real valgrind (skipped where it is not
installed) on small commands, and check the arithmetic of the rates that say how far
a ratio of instructions is a ratio of CPU seconds.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_check  # noqa: E402  (benchmark scripts, not a package)
import count_instructions as ci  # noqa: E402

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None and not os.environ.get("EXO_REQUIRE_VALGRIND"),
    reason="valgrind is not installed (scripts/system-deps.sh installs it)",
)


def test_the_counting_environment_fixes_the_hash_seed_and_writes_bytecode() -> None:
    env = ci.counting_env({"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/bin", "PYTHONHASHSEED": "7"})
    assert env == {"PATH": "/bin", "PYTHONHASHSEED": "0"}


@needs_valgrind
def test_children_are_counted_and_summed(tmp_path: Path) -> None:
    true = shutil.which("true")
    assert true is not None
    env = ci.counting_env()
    alone = ci.cachegrind("true", [true], tmp_path, env)
    assert alone.processes == 1 and alone.instructions > 0
    three = ci.cachegrind("sh", ["sh", "-c", f"{true}; {true}; {true}"], tmp_path, env)
    # the shell and its three children, each one output file, summed
    assert three.processes >= 3
    assert three.instructions > 3 * alone.instructions * 0.9


@needs_valgrind
def test_a_failing_command_is_reported_not_counted(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="failed under cachegrind"):
        ci.cachegrind("false", ["sh", "-c", "exit 3"], tmp_path, ci.counting_env())


def test_the_summary_lines_of_every_output_file_are_summed(tmp_path: Path) -> None:
    (tmp_path / "cg.1").write_text("desc: --cache-sim=no\ncmd: a\nevents: Ir\nsummary: 1200\n")
    (tmp_path / "cg.2").write_text("events: Ir\nfl=x\n1 3\nsummary: 34\n")
    assert ci.summed(tmp_path) == (1234, 2)
    (tmp_path / "cg.3").write_text("events: Ir\n")  # a process valgrind did not finish
    with pytest.raises(SystemExit, match="no 'summary:' line"):
        ci.summed(tmp_path)


def test_the_ratio_of_instructions_is_an_estimate_when_the_rates_differ() -> None:
    sm = ci.Rate("snakemake -n", 4_000_000_000, user=(4.0, 4.2, 3.8), system=(0.4, 0.4, 0.4))
    exo = ci.Rate("exoc check", 1_000_000_000, user=(1.0, 1.1, 0.9), system=(0.0, 0.0, 0.0))
    assert sm.per_giga(with_system=True) == pytest.approx((1.1, 1.15, 1.05))
    assert sm.per_giga(with_system=False) == pytest.approx((1.0, 1.05, 0.95))
    line = ci.prediction(sm, exo)
    assert "4.00x the instructions" in line
    assert "1.10x" in line and "only an estimate" in line
    assert "predicted CPU ratio 4.40x" in line and "(sums) 4.40x" in line
    same = ci.Rate("exoc check", 1_000_000_000, user=(1.1,), system=(0.0,))
    assert "stands for the ratio of CPU" in ci.prediction(sm, same)
    table = ci.rates_table([sm, exo])
    assert "| snakemake -n | 4,000M | 3 | 4.000 (3.800-4.200) | 0.400 (0.400-0.400) |" in table


def test_the_counts_table_gives_each_command_its_ratio_to_the_reference() -> None:
    rows = [
        ("2,000 steps", ci.Count("snakemake -n", 30_000_000_000, 1, 900.0)),
        ("2,000 steps", ci.Count("exoc check", 5_000_000_000, 1, 80.0)),
        ("5,000 steps", ci.Count("exoc check", 11_000_000_000, 1, 200.0)),
    ]
    lines = ci.counts_table(rows, "snakemake -n").splitlines()
    assert lines[2] == "| 2,000 steps | snakemake -n | 30,000M | 1 |  | 900 |"
    assert lines[3] == "| 2,000 steps | exoc check | 5,000M | 1 | 6.00x | 80 |"
    assert lines[4] == "| 5,000 steps | exoc check | 11,000M | 1 |  | 200 |"


@needs_valgrind
def test_count_mode_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 10-step workflow written, its IR checked, ``exoc check`` counted, one plain run."""
    args = ["--count", "--no-snakemake", "--sizes", "10", "--calibrate", "1"]
    bench_check.main([*args, "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 10 steps | exoc check"))
    instructions = int(row.split("|")[3].strip().removesuffix("M").replace(",", ""))
    assert 100 < instructions < 20_000  # millions: start-up and a tiny check
    assert "CPU per instruction, 1 interleaved plain runs each on 10 steps" in out
    assert (tmp_path / "steps-10" / "flow.exo").exists()


def test_each_command_takes_each_place_in_turn() -> None:
    tools = ["snakemake -n", "exoc check", "exoc check [base]"]
    orders = [ci.turned(tools, r) for r in range(4)]
    assert orders[1] == ["exoc check", "exoc check [base]", "snakemake -n"]
    assert orders[3] == orders[0] == tools
    assert {o[0] for o in orders[:3]} == set(tools)
