"""The run report files: ``energy_report.json`` (schema version 1) and ``energy_epochs.csv``.

:func:`write_report` writes both files as a pair: both are staged, then renamed, so a crash of the process,
an error or a full disk never leaves a half-written report, nor a new JSON beside the previous run's CSV.
The JSON, the report of record, is fsynced before its rename: an operating-system crash or a power cut
cannot leave it empty or partial either. The CSV, a table made from the JSON's epochs
(:func:`epoch_csv_text` of :func:`load_report` makes it again), is left to the system's writeback: one
``fsync`` per report (each costs milliseconds at the fit's end).
:func:`load_report` reads a report back as a typed :class:`~lightning_energy.report_model.RunReport`, with
clear :class:`ReportError` messages. :mod:`lightning_energy.report_table` renders reports as text. The
schema is documented in ``docs/report.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from lightning_energy._io import atomic_write_texts, with_note
from lightning_energy.report_model import REPORT_FORMAT, REPORT_VERSION, ReportError, RunReport
from lightning_energy.units import joules_to_kwh

__all__ = [
    "EPOCHS_CSV_FILENAME",
    "REPORT_FILENAME",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "ReportError",
    "epoch_csv_text",
    "find_report",
    "load_report",
    "write_report",
]

REPORT_FILENAME = "energy_report.json"
EPOCHS_CSV_FILENAME = "energy_epochs.csv"
_COMPONENT_ORDER = ("gpu", "cpu", "ram", "other")


# ------------------------------------------------------------------------------------------------ writing
def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


def epoch_csv_text(report: RunReport) -> str:
    """One row per epoch (energy, power, components, projection after that epoch), as CSV text.

    A component the run did not meter (not in ``report.components``, e.g. the GPU of a CPU-only run) has an
    empty cell, never ``0.0``: the JSON leaves it out, and an empty cell is an unknown value, not zero.
    """
    history = {h.epoch: h for h in report.projections if h.step is None}
    names = {name for e in report.epochs for name in e.components_j}
    # the four categories always have a column (empty where not metered), whatever the epochs name
    components = list(_COMPONENT_ORDER) + sorted(names - set(_COMPONENT_ORDER))
    header = ["epoch", "duration_s", "energy_j", "energy_kwh", "power_w"]
    header += [f"{c}_j" for c in components]
    header += ["missing", "reason", "projected_total_j", "projected_low_j", "projected_high_j", "stable"]
    header += ["batches"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for e in report.epochs:
        h = history.get(e.epoch)
        energy = e.energy_j
        row: list[Any] = [e.epoch, e.duration_s, energy, None if energy is None else joules_to_kwh(energy)]
        parts = [e.components_j.get(c) if c in report.components else None for c in components]
        row += [e.power_w, *parts, e.missing, e.reason]
        row += [None, None, None, None] if h is None else [h.total_j, h.low_j, h.high_j, h.stable]
        row += [e.batches]
        writer.writerow([_cell(cell) for cell in row])
    return buffer.getvalue()


def _json_safe(value: Any) -> Any:
    """NaN and infinities become ``null`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def write_report(directory: str | os.PathLike[str], report: RunReport) -> Path:
    """Write ``energy_report.json`` and ``energy_epochs.csv`` into ``directory``; return the JSON's path.

    Both files or neither: on failure the previous pair (if any) is left as it was and the ``OSError`` says
    so ("no file was changed"), or, if even putting the first file back failed, names the file that changed.
    """
    if not isinstance(report, RunReport):
        raise TypeError(f"report must be a RunReport, got {type(report).__name__}")
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise with_note(exc, "no file was changed") from exc
    path = folder / REPORT_FILENAME
    text = json.dumps(_json_safe(report.to_json()), indent=2, allow_nan=False) + "\n"
    csv_text = epoch_csv_text(report)
    atomic_write_texts({path: text, folder / EPOCHS_CSV_FILENAME: csv_text}, durable={path})
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


def load_report(path_or_dir: str | os.PathLike[str]) -> RunReport:
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
    except (ValueError, RecursionError) as err:  # an integer of thousands of digits, absurd nesting
        raise ReportError(f"{path} is corrupted: {type(err).__name__}: {str(err)[:200]}") from None
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
    try:
        return RunReport.from_json(data)
    except ReportError as err:
        raise ReportError(f"{path} is incomplete or malformed: {err}") from None
    except (TypeError, ValueError, OverflowError, AttributeError, RecursionError) as err:
        raise ReportError(f"{path} is malformed: {type(err).__name__}: {str(err)[:200]}") from None
