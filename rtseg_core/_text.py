"""Plain-text tables for the terminal: one way to align columns, used by every verb that prints rows."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` (the first is the header) as left-aligned columns two spaces apart, no trailing spaces."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def brief(value: object, *, limit: int = 80) -> str:
    """A short, safe rendering of a value for an error message, whatever the value is.

    ``repr`` itself fails on hostile input: a list nested 100,000 deep raises RecursionError and an
    integer of more than 4,300 digits raises ValueError. Here containers are shown two levels deep
    with their first few items, huge integers by their size, long text cut at ``limit`` characters.
    """
    text = _brief(value, depth=2)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(value: object, *, depth: int) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 128:
            return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
        return repr(value)
    if isinstance(value, str):
        return repr(value[:200])
    if isinstance(value, (list, tuple, dict)):
        n = len(value)
        if depth == 0:
            return f"<{type(value).__name__} of {n}>"
        if isinstance(value, dict):
            items = [f"{_brief(k, depth=0)}: {_brief(v, depth=depth - 1)}" for k, v in list(value.items())[:4]]
            return "{" + ", ".join(items) + (", ..." if n > 4 else "") + "}"
        items = [_brief(v, depth=depth - 1) for v in value[:4]]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        return opening + ", ".join(items) + (", ..." if n > 4 else "") + closing
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} of shape {list(shape)}>"
    return f"<{type(value).__name__}>"
