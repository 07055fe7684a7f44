"""The run report: ``energy_report.json`` (schema version 1) and ``energy_epochs.csv``.

:func:`write_report` writes both files atomically (temporary file + ``os.replace``), so a crash never leaves
a half-written report. :func:`load_report` reads one back with clear :class:`ReportError` messages.
:mod:`lightning_energy.report_table` renders reports as text. The schema is
documented in ``docs/report.md``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_energy.errors import EnergyError

__all__ = [
    "EPOCHS_CSV_FILENAME",
    "REPORT_FILENAME",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "ReportError",
    "energy_unit",
    "example_report",
    "find_report",
    "first_stable",
    "load_report",
    "pre_run_totals_j",
    "write_epoch_csv",
    "write_report",
]

REPORT_FORMAT = "lightning_energy.report"
REPORT_VERSION = 1
REPORT_FILENAME = "energy_report.json"
EPOCHS_CSV_FILENAME = "energy_epochs.csv"
JOULES_PER_KWH = 3.6e6
JOULES_PER_WH = 3600.0
_COMPONENT_ORDER = ("gpu", "cpu", "ram", "other")


class ReportError(EnergyError):
    """A report cannot be found, read or understood. The message says which file and what to do."""


# ------------------------------------------------------------------------------------------------ writing
def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON values: NaN/inf become ``None``, tuples lists, paths and dates strings."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return str(value)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _epoch_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the per-epoch CSV, projection history joined on the epoch number."""
    epochs: list[Mapping[str, Any]] = list(report.get("epochs") or [])
    history = {h.get("epoch"): h for h in (report.get("projection") or {}).get("history") or []}
    names = {name for e in epochs for name in (e.get("components_j") or {})}
    components = [c for c in _COMPONENT_ORDER if c in names] + sorted(names - set(_COMPONENT_ORDER))
    header = ["epoch", "duration_s", "energy_j", "energy_kwh", "power_w"]
    header += [f"{c}_j" for c in components]
    header += ["missing", "reason", "projected_total_j", "projected_low_j", "projected_high_j", "stable"]
    rows = []
    for e in epochs:
        energy = e.get("energy_j")
        parts = e.get("components_j") or {}
        h = history.get(e.get("epoch"), {})
        rows.append(
            [e.get("epoch"), e.get("duration_s"), energy, None if energy is None else energy / JOULES_PER_KWH]
            + [e.get("power_w")]
            + [parts.get(c) for c in components]
            + [bool(e.get("missing", energy is None)), e.get("reason")]
            + [h.get("total_j"), h.get("low_j"), h.get("high_j"), h.get("stable")]
        )
    return header, rows


def write_epoch_csv(path: str | os.PathLike[str], report: Mapping[str, Any]) -> Path:
    """Write one row per epoch (energy, power, components, projection after that epoch) to ``path``."""
    target = Path(path)
    header, rows = _epoch_rows(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in _jsonable(row)])
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(target, buffer.getvalue())
    return target


def write_report(directory: str | os.PathLike[str], report: Mapping[str, Any]) -> Path:
    """Write ``energy_report.json`` and ``energy_epochs.csv`` into ``directory``; return the JSON's path."""
    if not isinstance(report, Mapping):
        raise TypeError(f"report must be a mapping (the report dict); got {type(report).__name__}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": REPORT_FORMAT, "version": REPORT_VERSION, **_jsonable(report)}
    path = folder / REPORT_FILENAME
    _atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    write_epoch_csv(folder / EPOCHS_CSV_FILENAME, data)
    return path


# ------------------------------------------------------------------------------------------------ reading
def find_report(path_or_dir: str | os.PathLike[str]) -> Path:
    """The report file for a file or run directory (searched below it when not directly inside)."""
    path = Path(path_or_dir)
    if not path.exists():
        raise ReportError(f"No such file or directory: {path}")
    if path.is_file():
        return path
    direct = path / REPORT_FILENAME
    if direct.is_file():
        return direct
    found = sorted(path.rglob(REPORT_FILENAME))
    if len(found) == 1:
        return found[0]
    if found:
        listing = "\n  ".join(str(p.parent) for p in found[:10])
        more = f"\n  ... and {len(found) - 10} more" if len(found) > 10 else ""
        raise ReportError(
            f"{len(found)} energy reports below {path}; pass one run directory:\n  {listing}{more}"
        )
    raise ReportError(
        f"No energy report in {path}: no {REPORT_FILENAME} there or below. The report is written at the "
        "end of trainer.fit() by Trainer(callbacks=[EnergyCallback()]) into the run's log directory "
        "(trainer.log_dir, e.g. lightning_logs/version_0)."
    )


def load_report(path_or_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a report: a file, or a run directory holding ``energy_report.json``.

    Raises :class:`ReportError` with a message naming the file when it is missing, corrupted or foreign.
    """
    path = find_report(path_or_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(
            f"{path} is corrupted: it is not UTF-8 text. Re-run training to rewrite it."
        ) from None
    except OSError as err:
        raise ReportError(f"Cannot read {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportError(
            f"{path} is corrupted or truncated (invalid JSON at line {err.lineno}, column {err.colno}: "
            f"{err.msg}). Re-run training to rewrite it; energy_epochs.csv next to it may still be readable."
        ) from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ReportError(f'{path} is not a lightning_energy report (expected "format": "{REPORT_FORMAT}")')
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportError(f'{path} has no integer "version" (got {version!r})')
    if version > REPORT_VERSION:
        raise ReportError(
            f"{path} has report version {version}, newer than this lightning_energy reads "
            f"({REPORT_VERSION}); upgrade lightning-energy"
        )
    for key, kind in (("epochs", list), ("totals", dict)):
        if not isinstance(data.get(key), kind):
            raise ReportError(f"{path} is incomplete: field {key!r} is missing or not a {kind.__name__}")
    return data


# ------------------------------------------------------------------------------------------------ tables
def pre_run_totals_j(report: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """The PRE estimate for the whole run (all GPUs together): ``(total_j, low_j, high_j)``, or ``None``."""
    pre = report.get("pre")
    if not isinstance(pre, Mapping) or pre.get("total_j") is None:
        return None
    total = float(pre["total_j"])
    low = float(pre["low_j"]) if pre.get("low_j") is not None else total
    high = float(pre["high_j"]) if pre.get("high_j") is not None else total
    return total, low, high


def first_stable(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The projection at which STEP first declared the per-epoch energy stable, or ``None``."""
    history = (report.get("projection") or {}).get("history") or []
    return next((h for h in history if isinstance(h, Mapping) and h.get("stable")), None)


def energy_unit(max_j: float) -> tuple[str, float]:
    """A readable unit for energies up to ``max_j``: ``("kWh", 3.6e6)``, ``("Wh", 3600)`` or ``("J", 1)``."""
    if max_j >= JOULES_PER_KWH:
        return "kWh", JOULES_PER_KWH
    if max_j >= JOULES_PER_WH:
        return "Wh", JOULES_PER_WH
    return "J", 1.0


def example_report(num_epochs: int = 10, max_epochs: int = 10, status: str = "complete") -> dict[str, Any]:
    """A deterministic, made-up report of a 1-GPU run (for documentation, tests and trying the CLI)."""
    if num_epochs < 1 or max_epochs < num_epochs:
        raise ValueError(
            f"need 1 <= num_epochs <= max_epochs; got num_epochs={num_epochs}, max_epochs={max_epochs}"
        )
    epochs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    total_j = 0.0
    for epoch in range(num_epochs):
        duration_s = 60.0 + (6.0 if epoch == 0 else 0.0) + (epoch % 3) * 0.8
        power = {"gpu": 240.0 + 8.0 * ((epoch * 7) % 5 - 2), "cpu": 45.0, "ram": 6.0}
        parts = {name: watts * duration_s for name, watts in power.items()}
        energy_j = sum(parts.values())
        total_j += energy_j
        done = epoch + 1
        mean_j = total_j / done
        spread = 0.25 / done + 0.01
        projected = total_j + mean_j * (max_epochs - done)
        stable_since = 3 if epoch >= 3 else None
        epochs.append(
            {
                "epoch": epoch,
                "duration_s": duration_s,
                "energy_j": energy_j,
                "components_j": parts,
                "power_w": energy_j / duration_s,
                "missing": False,
                "reason": None,
            }
        )
        history.append(
            {
                "epoch": epoch,
                "total_j": projected,
                "low_j": projected * (1 - spread),
                "high_j": projected * (1 + spread),
                "stable": stable_since is not None,
                "stable_since": stable_since,
                "epoch_energy_j": mean_j,
            }
        )
    duration = sum(e["duration_s"] for e in epochs)
    per_gpu_pre_j = 0.92 * history[-1]["total_j"]
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "status": status,
        "started_at": "2026-11-24T09:00:00+00:00",
        "ended_at": "2026-11-24T09:11:00+00:00",
        "world_size": 1,
        "num_nodes": 1,
        "max_epochs": max_epochs,
        "upper_bound": False,
        "components": {"gpu": "measured", "cpu": "estimated", "ram": "estimated"},
        "epochs": epochs,
        "totals": {
            "energy_j": total_j,
            "energy_kwh": total_j / JOULES_PER_KWH,
            "components_kwh": {
                c: sum(e["components_j"][c] for e in epochs) / JOULES_PER_KWH for c in ("gpu", "cpu", "ram")
            },
            "fit_energy_j": total_j * 1.02,
            "duration_s": duration,
            "measured_epochs": num_epochs,
            "missing_epochs": 0,
        },
        "projection": {"method": "step", "upper_bound": False, "history": history},
        "pre": {
            "total_j": per_gpu_pre_j,
            "low_j": 0.7 * per_gpu_pre_j,
            "high_j": 1.35 * per_gpu_pre_j,
            "total_epochs": max_epochs,
            "devices": 1,
            "upper_bound": False,
            "estimate": {
                "epoch_energy_j": per_gpu_pre_j / max_epochs,
                "power_w": 270.0,
                "epoch_seconds": 62.0,
                "gpu_name": "Example GPU",
            },
            "descriptor": {},
        },
        "carbon": {
            "g_per_kwh": 56.0,
            "pue": 1.2,
            "source": "user",
            "year": None,
            "country_iso3": None,
            "country_name": None,
            "co2_kg": total_j / JOULES_PER_KWH * 1.2 * 56.0 / 1000,
            "projected_co2_kg": history[-1]["total_j"] / JOULES_PER_KWH * 1.2 * 56.0 / 1000,
        },
        "hardware": {"gpus": [{"name": "Example GPU"}]},
        "versions": {"lightning_energy": "0.1.0", "lightning": "2.6.6", "torch": "2.13.0", "python": "3.11"},
        "warnings": [],
    }
