"""The house rules, checked on the source: packages import only packages below them, and only
through the names those packages export (never `from other_package._module import ...`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top; a package may import only packages on a lower floor.
FLOORS = {
    "rtseg_core": 0,
    "models": 1,
    "reports": 1,  # reads study files only
    "segmentation": 2,
    "profiling": 2,
    "compress": 3,
    "search_spaces": 3,
    "validate": 4,
    "rtseg_nas": 5,
    "scripts": 6,
    "run": 6,
}


def _sources() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        top = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if top in FLOORS and "device" not in rel.parts:  # profiling/device: a standalone script for the Jetson
            out.append((top, path))
    return out


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_every_project_package_has_a_floor():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests"} <= set(FLOORS), f"give these packages a floor: {packages - set(FLOORS)}"


@pytest.mark.parametrize("top,path", _sources(), ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_imports_go_down_through_the_door(top: str, path: Path):
    bad = []
    for line, module in _imports(path):
        parts = module.split(".")
        other = parts[0]
        if other not in FLOORS or other == top:
            continue
        if FLOORS[other] >= FLOORS[top]:
            bad.append(f"line {line}: imports {module} (floor {FLOORS[other]}) from floor {FLOORS[top]}")
        if len(parts) > 1 and parts[1].startswith("_"):
            bad.append(f"line {line}: reaches into the private module {module}; import what {other} exports")
    assert not bad, f"{path.relative_to(ROOT)}:\n" + "\n".join(bad)
