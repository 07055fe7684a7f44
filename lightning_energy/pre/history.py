"""Local run history: one SQLite row per finished run (descriptor + measured per-epoch energy and power).

Default location: ``$XDG_CACHE_HOME/lightning_energy/history.sqlite`` (``~/.cache/...``; platformdirs' user
cache dir where platformdirs is installed). Safe under concurrent runs: WAL journal, a busy timeout and one
short transaction per append; no lock files.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import LabelledRun, RunDescriptor

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    gpu_name TEXT NOT NULL,
    descriptor_json TEXT NOT NULL,
    epoch_energy_j REAL NOT NULL,
    power_w REAL NOT NULL,
    epoch_seconds REAL NOT NULL,
    epochs INTEGER NOT NULL
)
"""


def default_history_path() -> Path:
    """The user's cache directory / lightning_energy / history.sqlite."""
    try:
        import platformdirs

        cache = Path(platformdirs.user_cache_dir("lightning_energy"))
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache = Path(base) / "lightning_energy"
    return cache / "history.sqlite"


@dataclass(frozen=True)
class RecordedRun(LabelledRun):
    """A run from the history: a LabelledRun plus its epochs and when it was recorded."""

    epochs: int = 0
    recorded_at: str = ""


class RunHistory:
    """SQLite history of finished runs, used to calibrate :class:`PreEstimator`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                conn.execute(_SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)

    def append(
        self,
        descriptor: RunDescriptor,
        *,
        epoch_energy_j: float,
        power_w: float,
        epoch_seconds: float,
        epochs: int,
    ) -> None:
        """Record one finished run (one short transaction)."""
        if not isinstance(descriptor, RunDescriptor):
            raise EstimationError(f"descriptor must be a RunDescriptor, got {type(descriptor)!r}")
        for name, value in (
            ("epoch_energy_j", epoch_energy_j),
            ("power_w", power_w),
            ("epoch_seconds", epoch_seconds),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not value > 0
                or value == float("inf")
            ):
                raise EstimationError(f"{name} must be a finite number > 0, got {value!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise EstimationError(f"epochs must be an integer >= 1, got {epochs!r}")
        row = (
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            descriptor.gpu.name,
            json.dumps(descriptor.to_dict()),
            float(epoch_energy_j),
            float(power_w),
            float(epoch_seconds),
            epochs,
        )
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "INSERT INTO runs (recorded_at, gpu_name, descriptor_json, epoch_energy_j, power_w,"
                    " epoch_seconds, epochs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        finally:
            conn.close()

    def runs(self) -> list[RecordedRun]:
        """All recorded runs, oldest first (rows that no longer parse are skipped with a log message)."""
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT recorded_at, descriptor_json, epoch_energy_j, power_w, epochs FROM runs ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
        result = []
        for recorded_at, descriptor_json, energy_j, power, epochs in rows:
            try:
                descriptor = RunDescriptor.from_dict(json.loads(descriptor_json))
                result.append(
                    RecordedRun(
                        descriptor,
                        energy_j,
                        power,
                        descriptor.gpu.name,
                        epochs=epochs,
                        recorded_at=recorded_at,
                    )
                )
            except (EstimationError, ValueError) as exc:
                log.warning("skipping unreadable run history row from %s: %s", recorded_at, exc)
        return result

    def __len__(self) -> int:
        conn = self._connect()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
