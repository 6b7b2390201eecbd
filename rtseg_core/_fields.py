"""Typed reading of one JSON object from a study file: each field checked for type, shape and bounds.

Every study file is hand-editable, so a reader must not trust it: a wrong-typed ``threads`` or a
``NaN`` latency would otherwise surface as a traceback deep in the work, or silently drop a row.
:class:`Fields` answers each field as the type the reader needs, or raises one
:class:`ConfigError` naming the file and the field (``study.json: 'proxy_training.epochs' must be
an integer >= 1, got 'four'``). JSON ``true``/``false`` are never numbers here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rtseg_core._errors import ConfigError
from rtseg_core._text import brief

INT64_MAX = 2**63 - 1  # counts (params, MACs) become int64 columns in pandas; above this they overflow
_MISSING = object()


class Fields:
    """One JSON object of ``source`` (a file, or ``file: row``), read field by field.

    ``prefix`` names the object inside the file (``"proxy_training."``) so errors give the full
    path. A getter with ``optional=True`` answers ``None`` for an absent key or a ``null`` value;
    otherwise an absent key is ``missing field 'key'`` and ``null`` a wrong type.
    """

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            where = f"'{prefix.rstrip('.')}' must be" if prefix else "expected"
            raise ConfigError(f"{source}: {where} a JSON object, got {_show(data)}")
        self.data, self.source, self.prefix = data, source, prefix

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def error(self, key: str, rule: str, value: Any = _MISSING) -> ConfigError:
        got = "" if value is _MISSING else f", got {_show(value)}"
        return ConfigError(f"{self.source}: '{self.prefix}{key}' {rule}{got}")

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise ConfigError(f"{self.source}: missing field '{self.prefix}{key}'")
        return self.data[key]

    def unknown(self, known: Iterable[str]) -> None:
        """Refuse keys this reader does not know (a typo would otherwise be ignored)."""
        extra = sorted(set(self.data) - set(known))
        if extra:
            where = f"'{self.prefix.rstrip('.')}'" if self.prefix else "the file"
            raise ConfigError(f"{self.source}: unknown field(s) {extra} in {where}")

    # -- getters ---------------------------------------------------------------------------------
    def int(self, key: str, *, minimum: int | None = None, maximum: int | None = None, optional: bool = False):
        value = self._get(key, optional)
        if value is None and optional:
            return None
        rule = _int_rule(minimum, maximum)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be {rule}", value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(key, f"must be {rule}", value)
        return value

    def number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
        optional: bool = False,
    ):
        """A finite number (int or float); ``positive``: > 0; ``minimum``/``maximum`` inclusive."""
        value = self._get(key, optional)
        if value is None and optional:
            return None
        rule = _number_rule(minimum, maximum, positive)
        if not is_finite_number(value):
            raise self.error(key, f"must be {rule}", value)
        low_bad = (minimum is not None and value < minimum) or (positive and value <= 0)
        if low_bad or (maximum is not None and value > maximum):
            raise self.error(key, f"must be {rule}", value)
        return value

    def str(self, key: str, *, choices: Iterable[str] | None = None, empty: bool = True, optional: bool = False):
        value = self._get(key, optional)
        if value is None and optional:
            return None
        allowed = tuple(choices) if choices is not None else None
        if not isinstance(value, str) or (not empty and not value):
            raise self.error(key, "must be a non-empty string" if not empty else "must be a string", value)
        if allowed is not None and value not in allowed:
            raise self.error(key, f"must be one of {', '.join(allowed)}", value)
        return value

    def bool(self, key: str, *, optional: bool = False):
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false", value)
        return value

    def object(self, key: str, *, optional: bool = False) -> Fields | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a JSON object", value)
        return Fields(value, self.source, f"{self.prefix}{key}.")

    def dict(self, key: str, *, optional: bool = False) -> dict[str, Any] | None:
        """A JSON object kept as a plain dict (its fields are owned by another reader)."""
        found = self.object(key, optional=optional)
        return None if found is None else dict(found.data)

    def list(self, key: str, *, optional: bool = False) -> list[Any] | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, list):
            raise self.error(key, "must be a JSON list", value)
        return value


def _int_rule(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    return "an integer" if maximum is None else f"an integer <= {maximum}"


def _number_rule(minimum: float | None, maximum: float | None, positive: bool) -> str:
    if positive:
        return "a positive finite number" + (f" <= {maximum:g}" if maximum is not None else "")
    if minimum is not None and maximum is not None:
        return f"a finite number in [{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f"a finite number >= {minimum:g}"
    return "a finite number" if maximum is None else f"a finite number <= {maximum:g}"


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite; never raises (``math.isfinite(10**400)`` does)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return value.bit_length() <= 1023  # what a float can hold
    return math.isfinite(value)


def _show(value: Any) -> str:
    """The value as the error shows it, cut short: :func:`brief`, since ``repr`` itself fails on a
    list nested 100,000 deep (RecursionError) or an integer of 5,000 digits (ValueError)."""
    return brief(value)
