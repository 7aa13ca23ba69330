"""``--help`` and ``exoc backends`` at an ordinary terminal width: real argument names,
no type placeholders, and every option name in full (so it can be copied)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from exo.backends.registry import installed, option_rows
from exo.compiler.cli import app

COMMANDS = [
    "check",
    "graph",
    "ir",
    "plan",
    "diff",
    "backends",
    "compile",
    "run",
    "status",
    "cancel",
]
#: What typer prints where a name belongs: ``{file}``, ``<bool>``, ``<path>``, ``<list[Path]>``.
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|<[a-z][a-zA-Z_\[\]]*>")


def run(*args: str, width: int = 80) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def command_options(name: str) -> list[str]:
    """Every option string the command accepts, from click's own parameters."""
    group = typer.main.get_command(app)
    command = group.get_command(typer.Context(group), name)  # type: ignore[attr-defined]
    assert command is not None
    ctx = typer.Context(command)
    options = [p for p in command.get_params(ctx) if p.param_type_name == "option"]
    return [o for p in options for o in (*p.opts, *p.secondary_opts)]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_arguments_and_prints_every_option_in_full(command: str, width: int) -> None:
    text = run(command, "--help", width=width)
    usage = text.splitlines()[0]
    assert usage.startswith(f"Usage: exoc {command} [OPTIONS]"), usage
    assert not PLACEHOLDER.search(text), PLACEHOLDER.search(text)
    assert "…" not in text
    for option in command_options(command):
        assert re.search(rf"(^|[\s,/]){re.escape(option)}(\s|,|$)", text, re.M), option
    assert max(len(line) for line in text.splitlines()) <= max(width, 100)


def test_usage_lines_show_argument_names() -> None:
    assert run("check", "--help").splitlines()[0] == "Usage: exoc check [OPTIONS] FILE..."
    assert run("plan", "--help").splitlines()[0] == "Usage: exoc plan [OPTIONS] FILE"
    assert run("diff", "--help").splitlines()[0] == "Usage: exoc diff [OPTIONS] OLD NEW"
    assert run("--help").splitlines()[0] == "Usage: exoc [OPTIONS] COMMAND [ARGS]..."


def test_flags_have_no_value_and_options_have_their_metavar() -> None:
    text = run("run", "--help")
    assert re.search(r"^  --fresh\s+Start a new run", text, re.M)
    assert re.search(r"^  -h, --help\s+Show this message", text, re.M)
    assert "-t, --target NAME" in text and "-j, --jobs N" in text
    assert "--slurm-container none|apptainer" in text
    assert "--local-clean-env / --no-local-clean-env" in text
    assert "--kubernetes-provider karpenter|gke|aks|eks|none" in text
    assert "--format dot|mermaid" in run("graph", "--help")


def test_a_missing_argument_is_named() -> None:
    result = CliRunner().invoke(app, ["graph"], env={"COLUMNS": "80"})
    assert result.exit_code == 2
    assert "FILE" in result.output and "{file}" not in result.output


@pytest.mark.parametrize("width", [80, 100])
def test_backends_prints_full_option_names(width: int) -> None:
    text = run("backends", width=width)
    assert "…" not in text
    for backend in installed().backends.values():
        for flag, _, _, _ in option_rows(backend):
            assert re.search(rf"^  {re.escape(flag)}(\s|$)", text, re.M), flag
    # a long name puts its description on the next line instead of being cut
    assert re.search(r"^  --kubernetes-ttl-seconds-after-finished INT\n {20,}\S", text, re.M)
