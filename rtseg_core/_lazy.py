"""Lazy package façades (PEP 562): a package's public names load on first use.

A façade lists its public names once, as ordinary imports under ``if TYPE_CHECKING:`` (so readers
and type checkers see where each comes from), plus ``__all__``. :func:`lazy_exports` reads that
block from the package's own source and returns the module-level ``__getattr__``/``__dir__`` that
import a name's module only when the name is first used. So ``from profiling import SSHOptions``
in a light module (``--help``) does not pay for torch and ONNX Runtime, and nobody needs to reach
into a private module to stay light.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _type_checking_imports(init_file: str | Path, package: str) -> dict[str, str]:
    """name -> module for every ``from M import name`` inside the file's ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    exports: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module:
                module = stmt.module if stmt.level == 0 else f"{package}.{stmt.module}"
                for alias in stmt.names:
                    exports[alias.asname or alias.name] = module
    return exports


def lazy_exports(
    package: str, init_file: str, public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__, __dir__`` for ``package``, whose ``__init__`` (``init_file``) declares its names lazily.

    Every name of ``public`` (the package's ``__all__``) must be imported in the TYPE_CHECKING
    block; a name listed in one place and not the other is a programming error, raised at import.
    """
    exports = _type_checking_imports(init_file, package)
    missing = sorted(set(public) - set(exports))
    if missing:
        raise ImportError(f"{package}: __all__ names {missing} that its TYPE_CHECKING imports do not provide")

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        vars(sys.modules[package])[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
