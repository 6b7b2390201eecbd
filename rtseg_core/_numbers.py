"""Numbers read from records, JSON and CSV cells: a finite float, or None where there is none."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None (None, NaN, +-inf, "", "n/a").

    For the optional numbers of records and tables ("no Dice", "no latency"), which are written
    as null and never as NaN: JSON has no NaN, and a NaN would poison every mean that reads it.
    """
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
