"""Typed reading of plain data from a file (a JSON table, a torch checkpoint), field by field.

Every read names the file and the field's path when the value is missing or of the wrong kind,
as one :class:`ConfigError` line::

    table.json: kernels['7c30b03b'].median_ms: -3.1 is not a positive time (ms, below 60000)
    supernet.pt: epoch: 'x' is not an integer from 0 to 1000000

Values are shown with :func:`rtseg_core.brief`, so a hostile value (nested 100,000 deep, an
integer of 5,000 digits) cannot break the message itself.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from rtseg_core._errors import ConfigError
from rtseg_core._text import brief

_MISSING = object()


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite; never raises (``math.isfinite(10**400)`` does)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return value.bit_length() <= 1023  # what a float can hold
    return math.isfinite(value)


class Field:
    """One value of ``source`` at path ``where`` (``""`` for the whole document)."""

    def __init__(self, source: str, value: Any, where: str = "") -> None:
        self.source, self.value, self.where = source, value, where

    # -- navigation ------------------------------------------------------------------------------
    def __getitem__(self, key: str | int) -> Field:
        """The field ``key`` of this dict (or item ``key`` of this list); missing ones read as missing."""
        if isinstance(key, int):
            inside = isinstance(self.value, list) and 0 <= key < len(self.value)
            value = self.value[key] if inside else _MISSING
            return Field(self.source, value, f"{self.where}[{key}]")
        value = self.value.get(key, _MISSING) if isinstance(self.value, dict) else _MISSING
        return Field(self.source, value, f"{self.where}.{key}" if self.where else key)

    def entry(self, key: str) -> Field:
        """The value under ``key`` of a mapping of data (kernels by key, tensors by name): ``where['key']``."""
        value = self.value.get(key, _MISSING) if isinstance(self.value, dict) else _MISSING
        return Field(self.source, value, f"{self.where}[{brief(key, limit=60)}]")

    @property
    def missing(self) -> bool:
        return self.value is _MISSING

    @property
    def absent(self) -> bool:
        """Missing or null."""
        return self.value is _MISSING or self.value is None

    def fail(self, what: str) -> NoReturn:
        """Raise the error line: the value is not ``what`` (``"an integer from 0 to 9"``)."""
        where = self.where or "the file"
        if self.missing:
            raise ConfigError(f"{self.source}: {where}: missing (must be {what})")
        raise ConfigError(f"{self.source}: {where}: {brief(self.value)} is not {what}")

    # -- containers ------------------------------------------------------------------------------
    def mapping(self, *, known: set[str] | None = None, required: set[str] = frozenset()) -> dict[str, Field]:
        """This dict's values by key: fields (``where.name``) when ``known`` names them (any other key
        is an error), else entries of data (``where['key']``)."""
        if not isinstance(self.value, dict) or not all(isinstance(k, str) for k in self.value):
            self.fail("a mapping of field names to values")
        if known is not None:
            unknown = sorted(set(self.value) - known)
            if unknown:
                where = self.where or "the file"
                raise ConfigError(
                    f"{self.source}: {where}: unknown field(s) {brief(unknown)} (known: {', '.join(sorted(known))})"
                )
        for name in sorted(required):
            if name not in self.value:
                self[name].fail("present")
        return {k: self[k] if known is not None else self.entry(k) for k in self.value}

    def items(self) -> list[Field]:
        """This list's items."""
        if not isinstance(self.value, list):
            self.fail("a list")
        return [self[i] for i in range(len(self.value))]

    # -- scalars ---------------------------------------------------------------------------------
    def text(self, *, choices: tuple[str, ...] | None = None, optional: bool = False) -> str | None:
        if optional and self.absent:
            return None
        if not isinstance(self.value, str) or (choices is not None and self.value not in choices):
            self.fail("one of " + ", ".join(choices) if choices else "text")
        return self.value

    def integer(self, lo: int, hi: int, *, optional: bool = False) -> int | None:
        if optional and self.absent:
            return None
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(f"an integer from {lo} to {hi}" + (" (or null)" if optional else ""))
        return v

    def number(self, lo: float, hi: float, *, lo_open: bool = False, optional: bool = False) -> float | None:
        """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
        if optional and self.absent:
            return None
        v = self.value
        if not is_finite_number(v) or not (lo < v if lo_open else lo <= v) or not v <= hi:
            span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            self.fail(f"a finite number in {span}" + (" (or null)" if optional else ""))
        return float(v)
