"""Local run history: one SQLite row per finished run (descriptor + measured per-epoch energy and power).

Default location: ``$XDG_CACHE_HOME/lightning_energy/history.sqlite`` (``~/.cache/...``; platformdirs' user
cache dir where platformdirs is installed). Safe under concurrent runs: SQLite's own locking with a busy
timeout and one short transaction per append; no lock files. Reads are read-only.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightning_energy._validate import is_number
from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import LabelledRun, RunDescriptor
from lightning_energy.pre.model import PreEstimator

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
    """SQLite history of finished runs, used to calibrate :class:`PreEstimator`.

    Nothing is created until the first :meth:`append`; reading opens the file read-only (a missing file is an
    empty history) and never writes to it, so a corrupt or foreign file is left exactly as it is. Both raise
    EstimationError naming the path when the file cannot be used.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is not None and (isinstance(path, bool) or not isinstance(path, (str, os.PathLike))):
            raise EstimationError(f"path must be a str, an os.PathLike or None, got {path!r}")
        self.path = Path(path) if path is not None else default_history_path()

    def _read(self, query: str) -> list[tuple[Any, ...]]:  # SQLite values: int, float, str, bytes, None
        if not self.path.exists():
            return []
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S
            )
            try:
                has_table = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
                ).fetchone()
                return conn.execute(query).fetchall() if has_table else []
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise EstimationError(f"run history {str(self.path)!r} cannot be read: {exc}") from exc

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
            if not is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
                raise EstimationError(f"{name} must be a finite number > 0, got {value!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise EstimationError(f"epochs must be an integer >= 1, got {epochs!r}")
        _check_row(epoch_energy_j, power_w, epochs)  # what runs() would skip is not written
        row = (
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            descriptor.gpu.name,
            json.dumps(descriptor.to_dict()),
            float(epoch_energy_j),
            float(power_w),
            float(epoch_seconds),
            epochs,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            try:
                with conn:
                    conn.execute(_SCHEMA)
                    conn.execute(
                        "INSERT INTO runs (recorded_at, gpu_name, descriptor_json, epoch_energy_j, power_w,"
                        " epoch_seconds, epochs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise EstimationError(f"run history {str(self.path)!r} cannot be written: {exc}") from exc

    def runs(self) -> list[RecordedRun]:
        """All usable recorded runs, oldest first.

        A row that no longer parses, or whose energy, power or implied epoch time is not a plausible number
        (not finite, not positive, an epoch outside [1 µs, 30 years], a GPU over 1 MW: a damaged file), is
        skipped; all skipped rows together give one warning.
        """
        rows = self._read(
            "SELECT recorded_at, descriptor_json, epoch_energy_j, power_w, epochs FROM runs ORDER BY id"
        )
        result = []
        skipped: list[str] = []
        for recorded_at, descriptor_json, energy_j, power, epochs in rows:
            try:
                energy, power_w, whole_epochs = _check_row(energy_j, power, epochs)
                descriptor = RunDescriptor.from_dict(json.loads(str(descriptor_json)))
                result.append(
                    RecordedRun(
                        descriptor,
                        energy,
                        power_w,
                        descriptor.gpu.name,
                        epochs=whole_epochs,
                        recorded_at=str(recorded_at),
                    )
                )
            except (EstimationError, ValueError, TypeError, OverflowError, RecursionError) as exc:
                skipped.append(f"{recorded_at}: {exc}")
        if skipped:
            more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
            warnings.warn(
                f"PRE: run history {str(self.path)!r}: skipped {len(skipped)} unusable "
                f"row{'s' if len(skipped) > 1 else ''} (recorded {skipped[0]}{more})",
                stacklevel=2,
            )
        return result

    def __len__(self) -> int:
        rows = self._read("SELECT COUNT(*) FROM runs")
        return int(rows[0][0]) if rows else 0


MIN_EPOCH_S = 1e-6
MAX_EPOCH_S = 1e9
MAX_POWER_W = 1e6


def _positive_figure(name: str, value: object) -> float:
    if not is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise EstimationError(f"{name} is {value!r}, not a finite number > 0")
    return float(value)


def _check_row(energy_j: object, power_w: object, epochs: object) -> tuple[float, float, int]:
    """The row's figures, typed; raise ``EstimationError`` unless they are plausible numbers."""
    energy, power = _positive_figure("epoch_energy_j", energy_j), _positive_figure("power_w", power_w)
    seconds = energy / power
    if not MIN_EPOCH_S <= seconds <= MAX_EPOCH_S:
        raise EstimationError(f"epoch_energy_j / power_w is {seconds:g} s, not a plausible epoch time")
    if power > MAX_POWER_W:
        raise EstimationError(f"power_w is {power_w!r}, not a plausible GPU power")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise EstimationError(f"epochs is {epochs!r}, not a whole number >= 1")
    return energy, power, epochs


def calibrated_estimator(history_path: str | os.PathLike[str] | bool | None = None) -> PreEstimator:
    """The shipped estimator calibrated with the run history at ``history_path``.

    ``None`` or ``True``: the default history path; ``False``: no history (the shipped estimator). A history
    that cannot be read (corrupt file, unreadable or read-only place) gives the uncalibrated estimator and one
    warning; the file is never modified.
    """
    if history_path is not None and not isinstance(history_path, (bool, str, os.PathLike)):
        raise TypeError(f"history_path must be a str, an os.PathLike, a bool or None, got {history_path!r}")
    estimator = PreEstimator.default()
    if history_path is False:
        return estimator
    history = RunHistory(None if history_path is True else history_path)
    try:
        return estimator.calibrated(history)
    except (EstimationError, OSError) as exc:
        warnings.warn(
            f"PRE: run history {str(history.path)!r} cannot be used ({exc}); using the uncalibrated estimate",
            stacklevel=2,
        )
        return estimator
