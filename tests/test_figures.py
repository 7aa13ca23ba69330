"""Money stays a number until it is written: one rounding rule (``money_figure``), and the
comparisons made on numbers read exactly as the rendered text would have compared.

The expected texts are what exo printed before amounts were compared as numbers; they
pin the edges of the rounding rule (half a cent, ten cents, the smallest amount shown).
"""

from __future__ import annotations

import itertools

import pytest

from exo.compiler import figures

#: (amount, money, signed_money), as exo has always written them.
CASES = [
    (0.0, "$0.00", "$0.00"),
    (-0.0, "$0.00", "$0.00"),
    (0.004999, "$0.0050", "+$0.0050"),
    (0.005, "$0.0050", "+$0.0050"),
    (-0.005, "-$0.0050", "-$0.0050"),
    # The smallest amount shown rounds to six zeros (an old wart, kept byte for byte).
    (5e-7, "$0.000000", "+$0.000000"),
    (-5e-7, "$0.000000", "-$0.000000"),
    (4.99e-7, "<$0.000001", "$0.00"),
    (-4.99e-7, "-<$0.000001", "$0.00"),
    (1e-6, "$0.000001", "+$0.000001"),
    (0.0995, "$0.10", "+$0.10"),
    (0.09949, "$0.099", "+$0.099"),
    (0.00999, "$0.0100", "+$0.0100"),
    (0.01, "$0.010", "+$0.010"),
    (0.125, "$0.12", "+$0.12"),
    (2.675, "$2.67", "+$2.67"),
    (1234567.891, "$1,234,567.89", "+$1,234,567.89"),
    (-1234.5, "-$1,234.50", "-$1,234.50"),
]


@pytest.mark.parametrize(("usd", "money", "signed"), CASES)
def test_money_reads_as_before(usd: float, money: str, signed: str) -> None:
    assert figures.money(usd) == money
    assert figures.signed_money(usd) == signed
    # A change reads as nothing exactly when it is negligible.
    assert figures.negligible_usd(usd) == (signed == "$0.00")


def test_unknown_money() -> None:
    assert figures.money(None) == "-"


def test_same_figure_is_same_text() -> None:
    """Two amounts have the same figure exactly when they are written the same."""
    amounts = [usd for usd, _, _ in CASES] + [0.0100000001, 0.00999999, 0.12500001, 2.6749]
    for a, b in itertools.product(amounts, repeat=2):
        same_text = figures.money(a) == figures.money(b)
        assert (figures.money_figure(a) == figures.money_figure(b)) == same_text, (a, b)


@pytest.mark.parametrize(
    ("saved", "fraction", "text"),
    [
        (0.0, 0.0, "saves $0.00 (0.0%)"),
        (-0.0, None, "saves $0.00 (-)"),
        (-4.99e-7, -1e-9, "costs <$0.000001 (0.0%) more"),
        (4.99e-7, 1e-9, "saves <$0.000001 (0.0%)"),
        (-0.005, -0.25, "costs $0.0050 (25.0%) more"),
        (13.89, 0.585, "saves $13.89 (58.5%)"),
    ],
)
def test_saving(saved: float, fraction: float | None, text: str) -> None:
    assert figures.saving(saved, fraction) == text
