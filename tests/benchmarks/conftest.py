"""The fake ``libnvidia-ml.so.1`` of tests/nvml_fake, built for the GPU visit's dry run (a subprocess finds it
through ``LD_LIBRARY_PATH``, exactly as it would find the driver's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "nvml_fake" / "fake_nvml.c"
SONAME = "libnvidia-ml.so.1"


@pytest.fixture(scope="session")
def fake_nvml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the compiled fake ``libnvidia-ml.so.1``; skip without Linux or a C compiler."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the fake NVML library is built and loaded the Linux way")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the fake libnvidia-ml.so.1")
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    build = tmp_path_factory.mktemp("visit_nvml")
    command = [compiler, "-shared", "-fPIC", "-O1", f"-Wl,-soname,{SONAME}"]
    command += ["-o", str(build / SONAME), str(SOURCE), "-pthread"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"building the fake NVML failed:\n{result.stderr}"
    return build
