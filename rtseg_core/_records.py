"""Records are flat, frozen dataclasses that round-trip through JSON and load into pandas."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, TypeVar

from rtseg_core._errors import ConfigError

R = TypeVar("R", bound="Record")


class Record:
    """Mixin for record dataclasses.

    ``to_dict()`` gives one JSON-ready dict per record (so ``pd.DataFrame([r.to_dict() ...])``
    has one column per field) and carries ``schema`` so files written by an older version
    can be recognised. ``from_dict()`` ignores unknown keys only if they are ``schema``.
    """

    SCHEMA: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": self.SCHEMA}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = getattr(self, f.name)
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        data = dict(data)
        schema = data.pop("schema", cls.SCHEMA)
        if schema != cls.SCHEMA:
            raise ConfigError(f"{cls.__name__}: schema {schema} cannot be read (this version reads {cls.SCHEMA})")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}")
        return cls(**data)
