"""The modules of ``lightning_energy.pre`` import each other without cycles (also under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from pathlib import Path

import lightning_energy.pre

PRE = Path(lightning_energy.pre.__file__).parent


def _pre_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("lightning_energy.pre.")
        ):
            names.add(node.module.rsplit(".", 1)[1])
    return names


def test_pre_modules_import_each_other_without_cycles() -> None:
    graph = {p.stem: _pre_imports(p) for p in PRE.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_gpus_module_needs_no_type_ignore() -> None:
    assert "type: ignore" not in (PRE / "gpus.py").read_text(encoding="utf-8")
