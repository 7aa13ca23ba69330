"""PSPLIB benchmark: exo's optimizer on project-scheduling instances with proven optima.

PSPLIB (Kolisch and Sprecher, 1996) is the standard benchmark of
resource-constrained scheduling. Each instance is converted into an exo workflow
and catalog, written as files (``flow.exo`` and ``catalog.csv``) and planned
through the same front end and optimizer as any user's file:

- a non-dummy job is a duration step; its predecessors are ``after`` edges;
- a mode is an instance type: mode "d periods, q units of renewable resource
  R_k" becomes the catalog row ``R<k>-<q>`` (accelerator ``R<k>``, ``q``
  accelerators per instance) and the step's ``duration { "R<k>-<q>" = <d>h }``;
  a mode that holds no renewable resource runs on ``free`` (accelerator
  ``FREE``, no quota);
- renewable capacities are the quota (``quota { R1 = 14 ... }``), one period is
  one hour, ``objective = time``, no deadline or budget;
- prices (``--prices``): ``units`` (default) charges $0.01 per unit of resource
  per hour plus $0.01 per instance-hour, so among the shortest plans exo
  prefers the one with the fewest resource-hours, as a user would; ``zero``
  makes every plan cost nothing, so that only the makespan is optimised.

Instances the language cannot express are skipped with the reason: a job whose
mode holds several renewable resources (exo's quota counts one accelerator type
per instance type), a binding non-renewable resource (exo has no cumulative
budget per resource besides money), or a zero-duration job other than the
dummy source and sink.

The plan's schedule is then checked against the *original* PSPLIB data, not
exo's own model: every step runs one of its job's modes for exactly that mode's
duration on one instance, precedence holds, at every instant (every start) the
usage of each renewable resource is within its capacity, and the modes' total
use of each non-renewable resource is within its capacity. The makespan is compared with the
published optimum (``optima.csv``; for ``j30mm`` only best-known values exist).

The data stays in ``../shared/reference/psplib`` (read, never copied).

Usage::

    python benchmarks/bench_psplib.py                       # every set, 60 s limit
    python benchmarks/bench_psplib.py --sets j10 j30 --time-limit 60
    python benchmarks/bench_psplib.py --instances j2029_4 j9033_1 -v
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Where the instances are read from (``--data`` replaces it).
DATA = REPO.parent / "shared" / "reference" / "psplib"


@dataclass(frozen=True)
class Mode:
    duration: int
    renewable: tuple[int, ...]
    nonrenewable: tuple[int, ...]


@dataclass(frozen=True)
class Instance:
    name: str
    #: Jobs 1..n+2 as in the file (1 and n+2 are the dummy source and sink).
    modes: dict[int, tuple[Mode, ...]]
    successors: dict[int, tuple[int, ...]]
    renewable: tuple[int, ...]
    nonrenewable: tuple[int, ...]

    @property
    def real_jobs(self) -> list[int]:
        jobs = sorted(self.modes)
        return jobs[1:-1]

    def predecessors(self, job: int) -> list[int]:
        return sorted(i for i, succ in self.successors.items() if job in succ)


def _ints(line: str) -> list[int]:
    return [int(x) for x in line.split()]


def parse(path: Path) -> Instance:
    """A PSPLIB ``.sm`` / ``.mm`` file (both share the layout used here)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    n_ren = n_non = 0
    for line in lines:
        if "- renewable" in line:
            n_ren = int(line.split(":")[1].split()[0])
        elif "- nonrenewable" in line:
            n_non = int(line.split(":")[1].split()[0])
    i = next(k for k, ln in enumerate(lines) if ln.startswith("PRECEDENCE RELATIONS"))
    successors: dict[int, tuple[int, ...]] = {}
    for ln in lines[i + 2 :]:
        if ln.startswith("*"):
            break
        v = _ints(ln)
        successors[v[0]] = tuple(v[3 : 3 + v[2]])
    i = next(k for k, ln in enumerate(lines) if ln.startswith("REQUESTS/DURATIONS"))
    modes: dict[int, list[Mode]] = {}
    job = 0
    for ln in lines[i + 3 :]:
        if ln.startswith("*"):
            break
        v = _ints(ln)
        if len(v) == 3 + n_ren + n_non:
            job, v = v[0], v[1:]
        modes.setdefault(job, []).append(
            Mode(v[1], tuple(v[2 : 2 + n_ren]), tuple(v[2 + n_ren : 2 + n_ren + n_non]))
        )
    i = next(k for k, ln in enumerate(lines) if ln.startswith("RESOURCEAVAILABILITIES"))
    caps = _ints(lines[i + 2])
    return Instance(
        path.stem,
        {j: tuple(m) for j, m in modes.items()},
        successors,
        tuple(caps[:n_ren]),
        tuple(caps[n_ren : n_ren + n_non]),
    )


#: vCPUs per unit of the resource carried by vCPUs (more than any number of concurrent jobs).
CPU_SCALE = 100


def cpu_resource(inst: Instance) -> int | None:
    """The renewable resource carried by vCPUs, if one is needed.

    Each instance type holds one accelerator type, and the quota also limits
    vCPUs: a mode can hold one renewable resource as accelerators and one more as
    vCPUs. The resource chosen is the first one that leaves every mode at most one
    other resource; ``None`` when every mode holds at most one resource already.
    """
    modes = [m for j in inst.real_jobs for m in inst.modes[j]]
    if all(sum(1 for q in m.renewable if q) <= 1 for m in modes):
        return None
    for c in range(len(inst.renewable)):
        if all(sum(1 for k, q in enumerate(m.renewable) if q and k != c) <= 1 for m in modes):
            return c
    return -1


def inexpressible(inst: Instance) -> str | None:
    """Why the language cannot state this instance exactly, or ``None``."""
    if cpu_resource(inst) == -1:
        return "a mode holds two renewable resources besides the one vCPUs can carry"
    if len(inst.real_jobs) >= CPU_SCALE:
        return f"{len(inst.real_jobs)} jobs: the vCPU encoding needs fewer than {CPU_SCALE}"
    for j in inst.real_jobs:
        for m in inst.modes[j]:
            if m.duration == 0:
                return f"job {j} has a zero-duration mode"
    for k, cap in enumerate(inst.nonrenewable):
        worst = sum(max(m.nonrenewable[k] for m in inst.modes[j]) for j in inst.real_jobs)
        if worst > cap:
            return f"non-renewable resource N{k + 1} can bind ({worst} > {cap})"
    return None


@dataclass(frozen=True)
class CatalogRow:
    """A catalog row: the instance type one mode runs on."""

    name: str
    accelerator: str
    count: int
    vcpus: int
    units: int


def _itype(mode: Mode, cpu: int | None) -> CatalogRow:
    """The instance type of a mode.

    Without a vCPU resource: ``R<k>-<q>`` holds ``q`` accelerators ``R<k>`` (``free``
    holds nothing the quota counts). With one (``cpu``), its ``q_c`` units are
    ``CPU_SCALE * q_c + 1`` vCPUs against a quota of ``CPU_SCALE * cap + CPU_SCALE - 1``:
    as fewer than ``CPU_SCALE`` jobs run at once, the vCPU quota holds exactly when
    ``sum q_c <= cap``. A mode holding no accelerator resource runs on a CPU type.
    """
    units = sum(mode.renewable)
    acc = [(k, q) for k, q in enumerate(mode.renewable) if q and k != cpu]
    if cpu is None:
        if not acc:
            return CatalogRow("free", "FREE", 1, 1, 0)
        k, q = acc[0]
        return CatalogRow(f"R{k + 1}-{q}", f"R{k + 1}", q, 1, units)
    qc = mode.renewable[cpu]
    vcpus = CPU_SCALE * qc + 1
    if not acc:
        return CatalogRow(f"C-{qc}", "", 0, vcpus, units)
    k, q = acc[0]
    return CatalogRow(f"R{k + 1}-{q}-C-{qc}", f"R{k + 1}", q, vcpus, units)


def step_name(job: int) -> str:
    return f"j{job}"


def to_exo(inst: Instance, prices: str) -> tuple[str, str]:
    """The workflow file and its catalog CSV."""
    cpu = cpu_resource(inst)
    rows = {_itype(m, cpu) for j in inst.real_jobs for m in inst.modes[j]}
    cat = [
        "instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
        "ondemand_usd_per_hour,spot_usd_per_hour"
    ]
    for r in sorted(rows, key=lambda r: r.name):
        price = 0.0 if prices == "zero" else 0.01 * r.units + 0.01
        cat.append(f"{r.name},{r.accelerator},{r.count},{r.vcpus},1,{price:.2f},")
    quota = [f"    R{k + 1} = {cap}" for k, cap in enumerate(inst.renewable) if k != cpu]
    if cpu is not None:
        cap = inst.renewable[cpu]
        quota.append(f"    cpu = {CPU_SCALE * cap + CPU_SCALE - 1}    # R{cpu + 1} = {cap}")
    out = [
        f"# PSPLIB instance {inst.name}, generated by benchmarks/bench_psplib.py",
        f"workflow psplib-{inst.name.replace('_', '-')} {{",
        "  objective = time",
        '  catalog   = "catalog.csv"',
        "  quota {",
        *quota,
        "  }",
        "}",
    ]
    source, sink = min(inst.modes), max(inst.modes)
    for j in inst.real_jobs:
        best: dict[str, int] = {}
        for m in inst.modes[j]:
            it = _itype(m, cpu).name
            best[it] = min(best.get(it, m.duration), m.duration)
        preds = [step_name(p) for p in inst.predecessors(j) if p not in (source, sink)]
        out.append(f"step {step_name(j)} {{")
        names = ", ".join(f'"{it}"' for it in sorted(best))
        out.append(f"  accelerators = [{names}]")
        if preds:
            out.append(f"  after = [{', '.join(preds)}]")
        out.append("  duration {")
        out.extend(f'    "{it}" = {d}h' for it, d in sorted(best.items()))
        out.append("  }")
        out.append("  spot = never")
        out.append("}")
    return "\n".join(out) + "\n", "\n".join(cat) + "\n"


def validate(inst: Instance, steps: Sequence[dict[str, object]]) -> tuple[list[str], float]:
    """Problems of the plan's schedule under the original data, and its makespan (periods)."""
    problems: list[str] = []
    cpu = cpu_resource(inst)
    by_name = {str(s["name"]): s for s in steps}
    start: dict[int, float] = {}
    dur: dict[int, int] = {}
    use: dict[int, tuple[int, ...]] = {}
    modes: dict[int, Mode] = {}
    for j in inst.real_jobs:
        s = by_name.get(step_name(j))
        if s is None:
            problems.append(f"job {j} is not in the plan")
            continue
        it = str(s["instance_type"])
        fits = [m for m in inst.modes[j] if _itype(m, cpu).name == it]
        if not fits:
            problems.append(f"job {j} runs on {it}, which is none of its modes")
            continue
        mode = min(fits, key=lambda m: m.duration)
        p = float(s["p_duration_h"])  # type: ignore[arg-type]
        if abs(p - mode.duration) > 1e-6:
            problems.append(f"job {j} lasts {p} h, its mode {mode.duration} periods")
        if s["replicas"] != 1 or s["instances"] != 1:  # each would hold the mode's resources
            problems.append(f"job {j} runs {s['replicas']} replicas on {s['instances']} instances")
        start[j], dur[j], use[j] = float(s["start_h"]), mode.duration, mode.renewable  # type: ignore[arg-type]
        modes[j] = mode
    eps = 1e-6
    for j in start:
        if start[j] < -eps:
            problems.append(f"job {j} starts before 0")
        for i in inst.predecessors(j):
            if i in start and start[j] < start[i] + dur[i] - eps:
                problems.append(f"job {j} starts at {start[j]} before job {i} ends")
    for t in sorted(set(start.values())):  # usage only rises at a start
        load = [0] * len(inst.renewable)
        for j in start:
            if start[j] <= t + eps and start[j] + dur[j] > t + eps:
                load = [a + b for a, b in zip(load, use[j], strict=True)]
        for k, (lv, cap) in enumerate(zip(load, inst.renewable, strict=True)):
            if lv > cap:
                problems.append(f"R{k + 1} holds {lv} > {cap} at t={t:g}")
    for k, cap in enumerate(inst.nonrenewable):
        total = sum(m.nonrenewable[k] for m in modes.values())
        if total > cap:
            problems.append(f"N{k + 1} totals {total} > {cap}")
    span = max((start[j] + dur[j] for j in start), default=0.0)
    return problems, span


@dataclass
class Row:
    name: str
    set: str
    optimum: int
    kind: str
    status: str = "skipped"
    makespan: float | None = None
    seconds: float | None = None
    #: CPU seconds of the process (every thread) and of the child processes it
    #: reaped (the split search raced beside HiGHS) over the same span as ``seconds``.
    cpu_seconds: float | None = None
    solver_gap: float | None = None
    gap: float | None = None
    valid: bool = True
    note: str = ""
    problems: list[str] = field(default_factory=list)


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (user and system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_instance(
    inst: Instance, row: Row, time_limit: float | None, prices: str, verbose: bool
) -> Row:
    from exo.compiler.frontend import compile_file
    from exo.compiler.optimizer import optimize

    why = inexpressible(inst)
    if why is not None:
        row.note = why
        return row
    exo, cat = to_exo(inst, prices)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "flow.exo").write_text(exo, encoding="utf-8")
        (Path(tmp) / "catalog.csv").write_text(cat, encoding="utf-8")
        t0, c0 = time.perf_counter(), _cpu()
        compiled = compile_file(Path(tmp) / "flow.exo")
        plan = optimize(
            compiled.program,
            compiled.catalog,
            time_limit_s=time_limit,
            progress=_trace if verbose else None,
        )
        row.seconds = time.perf_counter() - t0
        row.cpu_seconds = _cpu() - c0
    row.status = plan.status
    row.solver_gap = plan.gap
    if plan.status == "infeasible":
        row.valid = False
        row.note = "; ".join(plan.explanation)
        return row
    steps = [s.model_dump(mode="json") for s in plan.steps]
    row.problems, span = validate(inst, steps)
    row.valid = not row.problems
    row.makespan = span
    row.gap = (span - row.optimum) / row.optimum
    if plan.makespan_h is not None and abs(plan.makespan_h - span) > 1e-6:
        row.problems.append(f"plan says makespan {plan.makespan_h}, the schedule ends at {span}")
        row.valid = False
    if plan.status == "optimal" and row.kind != "best-known" and span > row.optimum + 1e-6:
        row.problems.append(f"claims optimal at {span} but the proven optimum is {row.optimum}")
        row.valid = False
    if span < row.optimum - 1e-6 and row.kind != "best-known":
        row.problems.append(f"makespan {span} beats the proven optimum {row.optimum}")
        row.valid = False
    if verbose:
        print(json.dumps({"explanation": plan.explanation}), file=sys.stderr)
    return row


def _trace(p: object) -> None:
    from exo.compiler.cli.planning import describe

    print("   ", describe(p), file=sys.stderr, flush=True)  # type: ignore[arg-type]


def load_optima() -> list[Row]:
    with (DATA / "optima.csv").open(encoding="utf-8") as f:
        return [
            Row(r["instance"], r["set"], int(r["optimum"]), r["kind"]) for r in csv.DictReader(f)
        ]


def summary(rows: Sequence[Row], time_limit: float | None) -> list[str]:
    out = [
        "| set | instances | run | skipped | proven optimal | at the optimum | invalid "
        "| median s | max s | median CPU s | max CPU s | mean gap to optimum | max gap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in sorted({r.set for r in rows}, key=lambda s: (len(s), s)):
        rs = [r for r in rows if r.set == name]
        ran = [r for r in rs if r.seconds is not None]
        secs = [r.seconds for r in ran if r.seconds is not None]
        cpus = [r.cpu_seconds for r in ran if r.cpu_seconds is not None]
        gaps = [r.gap for r in ran if r.gap is not None]
        proven = sum(1 for r in ran if r.status == "optimal")
        at_opt = sum(1 for r in ran if r.gap is not None and r.gap <= 1e-9)
        bad = sum(1 for r in ran if not r.valid)
        out.append(
            f"| {name} | {len(rs)} | {len(ran)} | {len(rs) - len(ran)} | {proven}/{len(ran)} "
            f"| {at_opt}/{len(ran)} | {bad} "
            f"| {statistics.median(secs) if secs else math.nan:.2f} "
            f"| {max(secs) if secs else math.nan:.2f} "
            f"| {statistics.median(cpus) if cpus else math.nan:.2f} "
            f"| {max(cpus) if cpus else math.nan:.2f} "
            f"| {statistics.fmean(gaps) if gaps else math.nan:.2%} "
            f"| {max(gaps) if gaps else math.nan:.2%} |"
        )
    limit = "none" if time_limit is None else f"{time_limit:g} s"
    out.append("")
    out.append(f"time limit per instance: {limit}")
    return out


def set_data(folder: Path) -> None:
    global DATA
    DATA = folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="*", help="sets to run (j10 j12 ... j30 j30mm j60 j90)")
    ap.add_argument("--instances", nargs="*", help="instance names (e.g. j1012_1)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance")
    ap.add_argument("--prices", choices=("units", "zero"), default="units")
    ap.add_argument("--json", type=Path, help="also write every row to this JSON file")
    ap.add_argument("--print-exo", metavar="INSTANCE", help="print one converted instance")
    ap.add_argument("--data", type=Path, default=DATA, help="the PSPLIB reference folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    set_data(args.data)
    if not DATA.is_dir():
        sys.exit(f"no PSPLIB data at {DATA} (the shared reference folder)")
    rows = load_optima()
    if args.print_exo:
        row = next(r for r in rows if r.name == args.print_exo)
        exo, cat = to_exo(parse(DATA / "instances" / _file(row)), args.prices)
        print(exo)
        print(cat)
        return
    if args.sets:
        rows = [r for r in rows if r.set in args.sets]
    if args.instances:
        rows = [r for r in rows if r.name in args.instances]
    import exo.compiler.solve

    print(
        "| instance | set | optimum | kind | status | makespan | gap to optimum | solver gap "
        "| seconds | CPU s | valid | note |"
    )
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        inst = parse(DATA / "instances" / _file(row))
        run_instance(inst, row, args.time_limit, args.prices, args.verbose)
        note = row.note or "; ".join(row.problems[:3])
        print(
            f"| {row.name} | {row.set} | {row.optimum} | {row.kind} | {row.status} "
            f"| {'-' if row.makespan is None else f'{row.makespan:g}'} "
            f"| {'-' if row.gap is None else f'{row.gap:.2%}'} "
            f"| {'-' if row.solver_gap is None else f'{row.solver_gap:.2%}'} "
            f"| {'-' if row.seconds is None else f'{row.seconds:.2f}'} "
            f"| {'-' if row.cpu_seconds is None else f'{row.cpu_seconds:.2f}'} "
            f"| {'yes' if row.valid else 'NO'} | {note} |",
            flush=True,
        )
    print()
    print("\n".join(summary(rows, args.time_limit)))
    if args.json:
        args.json.write_text(
            json.dumps([r.__dict__ for r in rows], indent=1, default=str), encoding="utf-8"
        )


def _file(row: Row) -> str:
    with (DATA / "optima.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["instance"] == row.name:
                return r["file"]
    raise KeyError(row.name)


if __name__ == "__main__":
    main()
