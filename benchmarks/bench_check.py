"""Compile benchmark: ``exoc check`` on generated workflows vs ``snakemake -n`` (DESIGN §8).

Generates workflows of 1,000 and 10,000 steps (``gen_workflows.py``), then, in the
same run, times ``exoc check`` on each and ``snakemake -n`` on the equivalent
10,000-job Snakefile, each as a fresh process (interpreter start-up included,
as a user sees it), and prints a Markdown table of wall times and the ratio.

Snakemake is not a project dependency: the script makes its own virtualenv for
it (by default in the user cache folder) and installs a pinned version there.

Every tool gets one untimed warm-up run first (page cache, ``.pyc`` files and
any per-user cache such as the parser tables), then ``--repeat`` timed runs;
the table shows the median, min and max.

Usage::

    python benchmarks/bench_check.py [--repeat 5] [--sizes 1000 10000]
        [--pure-python] [--compare-exoc NAME=PATH] [--plan SECONDS] [--count]

``--pure-python`` adds rows with Lark's pure-Python parser (``EXO_PARSER=python``)
where the optional ``lark-cython`` is installed; ``--compare-exoc`` times another
build on the same files in the same run (before/after on a loaded machine);
``--plan`` plans the largest workflow, the one just checked, with that time limit.
The start-up table gives the CPU of ``exoc --version``, ``--help`` and a small check.

``--count`` times nothing: it counts the instructions of ``exoc check`` and
``snakemake -n`` on every size (valgrind's cachegrind, children traced,
``PYTHONHASHSEED=0``; ``count_instructions.py``), which the host's load does not
change, and gives their ratio; then ``--calibrate N`` interleaved plain runs of each on
the largest size say whether both run their instructions at the same CPU rate here
(if not, the ratio of instructions is only an estimate of the ratio of CPU seconds)::

    python benchmarks/bench_check.py --count --sizes 2000 5000 10000 [--calibrate 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import count_instructions  # sibling scripts, not a package
import gen_workflows

SNAKEMAKE_VERSION = "9.27.1"


@dataclass(frozen=True)
class Timing:
    label: str
    tool: str
    runs: tuple[float, ...]  # wall seconds
    cpu: tuple[float, ...]  # user + system seconds of the child process

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def default_venv() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "exo-bench" / f"snakemake-{SNAKEMAKE_VERSION}"


def ensure_snakemake(venv: Path) -> Path:
    """The snakemake executable of ``venv``, creating the venv and installing it if needed."""
    exe = venv / "bin" / "snakemake"
    if exe.exists():
        return exe
    print(f"installing snakemake {SNAKEMAKE_VERSION} into {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            f"snakemake=={SNAKEMAKE_VERSION}",
        ],
        check=True,
    )
    return exe


def find_exoc(given: str | None) -> Path:
    if given:
        return Path(given)
    beside = Path(sys.executable).with_name("exoc")
    if beside.exists():
        return beside
    found = shutil.which("exoc")
    if found is None:
        raise SystemExit("exoc not found: install the project (pip install -e .) or pass --exoc")
    return Path(found)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(
    cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall and CPU seconds of one run (CPU time is steadier on a shared machine)."""
    c0, t0 = _children_cpu(), time.perf_counter()
    full = None if env is None else {**os.environ, **env}
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, check=False, env=full)
    return time.perf_counter() - t0, _children_cpu() - c0, proc


def measure(
    label: str,
    tool: str,
    cmd: Sequence[str],
    cwd: Path,
    repeat: int,
    env: dict[str, str] | None = None,
) -> Timing:
    """One untimed warm-up run (which must succeed), then ``repeat`` timed runs."""
    _, _, proc = timed(cmd, cwd, env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"{tool} failed on {label} (exit {proc.returncode}): {' '.join(cmd)}")
    runs: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        dt, dc, proc = timed(cmd, cwd, env)
        if proc.returncode != 0:
            raise SystemExit(f"{tool} failed on {label} (exit {proc.returncode})")
        runs.append(dt)
        cpu.append(dc)
        print(f"  {tool:<12} {label:<14} {dt:7.3f} s wall {dc:7.3f} s CPU", file=sys.stderr)
    return Timing(label, tool, tuple(runs), tuple(cpu))


def interleaved(
    label: str, tools: Sequence[tuple[str, Sequence[str]]], cwd: Path, rounds: int
) -> str:
    """``rounds`` rounds of one run of each tool, the order turned by one every round,
    after one untimed warm-up of each: on a shared machine whose speed drifts from
    minute to minute, each round's ratios compare runs made within the same minutes.
    Returns a Markdown table of each round's CPU seconds and its ratios to the first
    tool (``snakemake -n``), and the ratio of the sums."""
    for _, cmd in tools:
        timed(cmd, cwd)
    cpu: dict[str, list[float]] = {name: [] for name, _ in tools}
    for r in range(rounds):
        for name, cmd in count_instructions.turned(tools, r):
            dt, dc, proc = timed(cmd, cwd)
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed on {label} (exit {proc.returncode})")
            cpu[name].append(dc)
            print(f"  round {r + 1} {name:<20} {dt:7.3f} s wall {dc:7.3f} s CPU", file=sys.stderr)
    first = tools[0][0]
    rows = [
        f"| round | {' | '.join(f'{n} CPU (s)' for n, _ in tools)} | "
        + " | ".join(f"{first} / {n}" for n, _ in tools[1:])
        + " |",
        "|---" * (2 * len(tools)) + "|",
    ]
    for r in range(rounds):
        ratios = [cpu[first][r] / cpu[n][r] for n, _ in tools[1:]]
        rows.append(
            f"| {r + 1} | "
            + " | ".join(f"{cpu[n][r]:.3f}" for n, _ in tools)
            + " | "
            + " | ".join(f"{x:.2f}x" for x in ratios)
            + " |"
        )
    sums = [sum(cpu[n]) for n, _ in tools]
    rows.append(
        "| sum | "
        + " | ".join(f"{x:.3f}" for x in sums)
        + " | "
        + " | ".join(f"{sums[0] / x:.2f}x" for x in sums[1:])
        + " |"
    )
    return "\n".join(rows)


def snakemake_jobs(exe: Path, cwd: Path) -> int:
    """Number of jobs in Snakemake's dry run (the 'total' row of its job stats)."""
    proc = subprocess.run(
        [str(exe), "-n", "-c1"], cwd=cwd, capture_output=True, text=True, check=True
    )
    m = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.MULTILINE)
    if m is None:
        raise SystemExit("could not read the job count from snakemake -n")
    return int(m.group(1))


def verify_exo(flow: Path, spec: gen_workflows.WorkflowSpec) -> None:
    """The compiled IR has exactly the generated steps and dependency edges."""
    from exo.compiler.frontend import compile_file
    from exo.compiler.ir import step_dag

    program = compile_file(flow).program
    dag = step_dag(program)
    steps = {s.name for s in program.steps}
    want_steps = {s.name for s in spec.steps}
    edges = {(a, b) for a, b in dag.edges() if a in steps and b in steps}
    if steps != want_steps or edges != set(spec.edges()):
        raise SystemExit(f"{flow}: the IR does not match the generated workflow")


def import_probe() -> str:
    """How long importing the CLI takes, and which heavy libraries it pulls in."""
    code = (
        "import sys, time; t = time.perf_counter(); import exo.compiler.cli; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('cvxpy', 'kubernetes', 'scipy', 'numpy', 'networkx', 'jinja2') "
        'if m in sys.modules]; print(f\'{dt:.3f} s, loads: {", ".join(heavy) or "none"}\')'
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def table(timings: list[Timing], steps: dict[str, int]) -> str:
    rows = [
        "| workload | tool | jobs | wall median (s) | wall min-max (s) | CPU median (s) | runs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for t in timings:
        rows.append(
            f"| {t.label} | {t.tool} | {steps[t.label]:,} | {t.median:.3f} | "
            f"{min(t.runs):.3f}-{max(t.runs):.3f} | {t.median_cpu:.3f} | {len(t.runs)} |"
        )
    return "\n".join(rows)


_STAGES = """
import gc, sys, time
T = time.process_time
t = T()
import exo.compiler.cli
t_import = T() - t
from exo.compiler.frontend import compile_file
from exo.compiler.parser import ExoParser, default_parser, parse_text
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
t = T(); default_parser(); t_build = T() - t
gc.disable()
t = T(); parse_text(text, path); t_parse = T() - t
plain = ExoParser(compiled=False)
t = T(); plain.parse(text, path); t_plain = T() - t
gc.enable()
t = T(); compile_file(path); t_compile = T() - t
print(t_import, t_build, t_parse, t_plain, t_compile - t_parse, int(default_parser().compiled))
"""


def stages(flow: Path) -> str:
    """CPU seconds of each front-end stage on one file, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _STAGES, str(flow)], capture_output=True, text=True, check=True
    )
    imp, build, parse, plain, rest, compiled = (float(x) for x in out.stdout.split())
    used = "lark-cython" if compiled else "pure Python"
    return (
        "| stage | CPU (s) |\n|---|---:|\n"
        f"| start-up: `import exo.compiler.cli` | {imp:.3f} |\n"
        f"| parser construction | {build:.3f} |\n"
        f"| parse (Lark LALR + syntax tree), {used} | {parse:.3f} |\n"
        f"| parse, Lark's pure-Python parser (for comparison) | {plain:.3f} |\n"
        f"| rest of `compile_file` (names, lowering, DAG, catalog) | {rest:.3f} |"
    )


def startup(exocs: Sequence[tuple[str, Path]], repeat: int) -> list[Timing]:
    """CPU of the light commands of each exoc: ``--version``, ``--help``, a small check."""
    small = Path(__file__).resolve().parent.parent / "examples" / "quickstart.exo"
    out: list[Timing] = []
    for args in (["--version"], ["--help"], ["check", str(small)]):
        for name, exe in exocs:
            label = "exoc " + " ".join(a if a.startswith("-") else Path(a).name for a in args)
            out.append(measure(label, name, [str(exe), *args], small.parent, repeat))
    return out


def plan_largest(exoc: Path, flow: Path, time_limit: float) -> str:
    """``exoc plan`` on the workflow that was checked: status, gap, wall and CPU."""
    cmd = [str(exoc), "plan", "--format", "json", "--time-limit", str(time_limit), flow.name]
    dt, dc, proc = timed(cmd, flow.parent)
    if proc.returncode not in (0, 3):
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"exoc plan failed on {flow} (exit {proc.returncode})")
    data = json.loads(proc.stdout)
    gap = data.get("gap")
    shown = "n/a" if gap is None else f"{100 * gap:.3g}%"
    return (
        f"`exoc plan --time-limit {time_limit:g}` on the same workflow: status {data['status']}, "
        f"{len(data.get('steps', [])):,} steps placed, gap {shown}, {dt:.1f} s wall, {dc:.1f} s CPU"
    )


def arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="exoc check vs snakemake -n (DESIGN §8).")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, help="where to write workflows (default: a temp dir)")
    ap.add_argument("--exoc", help="the exoc executable (default: the one beside this Python)")
    ap.add_argument("--snakemake-venv", type=Path, default=None)
    ap.add_argument("--snakefile", choices=("wildcards", "rules"), default="wildcards")
    ap.add_argument("--no-snakemake", action="store_true", help="time exoc check only")
    ap.add_argument("--no-verify", action="store_true", help="skip the IR/job-count checks")
    ap.add_argument(
        "--compare-exoc",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another exoc (say, an older build) timed on the same workloads in the same run",
    )
    ap.add_argument(
        "--pure-python",
        action="store_true",
        help="also time exoc check with EXO_PARSER=python (where lark-cython is installed)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=0,
        metavar="N",
        help="then N interleaved rounds on the largest workflow: snakemake -n and each exoc "
        "once a round, in turn (ratios within each round; needs snakemake)",
    )
    ap.add_argument(
        "--count",
        action="store_true",
        help="count instructions instead of timing: every size's exoc check (and each "
        "--compare-exoc) and snakemake -n once under cachegrind, children traced, "
        "PYTHONHASHSEED=0; then --calibrate rounds of plain runs on the largest size",
    )
    ap.add_argument(
        "--calibrate",
        type=int,
        default=3,
        metavar="N",
        help="with --count: N interleaved plain runs of each command on the largest size, "
        "to see whether both run their instructions at the same CPU rate (0: none)",
    )
    ap.add_argument(
        "--plan",
        type=float,
        default=None,
        metavar="SECONDS",
        help="also plan the largest workflow with this --time-limit (same workload)",
    )
    return ap.parse_args(argv)


def workflow(a: argparse.Namespace, work: Path, n: int) -> Path:
    """The folder of the generated ``n``-step workflow (flow.exo and its Snakefile),
    its IR checked against the generated steps and edges unless ``--no-verify``."""
    spec = gen_workflows.generate(n, a.seed)
    d = work / f"steps-{n}"
    gen_workflows.write(spec, d, a.snakefile)
    if not a.no_verify:
        verify_exo(d / "flow.exo", spec)
    return d


def collect(
    a: argparse.Namespace,
    exoc: Path,
    work: Path,
    snakemake: Path | None,
    others: list[tuple[str, Path]],
) -> tuple[list[Timing], dict[str, int]]:
    """Every size's workflow written and timed: exoc check (and the other builds), and
    snakemake -n on the largest."""
    largest = max(a.sizes)
    timings: list[Timing] = []
    jobs: dict[str, int] = {}
    for n in sorted(a.sizes):
        d = workflow(a, work, n)
        label = f"{n:,} steps"
        jobs[label] = n
        timings.append(measure(label, "exoc check", [str(exoc), "check", "flow.exo"], d, a.repeat))
        if a.pure_python:
            py = {"EXO_PARSER": "python"}
            cmd = [str(exoc), "check", "flow.exo"]
            timings.append(measure(label, "exoc check [pure Python]", cmd, d, a.repeat, py))
        for name, other in others:
            timings.append(measure(label, name, [str(other), "check", "flow.exo"], d, a.repeat))
        if snakemake is not None and n == largest:
            slabel = f"{n:,} jobs"
            jobs[slabel] = snakemake_jobs(snakemake, d) if not a.no_verify else n + 1
            if jobs[slabel] != n + 1:  # one job per step, plus the target rule ``all``
                raise SystemExit(f"snakemake plans {jobs[slabel]} jobs, expected {n + 1}")
            cmd = [str(snakemake), "-n", "-c1"]
            timings.append(measure(slabel, "snakemake -n", cmd, d, a.repeat))

    return timings, jobs


def summary(
    a: argparse.Namespace,
    timings: list[Timing],
    exoc: Path,
    work: Path,
    snakemake: Path | None,
    others: list[tuple[str, Path]],
) -> None:
    """The ratios on the largest workflow, then ``--rounds`` interleaved rounds."""
    largest = max(a.sizes)
    exo_big = next(
        t for t in timings if t.tool == "exoc check" and t.label.startswith(f"{largest:,}")
    )
    print()
    print(f"exoc check, {largest:,} steps: median {exo_big.median:.3f} s (target <= 2 s)")
    sm = next((t for t in timings if t.tool == "snakemake -n"), None)
    if sm is not None:
        print(
            f"snakemake -n / exoc check on {largest:,}: {sm.median / exo_big.median:.2f}x wall, "
            f"{sm.median_cpu / exo_big.median_cpu:.2f}x CPU (target >= 4x, moonshot >= 10x)"
        )
    for name, _ in others:
        o = next(t for t in timings if t.tool == name and t.label.startswith(f"{largest:,}"))
        print(
            f"{name} / exoc check on {largest:,}: {o.median / exo_big.median:.2f}x wall, "
            f"{o.median_cpu / exo_big.median_cpu:.2f}x CPU"
        )
    if a.rounds > 0 and snakemake is not None:
        d = work / f"steps-{largest}"
        tools = [
            ("snakemake -n", [str(snakemake), "-n", "-c1"]),
            ("exoc check", [str(exoc), "check", "flow.exo"]),
            *((n, [str(p), "check", "flow.exo"]) for n, p in others),
        ]
        print()
        print(f"{a.rounds} interleaved rounds on {largest:,} steps (CPU, user + system):")
        print()
        print(interleaved(f"{largest:,} steps", tools, d, a.rounds))


def count_mode(
    a: argparse.Namespace,
    exoc: Path,
    work: Path,
    snakemake: Path | None,
    others: list[tuple[str, Path]],
) -> None:
    """``--count``: instructions of each command on each size, their ratios, and how
    well instructions predict CPU seconds here for each command."""
    env = count_instructions.counting_env()
    rows: list[tuple[str, count_instructions.Count]] = []
    tools: list[tuple[str, list[str]]] = []
    for n in sorted(a.sizes):
        d = workflow(a, work, n)
        if snakemake is not None and not a.no_verify and snakemake_jobs(snakemake, d) != n + 1:
            raise SystemExit(f"snakemake does not plan {n + 1} jobs on {d}")
        tools = [
            *([("snakemake -n", [str(snakemake), "-n", "-c1"])] if snakemake else []),
            ("exoc check", [str(exoc), "check", "flow.exo"]),
            *((name, [str(p), "check", "flow.exo"]) for name, p in others),
        ]
        for name, cmd in tools:
            count_instructions.plain_cpu(cmd, d, env)  # warm-up: bytecode, .snakemake/
            c = count_instructions.cachegrind(name, cmd, d, env)
            rows.append((f"{n:,} steps", c))
            print(
                f"  {name:<20} {n:>7,} steps {c.instructions / 1e6:>10,.0f}M instructions "
                f"({c.processes} processes, {c.seconds:.0f} s under cachegrind)",
                file=sys.stderr,
            )
    reference = tools[0][0]
    print("Instructions (cachegrind --cache-sim=no --trace-children=yes, PYTHONHASHSEED=0):")
    print()
    print(count_instructions.counts_table(rows, reference))
    if a.calibrate <= 0:
        return
    largest = max(a.sizes)
    counts = {c.tool: c.instructions for label, c in rows if label == f"{largest:,} steps"}
    rs = count_instructions.rates(tools, counts, work / f"steps-{largest}", env, a.calibrate)
    print()
    print(f"CPU per instruction, {a.calibrate} interleaved plain runs each on {largest:,} steps:")
    print()
    print(count_instructions.rates_table(rs))
    print()
    for r in rs[1:]:
        print("- " + count_instructions.prediction(rs[0], r))


def main(argv: list[str] | None = None) -> None:
    a = arguments(argv)

    exoc = find_exoc(a.exoc)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="exo-bench-check-"))
    snakemake = None if a.no_snakemake else ensure_snakemake(a.snakemake_venv or default_venv())
    largest = max(a.sizes)

    others = [(f"exoc check [{n}]", Path(p)) for n, p in (x.split("=", 1) for x in a.compare_exoc)]
    if a.count:
        print(f"Machine: {machine()}, load {os.getloadavg()[0]:.1f}")
        count_mode(a, exoc, work, snakemake, others)
        print(f"load at the end {os.getloadavg()[0]:.1f}")
        return
    timings, jobs = collect(a, exoc, work, snakemake, others)
    sm_version = ""
    if snakemake is not None:
        out = subprocess.run([str(snakemake), "--version"], capture_output=True, text=True)
        sm_version = f", snakemake {out.stdout.strip()} ({a.snakefile} Snakefile)"
    print(f"Machine: {machine()}{sm_version}")
    print(f"`import exo.compiler.cli`: {import_probe()}")
    print()
    print(table(timings, jobs))
    print()
    light = startup(
        [("exoc", exoc), *((n.removeprefix("exoc check "), p) for n, p in others)], a.repeat
    )
    print("Start-up (CPU of a fresh process, median of the runs):")
    print()
    print("| command | exoc | CPU median (s) | wall median (s) |\n|---|---|---:|---:|")
    for t in light:
        print(f"| `{t.label}` | {t.tool} | {t.median_cpu:.3f} | {t.median:.3f} |")
    print()
    print(f"Where the time of `exoc check` goes on {largest:,} steps (one run):")
    print()
    print(stages(work / f"steps-{largest}" / "flow.exo"))
    summary(a, timings, exoc, work, snakemake, others)
    if a.plan is not None:
        print(plan_largest(exoc, work / f"steps-{largest}" / "flow.exo", a.plan))


if __name__ == "__main__":
    main()
