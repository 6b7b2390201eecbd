"""What a user gets before running anything: the license, README links, dependency bounds."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_file_and_field_agree():
    project = pyproject()["project"]
    assert project["license"] == "MIT"  # a PEP 639 expression, not the deprecated table
    assert "LICENSE" in project["license-files"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and 'THE SOFTWARE IS PROVIDED "AS IS"' in text


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img[^>]+src=\"([^\"]+)\"")


def test_readme_links_resolve_inside_the_repository():
    readme = (ROOT / "README.md").read_text()
    targets = [a or b for a, b in _LINK.findall(readme)]
    local = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local, "the README links nothing in the repository"
    for target in local:
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"README links outside the repository: {target}"
        assert path.exists(), f"README links a missing file: {target}"


def test_every_dependency_has_a_lower_bound_the_environment_meets():
    for spec in pyproject()["project"]["dependencies"]:
        req = Requirement(spec)
        assert any(s.operator in (">=", "==", "~=") for s in req.specifier), f"{spec}: no lower bound"
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            pytest.fail(f"{req.name} is a dependency but not installed")
        assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} does not meet {spec}"


def test_optuna_bound_matches_the_api_the_code_uses():
    import optuna

    bound = next(Requirement(s) for s in pyproject()["project"]["dependencies"] if s.startswith("optuna"))
    assert str(bound.specifier) == ">=5"
    assert hasattr(optuna.trial.Trial, "set_constraint")  # Optuna 5.0's; 4.x has only constraints_func


def test_test_only_packages_stay_in_the_test_extra():
    project = pyproject()["project"]
    runtime = {Requirement(s).name.lower() for s in project["dependencies"]}
    test = {Requirement(s).name.lower() for s in project["optional-dependencies"]["test"]}
    assert "pymoo" in test and "pymoo" not in runtime  # only tests/reports/test_hypervolume.py uses it
    assert "optuna-dashboard" in test
    assert "scikit-image" not in runtime | test  # nothing imports skimage
    for folder in ("rtseg_core", "models", "segmentation", "profiling", "compress", "search_spaces", "reports"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text()
            assert not re.search(r"^\s*(import|from) (pymoo|skimage|optuna_dashboard)\b", source, re.M), path
