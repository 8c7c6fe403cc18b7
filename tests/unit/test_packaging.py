"""The distribution ships every package of the tree (setuptools lists them by hand here)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> tuple[set[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(config["packages"]), config["package-dir"]


def test_every_python_package_in_the_tree_is_listed():
    """A folder with an __init__.py under a mapped package is in [tool.setuptools] packages."""
    packages, mapping = _listed()
    missing = []
    for top, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            name = ".".join((top, *relative))
            if name not in packages:
                missing.append(name)
    assert missing == [], f"add to pyproject.toml [tool.setuptools] packages: {missing}"
