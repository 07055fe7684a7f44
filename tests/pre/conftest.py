"""Data locations for the PRE tests (skip with a reason when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.gaissa import default_gaissa_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gaissa_dir() -> Path:
    path = default_gaissa_dir(REPO)
    if not (path / "pre_runs.csv").is_file():
        pytest.skip(f"GAISSA data not found at {path} (set LIGHTNING_ENERGY_GAISSA to its folder)")
    return path


@pytest.fixture(scope="session")
def lambda_dir() -> Path:
    path = REPO.parent / "shared" / "data" / "lambda"
    if not (path / "gpu_training_throughput.csv").is_file():
        pytest.skip(f"Lambda throughput data not found at {path}")
    return path
