"""Helpers for the local-runner tests, and a driver to run a saved plan in a child process.

As a script: ``python localrun.py PLANNED.json WORKFLOW_FILE STATE_DIR JOBS [OPTIONS_JSON]``
runs the planned workflow with the local backend and exits with the run's exit
code. The crash and Ctrl-C tests start it as a separate process (so it can be
killed) without paying for the optimizer's imports on every start.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from exo.backends.api import PlannedWorkflow, RunContext, RunReport
from exo.backends.local import LocalBackend, LocalOptions
from exo.compiler.diagnostics import CompileError

PY = sys.executable

HEADER = """
workflow wf {
  deadline = 24h
  budget   = $1000
}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def literal(text: str) -> str:
    """``text`` as an .exo string literal: braces doubled, quotes and backslashes escaped."""
    assert "\n" not in text, "exo strings cannot hold newlines"
    return json.dumps(text.replace("{", "{{").replace("}", "}}"))


def command(*items: str) -> str:
    """An .exo command list; ``items`` holding placeholders are passed through as written."""
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def py_command(code: str, *args: str) -> str:
    """Run one line of Python with this interpreter (``sys.argv[1:]`` = args)."""
    return "[" + ", ".join([json.dumps(PY), '"-c"', literal(code), *map(json.dumps, args)]) + "]"


def sh_command(script: str, *args: str) -> str:
    """Run a one-line ``sh`` script (``$1`` ... = args): tests only, never for user values."""
    head = ['"/bin/sh"', '"-c"', literal(script), '"sh"']
    return "[" + ", ".join([*head, *map(json.dumps, args)]) + "]"


def plan(path: Path, params: Mapping[str, str] | None = None) -> PlannedWorkflow:
    from exo.compiler.pipeline import plan_for

    planned, _ = plan_for(path, dict(params or {}))
    return planned


def run(
    planned: PlannedWorkflow,
    workflow_file: Path,
    *,
    jobs: int = 2,
    fresh: bool = False,
    state_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **options: object,
) -> RunReport:
    opts = LocalOptions.model_validate({"backoff_s": 0.01, "grace_s": 1.0, **options})
    ctx = RunContext(
        workflow_file=str(workflow_file),
        state_dir=str(state_dir or workflow_file.parent / ".exo" / workflow_file.stem),
        jobs=jobs,
        fresh=fresh,
        progress="none",
        environ=dict(os.environ if environ is None else environ),
    )
    return LocalBackend().run(planned, opts, ctx)


def state_dir_of(workflow_file: Path) -> Path:
    return workflow_file.parent / ".exo" / workflow_file.stem


def driver_command(
    planned_json: Path, workflow_file: Path, state_dir: Path, jobs: int, **options: object
) -> list[str]:
    return [
        PY,
        str(Path(__file__).resolve()),
        str(planned_json),
        str(workflow_file),
        str(state_dir),
        str(jobs),
        json.dumps(options),
    ]


def main(argv: list[str]) -> int:
    planned = PlannedWorkflow.model_validate_json(Path(argv[1]).read_text("utf-8"))
    options = json.loads(argv[5]) if len(argv) > 5 else {}
    try:
        report = run(planned, Path(argv[2]), state_dir=Path(argv[3]), jobs=int(argv[4]), **options)
    except CompileError as err:  # what `exoc run` would render: code, message, help
        found = [
            {"code": d.code, "message": d.message, "help": list(d.help)} for d in err.diagnostics
        ]
        print(json.dumps({"diagnostics": found}))
        return 1
    print(report.model_dump_json())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
