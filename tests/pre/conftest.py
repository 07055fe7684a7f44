"""The GAISSA data location for the PRE tests (skip with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_energy.pre.gaissa import default_gaissa_dir


@pytest.fixture(scope="session")
def gaissa_dir() -> Path:
    path = default_gaissa_dir(Path(__file__).resolve().parents[2])
    if not (path / "pre_runs.csv").is_file():
        pytest.skip(f"GAISSA data not found at {path} (set LIGHTNING_ENERGY_GAISSA to its folder)")
    return path
