"""The package's shape: public API pinned, one-way imports, no private reads, no workspace paths."""

from __future__ import annotations

import ast
from pathlib import Path

import lightning_energy

PACKAGE = Path(lightning_energy.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_public_api_is_pinned() -> None:
    assert set(lightning_energy.__all__) == {
        "CompositeMeter",
        "EnergyCallback",
        "EnergyMeter",
        "EnergyRun",
        "FakeMeter",
        "HostMeter",
        "NullMeter",
        "NvmlMeter",
        "PreEstimator",
        "Projection",
        "RecordingMeter",
        "ReplayMeter",
        "RunReport",
        "StepParams",
        "StepProjector",
        "__version__",
        "load_report",
    }
    for name in lightning_energy.__all__:
        assert getattr(lightning_energy, name) is not None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_the_callback() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in SOURCES
        if path.name not in {"callback.py", "__init__.py"} and "lightning_energy.callback" in _imports(path)
    ]
    assert offenders == []


def test_the_pure_core_imports_neither_torch_nor_lightning() -> None:
    pure = [
        "accounting.py",
        "budget.py",
        "metering.py",
        "report_model.py",
        "run.py",
        "windows.py",
        "units.py",
        "report.py",
    ]
    paths = [PACKAGE / name for name in pure] + sorted((PACKAGE / "step").glob("*.py"))
    paths += [p for p in sorted((PACKAGE / "pre").glob("*.py")) if p.name not in {"describe.py", "cli.py"}]
    for path in paths:
        imported = _imports(path)
        assert not {n for n in imported if n.split(".")[0] in {"torch", "lightning"}}, path.name


# argparse documents add_subparsers() as returning this class, which it names privately
_ALLOWED = {"_SubParsersAction"}


def test_no_code_reads_another_objects_private_attributes() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
                and node.attr not in _ALLOWED
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    assert offenders == [], "\n".join(offenders)


def test_the_package_holds_no_workspace_paths() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in SOURCES if "../shared" in p.read_text()]
    assert offenders == []
