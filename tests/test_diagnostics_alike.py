"""Warnings of one kind are counted after the first three; errors are all shown."""

from __future__ import annotations

from exo.compiler.diagnostics import SHOWN_ALIKE, Diagnostic, Severity, render_all_text


def _warning(i: int, help_text: str = "set `spot_partition`") -> Diagnostic:
    return Diagnostic(
        "E702", f"step s{i} is planned on spot", help=(help_text,), severity=Severity.WARNING
    )


def test_warnings_of_one_kind_are_counted_after_the_first_three() -> None:
    text = render_all_text([_warning(i) for i in range(1510 + SHOWN_ALIKE)], {}).plain
    assert [f"s{i} " in text for i in range(SHOWN_ALIKE + 1)] == [True] * SHOWN_ALIKE + [False]
    assert text.count("... and 1,510 more warnings [E702] like this one") == 1
    assert text.index("... and") > text.index(f"s{SHOWN_ALIKE - 1} ")


def test_kinds_are_told_apart_by_code_and_advice() -> None:
    items = [_warning(i) for i in range(5)] + [_warning(10 + i, "other advice") for i in range(2)]
    text = render_all_text(items, {}).plain
    assert "... and 2 more warnings [E702]" in text
    assert "s10 " in text and "s11 " in text


def test_errors_are_all_shown() -> None:
    errors = [Diagnostic("E702", f"step s{i} failed a check", help=("same",)) for i in range(9)]
    text = render_all_text(errors, {}).plain
    assert all(f"s{i} " in text for i in range(9))
    assert "more" not in text and "9 errors found" in text
