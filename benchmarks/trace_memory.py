"""Where an ``exoc`` command's memory grows: resident set size over time, by stage.

Runs one ``exoc`` command in this process (the arguments after ``--``) while a
thread reads the resident set size (``/proc/self/statm``, Linux) every few
milliseconds. Each time it has moved by ``--step-mb`` since the last line, a line
on stderr gives the seconds since start, the size, and the innermost frames of
the command's own code (``exo/``) that were running: which stage made it grow.
At the end, the peak with its frames, and ``ru_maxrss``. The command's own output
is untouched (stdout stays the plan JSON).

Usage::

    python benchmarks/trace_memory.py [--every-ms 10] [--step-mb 20] -- \\
        plan flow.exo --format json --time-limit 60 -o plan.json

Sampling costs little (a file read every 10 ms); the frames are read only on a
line or a new peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

STATM = Path("/proc/self/statm")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 2**20


def rss_bytes() -> int:
    """The process's resident set size now."""
    return int(STATM.read_text("ascii").split()[1]) * PAGE


def exo_roots() -> tuple[str, ...]:
    """The folders of exo's loaded packages (``exo.compiler``, ``exo.backends``, ...),
    wherever they are installed: a path test on ``exo`` would also match a virtual
    environment inside a checkout named ``exo`` (numpy's frames taken for exo's)."""
    return tuple(
        str(Path(file).parent) + os.sep
        for name, module in list(sys.modules.items())
        if name.startswith("exo.")
        and name.count(".") == 1
        and (file := getattr(module, "__file__", None))
    )


def own_frames(frame: FrameType | None, depth: int) -> list[str]:
    """The ``depth`` innermost frames of the exo code on ``frame``'s stack (file:line:function)."""
    if frame is None:
        return []
    roots = exo_roots()
    own = [f for f in traceback.extract_stack(frame) if f.filename.startswith(roots)]
    return [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in own[-depth:]]


@dataclass
class Trace:
    every_s: float
    step: int
    depth: int
    target: int = field(default_factory=threading.get_ident)
    t0: float = field(default_factory=time.perf_counter)
    peak: int = 0
    peak_at: float = 0.0
    peak_frames: list[str] = field(default_factory=list)
    lines: list[tuple[float, int, list[str]]] = field(default_factory=list)

    def frames(self) -> list[str]:
        return own_frames(sys._current_frames().get(self.target), self.depth)

    def sample(self) -> None:
        last = 0
        while True:
            now = rss_bytes()
            if now > self.peak:
                self.peak, self.peak_at, self.peak_frames = now, self.elapsed(), self.frames()
            if abs(now - last) >= self.step:
                self.lines.append((self.elapsed(), now, self.frames()))
                last = now
            time.sleep(self.every_s)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def report(self) -> str:
        out = [f"{'s':>7} {'RSS MiB':>8}  where (innermost exo frames)"]
        for at, size, frames in self.lines:
            out.append(f"{at:7.1f} {size / MIB:8.0f}  {' | '.join(frames) or '(start-up)'}")
        out.append(f"peak {self.peak / MIB:.0f} MiB at {self.peak_at:.1f} s (sampled)")
        out.extend(f"    {f}" for f in self.peak_frames)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.append(f"ru_maxrss {maxrss:.0f} MiB")
        return "\n".join(out) + "\n"


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every-ms", type=float, default=10.0)
    ap.add_argument("--step-mb", type=float, default=20.0, help="a line per this many MB moved")
    ap.add_argument("--depth", type=int, default=6, help="exo frames per line")
    args = ap.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command or not STATM.exists():
        ap.error("give an exoc command after '--' (Linux only: reads /proc/self/statm)")
    trace = Trace(args.every_ms / 1000.0, int(args.step_mb * 1e6), args.depth)
    threading.Thread(target=trace.sample, daemon=True).start()
    from exo.compiler.cli import main as exoc

    sys.argv = ["exoc", *command]
    try:
        exoc(quick_exit=False)
    finally:
        sys.stderr.write(trace.report())


if __name__ == "__main__":
    main()
