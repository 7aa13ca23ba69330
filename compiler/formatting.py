"""How amounts read in every message exo prints: plans, explanations, reports."""

from __future__ import annotations

import math


def money(usd: float | None) -> str:
    """``$1,234.56``; below ten cents two significant digits (``$0.0042``); ``-`` when unknown."""
    if usd is None:
        return "-"
    sign = "-" if usd < 0 else ""
    x = abs(usd)
    if round(x, 3) >= 0.1 or x == 0.0:
        text = f"{x:,.2f}"
    elif x < 5e-7:
        return f"{sign}<$0.000001" if x > 0 else "$0.00"
    else:
        digits = min(6, 1 - math.floor(math.log10(x)))
        text = f"{x:.{digits}f}"
    if text.strip("0.,") == "":
        sign = ""
    return f"{sign}${text}"
