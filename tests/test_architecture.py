"""The package's shape: public API pinned, one-way imports, no private reads, no workspace paths."""

from __future__ import annotations

import ast
import re
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
        "report_fields.py",
        "report_model.py",
        "report_projection.py",
        "report_sections.py",
        "run.py",
        "run_inputs.py",
        "run_metrics.py",
        "run_report.py",
        "run_state.py",
        "run_text.py",
        "stages.py",
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


# getattr(obj, "_name") reads allowed, each with its reason (none has a public accessor in Lightning 2.x):
# - TensorBoardLogger keeps the metric prefix it was given only as ``_prefix``; the chart must name the
#   prefixed tags.
# - EarlyStopping keeps ``check_on_train_epoch_end`` (resolved in its ``setup`` when None) only privately: the
#   stop forecast reads it, guarded, with a fallback when a Lightning version renames it.
#   (StochasticWeightAveraging's start is read through its public ``swa_start`` since 0.3.x.)
# - Lightning logs epoch-level metrics at its fit loop's ``_batches_that_stepped`` less one, kept only
#   privately (``global_step`` differs with several optimizers or manual optimisation): the epoch's figures
#   go to the loggers at that step.
_ALLOWED_GETATTR = {
    ("trainer_ops.py", "_batches_that_stepped"),
    ("tensorboard.py", "_prefix"),
    ("trainer_info.py", "_check_on_train_epoch_end"),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_code_reads_another_objects_private_attributes() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
                and node.attr not in _ALLOWED
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
            elif (  # the same read spelled getattr(obj, "_name", ...)
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _private(node.args[1].value)
                and (path.name, node.args[1].value) not in _ALLOWED_GETATTR
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} getattr {node.args[1].value!r}")
    assert offenders == [], "\n".join(offenders)


def test_the_package_holds_no_workspace_paths() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in SOURCES if "../shared" in p.read_text()]
    assert offenders == []


def test_the_callback_is_glue_over_the_pure_metering_core() -> None:
    callback = PACKAGE / "callback.py"
    assert len(callback.read_text().splitlines()) <= 250
    assert not {n for n in _imports(callback) if n.startswith("lightning_energy.accounting")}
    pure = _imports(PACKAGE / "metering.py") | _imports(PACKAGE / "meter_session.py")
    assert not {n for n in pure if n.split(".")[0] in {"torch", "lightning"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SOURCES}


def _runtime_imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports when it runs (``if TYPE_CHECKING:`` blocks left out;
    ``from package import submodule`` counts as importing the submodule)."""
    tree = ast.parse(MODULES[module].read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    is_package = MODULES[module].name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: _runtime_imports(module) for module in MODULES}

# the layers, lowest first: a module imports only from its own layer or lower ones
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "lightning_energy._version",
        "lightning_energy.errors",
        "lightning_energy._validate",
        "lightning_energy._io",
        "lightning_energy.metric_names",
        "lightning_energy.labels",
    ),
    (
        "lightning_energy.units",
        "lightning_energy.budget",
        "lightning_energy.accounting",
        "lightning_energy.hardware",
        "lightning_energy.report_fields",
    ),
    ("lightning_energy.meters", "lightning_energy.step", "lightning_energy.pre", "lightning_energy.carbon"),
    ("lightning_energy.report_projection", "lightning_energy.report_sections"),
    ("lightning_energy.report_model", "lightning_energy.windows", "lightning_energy.metering"),
    (
        "lightning_energy.run",
        "lightning_energy.run_inputs",
        "lightning_energy.run_metrics",
        "lightning_energy.run_report",
        "lightning_energy.run_state",
        "lightning_energy.run_text",
        "lightning_energy.stages",
        "lightning_energy.report",
        "lightning_energy.report_table",
        "lightning_energy.plot",
    ),
    (
        "lightning_energy.trainer_info",
        "lightning_energy.trainer_ops",
        "lightning_energy.fit_estimate",
        "lightning_energy.tensorboard",
        "lightning_energy.meter_session",
        "lightning_energy.cli",
    ),
    ("lightning_energy.callback",),
    ("lightning_energy",),
)


def _layer(module: str) -> int:
    best = -1, -1  # (length of the matching prefix, layer)
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = len(prefix), rank
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def test_every_module_has_a_layer_and_imports_only_downwards() -> None:
    upward = [
        f"{module} -> {dep}"
        for module, deps in sorted(GRAPH.items())
        for dep in sorted(deps)
        if _layer(dep) > _layer(module) or module.startswith(dep + ".")  # a higher layer, or its own package
    ]
    assert upward == []


def test_the_import_graph_has_no_cycles() -> None:
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for dep in sorted(GRAPH[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])
    assert cycles == []


def test_the_architecture_page_lists_the_real_modules() -> None:
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    named = {
        m.group(1) for m in re.finditer(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", text) if "tests/" not in m.group(1)
    }
    real = {str(p.relative_to(PACKAGE)) for p in SOURCES if p.name != "__init__.py"}
    top_level = {n for n in real if "/" not in n}
    assert named - real == set(), "docs/architecture.md names modules that do not exist"
    assert top_level - named == set(), "docs/architecture.md does not name these modules"


def test_the_docs_list_exactly_the_logged_metric_names() -> None:
    from lightning_energy import metric_names

    text = (PACKAGE.parent / "docs" / "callback.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| `energy/")]
    documented = set(re.findall(r"`(energy/[a-z0-9_]+)`", "\n".join(table)))
    # the docs name the "other" category only in prose: the meters of this package never report one
    assert documented == set(metric_names.ALL) - {metric_names.OTHER_KWH}
    sources = [p for p in SOURCES if p.name != "metric_names.py"]
    literals = [
        f"{p.name}: {m}" for p in sources for m in re.findall(r"[\"']energy/[a-z_]+[\"']", p.read_text())
    ]
    assert literals == [], "metric names belong in metric_names.py"


def test_every_exception_class_lives_in_errors() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}: {node.name}"
        for path in SOURCES
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id == "Exception") for b in node.bases
        )
    ]
    assert offenders == []
