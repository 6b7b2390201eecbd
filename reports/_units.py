"""How the report writes a Dice difference: Dice is a fraction in [0, 1] everywhere in the suite, and
one Dice point is 0.01 of it. A difference is written in points WITH the fraction beside it, so a
difference of 0.1122 reads "+11.22 Dice points (+0.1122)", never a plausible-looking "+0.11"."""

from __future__ import annotations

DICE_POINT = 0.01  # one Dice point, Dice as a fraction


def dice_points(delta: float) -> float:
    """A Dice difference (fractions) in points."""
    return delta / DICE_POINT


def dice_difference(delta: float) -> str:
    """``+11.22 Dice points (+0.1122)`` for ``delta`` = 0.1122 (a difference of two fractions)."""
    return f"{dice_points(delta):+.2f} Dice points ({delta:+.4f})"
