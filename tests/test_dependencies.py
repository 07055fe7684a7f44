"""Every runtime dependency declared in pyproject.toml is imported by the package (none goes unused)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import lightning_energy

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(lightning_energy.__file__).parents[1]
# distribution name -> the module it provides
MODULE_OF = {"nvidia-ml-py": "pynvml", "lightning": "lightning", "torch": "torch"}


def _imported_modules() -> set[str]:
    names: set[str] = set()
    for path in Path(lightning_energy.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_imported() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0] for spec in project["dependencies"]]
    imported = _imported_modules()
    unused = [name for name in declared if MODULE_OF.get(name, name.replace("-", "_")) not in imported]
    assert unused == []
