"""Suite-wide fixtures: tests write only to temporary folders; the fake NVML library build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# tools' caches and the environment, not the project's files
SKIPPED = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "site", "build"}


def snapshot(root: Path = ROOT) -> dict[str, int]:
    """Every file of the working tree (caches and the environment left out) with its modification time."""
    files: dict[str, int] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder, name)
            try:
                files[str(path.relative_to(root))] = path.stat().st_mtime_ns
            except OSError:  # removed while walking
                continue
    return files


@pytest.fixture(scope="session", autouse=True)
def _working_tree_untouched() -> Iterator[None]:
    before = snapshot()
    yield
    after = snapshot()
    # new files only: a developer may edit files while the suite runs
    created = sorted(set(after) - set(before))
    assert created == [], f"tests wrote into the working tree: {created[:20]}"


@pytest.fixture
def free_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-epoch windows that cost no share of the fit: for Trainer tests that pin which batches windows
    hold, on fits of milliseconds where the real share would let only the fit's first window close (the
    rule itself is tested in tests/test_metering.py)."""
    monkeypatch.setattr("lightning_energy.metering.WINDOW_TIME_SHARE", 1e9)


FAKE_NVML_SOURCE = Path(__file__).resolve().parent / "nvml_fake" / "fake_nvml.c"
FAKE_NVML_SONAME = "libnvidia-ml.so.1"


@pytest.fixture(scope="session")
def fake_nvml_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile fake_nvml.c into ``<tmp>/libnvidia-ml.so.1``; skip without a C compiler."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the fake NVML library is built and loaded the Linux way")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the fake libnvidia-ml.so.1")
    build = tmp_path_factory.mktemp("nvml_fake")
    target = build / FAKE_NVML_SONAME
    command = [compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"]
    command += [f"-Wl,-soname,{FAKE_NVML_SONAME}", "-o", str(target), str(FAKE_NVML_SOURCE), "-pthread"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"building the fake NVML failed:\n{result.stderr}"
    return target
