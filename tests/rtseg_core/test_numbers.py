"""``finite_or_none``: the one reading of an optional number from records, JSON and CSV cells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtseg_core import finite_or_none


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.25, 0.25),
        (3, 3.0),
        ("1.5", 1.5),  # a CSV cell
        (np.float32(0.5), 0.5),
        (None, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        ("", None),  # an empty CSV cell
        ("n/a", None),
        ([1.0], None),
    ],
)
def test_a_finite_number_or_none(value, expected):
    got = finite_or_none(value)
    assert got == expected and (got is None or type(got) is float)
