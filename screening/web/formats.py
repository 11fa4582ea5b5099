"""Number formats of the pages: scores that keep their order near 0 and 1, thresholds with a few
significant digits, percentages with two decimals. Templates use them as filters
(`{% load screening_format %}`)."""

from __future__ import annotations

import math
from functools import wraps

NONE = "—"
SCORE_DECIMALS = 3
# Below this distance from 0 or 1, three decimals would read 0.000 or 1.000: show the distance.
SCORE_EDGE = 0.5 * 10**-SCORE_DECIMALS


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numeric(format_number):
    """A filter of a finite number; anything else (None, "", text, NaN) reads NONE."""

    @wraps(format_number)
    def apply(value: object, *args) -> str:
        number = _number(value)
        return NONE if number is None else format_number(number, *args)

    return apply


def _scientific(value: float) -> str:
    """2 significant digits, a plain exponent: 3.2e-5 (not 3.2e-05)."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@_numeric
def score(number: float) -> str:
    """A tracklet score in [0, 1], with the digits that tell neighbouring rows apart.

    0.0005 to 0.9995: three decimals (0.950). Nearer 1: the distance to 1 with two significant
    digits, "1 − 3.2e-5" (0.999968); nearer 0: the score itself, "3.2e-5". Exactly 1 or 0: "1", "0".
    So the order of the rows shows in the numbers even where a night's top is all 0.9999...
    """
    if number >= 1.0:
        return "1"
    if number <= 0.0:
        return "0"
    if number >= 1.0 - SCORE_EDGE:
        return f"1 − {_scientific(1.0 - number)}"
    if number < SCORE_EDGE:
        return _scientific(number)
    return f"{number:.{SCORE_DECIMALS}f}"


@_numeric
def sig(number: float, digits: int = 4) -> str:
    """A number with `digits` significant digits (a threshold of 0.10581812 reads 0.1058)."""
    return f"{number:.{int(digits)}g}"


@_numeric
def percent(number: float, decimals: int = 2) -> str:
    """A fraction as a percentage with `decimals` decimals: 0.99333 reads 99.33%."""
    return f"{100.0 * number:.{int(decimals)}f}%"


@_numeric
def duration(seconds: float) -> str:
    """A span of time in its largest sensible units: 45 s, 12.5 min, 3.2 h, 4.1 days."""
    if seconds < 0:
        return f"−{duration(-seconds)}"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
