"""Fixtures shared by several test folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
