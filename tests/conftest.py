"""Suite-wide guard: tests write only to temporary folders, never into the working tree."""

from __future__ import annotations

import os
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
