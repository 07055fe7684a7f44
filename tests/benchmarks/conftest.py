"""The fake ``libnvidia-ml.so.1`` of tests/nvml_fake, built for the GPU visit's dry run (a subprocess finds it
through ``LD_LIBRARY_PATH``, exactly as it would find the driver's)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fake_nvml_dir(fake_nvml_build: Path) -> Path:
    """The folder holding the compiled fake ``libnvidia-ml.so.1`` (see tests/conftest.py)."""
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    return fake_nvml_build.parent
