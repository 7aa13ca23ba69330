"""The single home of diagnostics: spans, codes, rendering and suggestions.

Every stage reports user errors as :class:`Diagnostic` values and raises
:class:`CompileError` carrying all of them; nothing else in the compiler
formats an error for a user. Every code is registered in :data:`CODES` and
documented in ``docs/diagnostics.md`` (a test keeps the two in step).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from exo.compiler.names import has_control, is_control

if TYPE_CHECKING:  # rich loads when a diagnostic is rendered, not for every `exoc check`
    from rich.console import Console
    from rich.text import Text


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; the end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(file: str, line: int, column: int, width: int = 1) -> Span:
        return Span(file, line, column, line, column + max(width, 1))

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def _codes(*items: tuple[str, str]) -> dict[str, str]:
    return dict(items)


# Stable codes. Never renumber; retire a code by leaving it documented as unused.
# E0xx: files and syntax · E1xx: names, imports, params · E2xx: types and values
# E3xx: step semantics · E4xx: catalogs · E5xx: graph · E6xx: planning
# E7xx: backends and execution · E9xx: internal.
#: code -> its title (the heading of its section in ``docs/diagnostics.md``).
CODES: dict[str, str] = _codes(
    ("E001", "file cannot be read"),
    ("E002", "file is not valid UTF-8"),
    ("E003", "syntax error: unexpected token"),
    ("E004", "syntax error: unexpected character"),
    ("E005", "syntax error: block not closed at end of file"),
    ("E006", "unterminated string"),
    ("E007", "invalid escape sequence in a string"),
    ("E008", "nesting too deep"),
    ("E009", "number out of range"),
    ("E010", "unknown unit"),
    ("E011", "malformed placeholder in a string"),
    ("E012", "file too large"),
    ("E101", "unknown name"),
    ("E102", "duplicate declaration"),
    ("E103", "duplicate attribute"),
    ("E104", "unknown attribute"),
    ("E105", "unknown declaration kind"),
    ("E106", "unknown placeholder"),
    ("E107", "no workflow declared"),
    ("E108", "more than one workflow"),
    ("E109", "import not found"),
    ("E110", "import outside the project"),
    ("E111", "import cycle"),
    ("E112", "workflow declared in an imported module"),
    ("E113", "bad parameter override"),
    ("E114", "reference to the wrong kind of declaration"),
    ("E115", "duplicate import alias"),
    ("E201", "type error"),
    ("E202", "value must be positive"),
    ("E203", "value out of range"),
    ("E204", "not one of the allowed values"),
    ("E205", "replica range runs backwards"),
    ("E206", "missing required attribute"),
    ("E207", "invalid environment variable name"),
    ("E208", "name too long"),
    ("E209", "invalid container image reference"),
    ("E210", "invalid path or URI"),
    ("E211", "invalid description"),
    ("E230", "bad calibration file"),
    ("E301", "step has no performance model"),
    ("E302", "batch size has no throughput entry"),
    ("E303", "option not valid for a duration step"),
    ("E304", "checkpoint = batch needs a throughput step"),
    ("E305", "both throughput and duration given"),
    ("E306", "step has no item count"),
    ("E307", "performance entry for a type the step cannot use"),
    ("E308", "candidate hardware has no throughput or duration entry (warning)"),
    ("E401", "catalog not found"),
    ("E402", "catalog does not parse"),
    ("E403", "accelerator or instance type not offered by the catalog"),
    ("E404", "no instance type can run the step"),
    ("E405", "quota limits an accelerator no step can use (warning)"),
    ("E415", "catalog name not allowed"),
    ("E416", "catalog value beyond its limit"),
    ("E501", "dependency cycle"),
    ("E502", "step depends on itself"),
    ("E503", "parameter cycle"),
    ("E504", "parameter chain too deep"),
    ("E601", "no feasible plan"),
    ("E602", "file is not a plan"),
    ("E630", "spot trace cannot be read"),
    ("E631", "file is not a spot trace"),
    ("E632", "spot trace has a bad gap_seconds"),
    ("E633", "spot trace has bad data"),
    ("E634", "spot trace never has capacity"),
    ("E701", "bad backend option"),
    ("E702", "backend cannot run this plan"),
    ("E703", "broken backend plugin"),
    ("E704", "missing secret"),
    ("E705", "state directory in use by another runner"),
    ("E706", "checkpoints would not outlive a shard's attempt"),
    ("E740", "the step's accelerator is not on this machine"),
    ("E741", "step cannot be profiled"),
    ("E742", "profiling needs the step's input"),
    ("E743", "profiled command failed or recorded nothing"),
    ("E750", "run state cannot be used"),
    ("E751", "run folder cannot be written"),
    ("E752", "output folder in use by another run"),
    ("E901", "internal compiler error"),
)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in the user's input: code, message, where, and help."""

    code: str
    message: str
    span: Span | None = None
    help: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    severity: Severity = Severity.ERROR

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered diagnostic code {self.code}")

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "span": self.span.to_json() if self.span else None,
            "help": list(self.help),
            "notes": list(self.notes),
        }


class CompileError(Exception):
    """Raised by a stage with every diagnostic it found (never empty)."""

    def __init__(
        self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None
    ) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        #: file label -> text, for rendering the source lines the diagnostics point at
        self.sources: dict[str, str] = dict(sources or {})
        if not self.diagnostics:
            raise ValueError("CompileError needs at least one diagnostic")
        super().__init__("; ".join(d.message for d in self.diagnostics))


@dataclass(eq=False)
class DiagnosticSink:
    """Collects diagnostics while a stage runs so that every error is reported."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(
        self,
        code: str,
        message: str,
        span: Span | None = None,
        *,
        help: Sequence[str] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self.items.append(Diagnostic(code, message, span, tuple(help), tuple(notes)))

    def add(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise CompileError(sort_diagnostics(self.items))


def relabel(diagnostics: Iterable[Diagnostic], label_of: Callable[[str], str]) -> list[Diagnostic]:
    """The diagnostics with each span's file renamed (module key -> how the user names it)."""
    out: list[Diagnostic] = []
    for d in diagnostics:
        if d.span is not None:
            d = replace(d, span=replace(d.span, file=label_of(d.span.file)))
        out.append(d)
    return out


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Source order (file, line, column), diagnostics without a span last; stable."""

    def key(d: Diagnostic) -> tuple[int, str, int, int]:
        if d.span is None:
            return (1, "", 0, 0)
        return (0, d.span.file, d.span.line, d.span.column)

    unique: dict[tuple[Any, ...], Diagnostic] = {}
    for d in diagnostics:
        unique.setdefault((d.code, d.message, d.span), d)
    return sorted(unique.values(), key=key)


_NUMERONYM = re.compile(r"([A-Za-z])([0-9]+)([A-Za-z])")


def _numeronym_of(word: str, candidate: str) -> bool:
    """``k8s`` abbreviates ``kubernetes``: first letter, count of letters between, last."""
    m = _NUMERONYM.fullmatch(word)
    return (
        m is not None
        and len(candidate) == int(m.group(2)) + 2
        and candidate[0].lower() == m.group(1).lower()
        and candidate[-1].lower() == m.group(3).lower()
    )


def suggest(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The closest candidate to ``word`` ("did you mean"), or None.

    A different case, a numeronym (``k8s``), a close spelling, or the start of
    exactly one candidate (``kube``), in that order.
    """
    pool = sorted(set(candidates))
    if not pool:
        return None
    exact = [c for c in pool if c.lower() == word.lower() and c != word]
    if exact:
        return exact[0]
    short = [c for c in pool if _numeronym_of(word, c)]
    if len(short) == 1:
        return short[0]
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    starts = [c for c in pool if len(word) >= 3 and c.lower().startswith(word.lower())]
    return starts[0] if len(starts) == 1 else None


def did_you_mean(word: str, candidates: Iterable[str], *, quote: str = "`") -> list[str]:
    """``help:`` lines with a suggestion, or nothing."""
    match = suggest(word, candidates)
    return [f"did you mean {quote}{match}{quote}?"] if match else []


def _line_of(text: str, line: int) -> str | None:
    lines = _lines(text)
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None


@functools.lru_cache(maxsize=8)
def _lines(text: str) -> tuple[str, ...]:
    """``text``'s lines, split once per source: every diagnostic of a file shows one of
    them (1,513 warnings of a 2,000-step file split it 1,513 times: 1.9 s)."""
    return tuple(text.splitlines())


#: Longest part of a source line shown under a diagnostic; longer lines are cut
#: around the span (``…`` marks what is left out).
MAX_SHOWN_LINE = 120
#: Longest excerpt of a user's value quoted in a message.
MAX_EXCERPT = 40


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character (line breaks too, unless ``newlines``)
    replaced by U+FFFD: same width, and nothing a terminal would act on."""
    if not has_control(text):
        return text
    return "".join(c if (newlines and c == "\n") or not is_control(c) else "\ufffd" for c in text)


def excerpt(text: str, limit: int = MAX_EXCERPT) -> str:
    """A short, sanitised excerpt of a user's value for a message: control characters
    written as escapes (``\\n``, ``\\x1b``), cut to ``limit`` characters with ``…``."""
    out: list[str] = []
    for c in text[: limit + 1]:
        out.append(c.encode("unicode_escape").decode("ascii") if is_control(c) else c)
    shown = "".join(out)
    if len(text) > limit or len(shown) > limit:
        return shown[:limit] + "…"
    return shown


def _window(line: str, start: int, width: int) -> tuple[str, int, int]:
    """At most :data:`MAX_SHOWN_LINE` characters of ``line`` around ``[start, start+width)``."""
    if len(line) <= MAX_SHOWN_LINE:
        return line, start, width
    width = min(width, MAX_SHOWN_LINE - 20)
    lo = max(0, min(start - 20, len(line) - MAX_SHOWN_LINE))
    hi = min(len(line), lo + MAX_SHOWN_LINE)
    head = "…" if lo > 0 else ""
    tail = "…" if hi < len(line) else ""
    return head + line[lo:hi] + tail, start - lo + len(head), width


def render_text(diagnostic: Diagnostic, sources: Mapping[str, str]) -> Text:
    """One diagnostic as a compiler prints it: location, message, source line, caret, help."""
    from rich.text import Text

    d = diagnostic
    out = Text()
    style = "bold red" if d.severity is Severity.ERROR else "bold yellow"
    if d.span is not None:
        out.append(f"{printable(d.span.file)}:{d.span.line}:{d.span.column}: ", style="bold")
    out.append(f"{d.severity}[{d.code}]", style=style)
    out.append(f": {printable(d.message)}\n", style="bold")
    source = sources.get(d.span.file) if d.span else None
    line = _line_of(source, d.span.line) if (source is not None and d.span) else None
    if d.span is not None and line is not None:
        gutter = str(d.span.line)
        pad = " " * len(gutter)
        line = line.expandtabs(1)
        start = max(d.span.column - 1, 0)
        if d.span.end_line == d.span.line:
            width = max(d.span.end_column - d.span.column, 1)
        else:
            width = max(len(line) - start, 1)
        width = min(width, max(len(line) - start, 1))
        line, start, width = _window(line, start, width)
        out.append(f"{pad} |\n", style="blue")
        out.append(f"{gutter} | ", style="blue")
        out.append(printable(line) + "\n")
        out.append(f"{pad} | ", style="blue")
        out.append(" " * start + "^" * width + "\n", style=style)
    for note in d.notes:
        out.append("  = note: ", style="bold")
        out.append(printable(note, newlines=True) + "\n")
    for h in d.help:
        out.append("  help: ", style="bold cyan")
        out.append(printable(h, newlines=True) + "\n")
    return out


#: Warnings with one code and one advice shown in full; the others are counted (a plan of
#: 1,513 spot steps and no spot partition gave as many Slurm warnings: 7,500 lines).
#: Errors are all shown.
SHOWN_ALIKE = 3


def _alike(diagnostics: Sequence[Diagnostic]) -> list[tuple[Diagnostic, int]]:
    """The diagnostics shown in full, each with how many more of its kind are left out
    after it (counted on the last warning of a kind shown)."""
    shown: list[tuple[Diagnostic, int]] = []
    last: dict[tuple[str, tuple[str, ...]], tuple[int, int]] = {}  # kind: (where shown, seen)
    for d in diagnostics:
        if d.severity is Severity.ERROR:
            shown.append((d, 0))
            continue
        kind = (d.code, tuple(d.help))
        where, seen = last.get(kind, (-1, 0))
        if seen < SHOWN_ALIKE:
            where = len(shown)
            shown.append((d, 0))
        else:
            shown[where] = (shown[where][0], seen + 1 - SHOWN_ALIKE)
        last[kind] = (where, seen + 1)
    return shown


def render_all_text(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str]) -> Text:
    from rich.text import Text

    out = Text()
    for i, (d, more) in enumerate(_alike(diagnostics)):
        if i:
            out.append("\n")
        out.append_text(render_text(d, sources))
        if more:
            out.append(f"  ... and {more:,} more {d.severity}s [{d.code}] like this one\n")
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    if errors:
        out.append(f"\n{errors} error{'s' if errors != 1 else ''} found\n", style="bold red")
    return out


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps({"diagnostics": [d.to_json() for d in diagnostics]}, indent=2, sort_keys=True)


def print_diagnostics(
    diagnostics: Sequence[Diagnostic],
    sources: Mapping[str, str],
    console: Console,
) -> None:
    """Print for a person; colour only when the console is a terminal."""
    console.print(render_all_text(diagnostics, sources), end="", soft_wrap=True, highlight=False)
