"""What the installed package holds: production code only. Test stand-ins (the simulated Kafka
cluster, the simulated backend) live under tests/ and nothing installed may import them."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def packaged_modules() -> list[Path]:
    """The .py files setuptools puts in the wheel, found with the project's own configuration."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=config["include"], exclude=config.get("exclude", ()))
    return [path for package in packages for path in (ROOT / package.replace(".", "/")).glob("*.py")]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_package_holds_no_test_stand_ins_and_needs_none() -> None:
    modules = packaged_modules()
    assert len(modules) > 50  # the configuration was read: the apps are there
    assert not [path for path in modules if "simulat" in path.name]
    needs_tests = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] == "tests"
        )
        for path in modules
    }
    assert {path: names for path, names in needs_tests.items() if names} == {}
