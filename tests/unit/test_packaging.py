"""The distribution holds every package of the source tree: the images install it with
`pip install .`, where a sub-package left out of pyproject.toml is simply not there (an
editable install, as in the .venv, would hide that)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_of_the_tree_is_in_the_distribution() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for top, folder in setuptools["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            found.add(".".join((top, *parts)))
    assert "recon_runner.render" in found
    assert listed == found, (
        f"missing: {sorted(found - listed)}; not in the tree: {sorted(listed - found)}"
    )
