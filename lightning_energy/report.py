"""The run report: ``energy_report.json`` (schema version 1) and ``energy_epochs.csv``.

:func:`write_report` writes both files atomically (temporary file + ``os.replace``), so a crash never leaves
a half-written report. :func:`load_report` reads one back with clear :class:`ReportError` messages.
:func:`format_table` and :func:`compare_table` render one run or several as plain text. The schema is
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_energy.errors import EnergyError

__all__ = [
    "EPOCHS_CSV_FILENAME",
    "REPORT_FILENAME",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "ReportError",
    "compare_table",
    "energy_unit",
    "example_report",
    "find_report",
    "format_table",
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


def energy_unit(max_j: float) -> tuple[str, float]:
    """A readable unit for energies up to ``max_j``: ``("kWh", 3.6e6)``, ``("Wh", 3600)`` or ``("J", 1)``."""
    if max_j >= JOULES_PER_KWH:
        return "kWh", JOULES_PER_KWH
    if max_j >= JOULES_PER_WH:
        return "Wh", JOULES_PER_WH
    return "J", 1.0


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.{digits}g}"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    total = float(seconds)
    if total < 120:
        return f"{total:.1f} s"
    minutes, secs = divmod(round(total), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _render(rows: Sequence[Sequence[str]], *, first_left: bool = True) -> str:
    """Align columns right (the first one left when ``first_left``)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        first = row[0].ljust(widths[0]) if first_left else row[0].rjust(widths[0])
        cells = [first] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _report_max_j(report: Mapping[str, Any]) -> float:
    values = [float((report.get("totals") or {}).get("energy_j") or 0.0)]
    values += [float(h.get("high_j") or 0.0) for h in (report.get("projection") or {}).get("history") or []]
    pre = pre_run_totals_j(report)
    values += list(pre) if pre else []
    return max(values)


def _interval(low: Any, high: Any, scale: float) -> str:
    if low is None or high is None:
        return "-"
    return f"[{_num(low / scale)}, {_num(high / scale)}]"


def _final_projection(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    history = (report.get("projection") or {}).get("history") or []
    return history[-1] if history else None


def _measured_vs_pre(report: Mapping[str, Any]) -> str | None:
    """``"+8.7 %"``: how far the measured total of a complete run is from the PRE estimate, else ``None``."""
    pre = pre_run_totals_j(report)
    energy_j = (report.get("totals") or {}).get("energy_j")
    if pre is None or pre[0] <= 0 or not energy_j or report.get("status") != "complete":
        return None
    return f"{100 * (energy_j - pre[0]) / pre[0]:+.1f} %"


def _hardware_lines(hardware: Any) -> list[str]:
    """``hardware: 2 x NVIDIA A100; host AMD EPYC`` from the report's hardware section, if it says."""
    if not isinstance(hardware, Mapping):
        return []
    parts = []
    gpus = [g.get("name") for g in hardware.get("gpus") or [] if isinstance(g, Mapping) and g.get("name")]
    for name in dict.fromkeys(gpus):
        parts.append(f"{gpus.count(name)} x {name}")
    host = hardware.get("host")
    if isinstance(host, Mapping) and host.get("cpu_model"):
        parts.append(f"host {host['cpu_model']}")
    return ["hardware: " + "; ".join(parts)] if parts else []


def _carbon_line(carbon: Mapping[str, Any]) -> str:
    projected = carbon.get("projected_co2_kg")
    line = f"CO2: {_num(carbon.get('co2_kg'))} kg CO2e measured"
    line += f", {_num(projected)} kg projected" if projected is not None else ""
    intensity = f"{_num(carbon.get('g_per_kwh'))} g/kWh, PUE {_num(carbon.get('pue'), 3)}"
    if carbon.get("source") == "user":
        return f"{line} (user-given {intensity})"
    where = carbon.get("country_name") or carbon.get("country_iso3") or "?"
    year = carbon.get("year")
    return f"{line} ({where}, {intensity}; {carbon.get('source')}, data year {year or 'unknown'})"


def format_table(report: Mapping[str, Any]) -> str:
    """One run as a readable text table: epochs, energy, power, projection and interval, PRE, totals, CO₂."""
    unit, scale = energy_unit(_report_max_j(report))
    totals = report.get("totals") or {}
    history = {h.get("epoch"): h for h in (report.get("projection") or {}).get("history") or []}
    components = report.get("components") or {}
    head = [
        f"lightning_energy report: {report.get('status', '?')}, {len(report.get('epochs') or [])} epochs "
        f"(max_epochs {report.get('max_epochs')}), world size {report.get('world_size')}, "
        f"{report.get('num_nodes')} node(s)",
        f"from {report.get('started_at')} to {report.get('ended_at')}",
        "components: " + (", ".join(f"{k} {v}" for k, v in components.items()) or "none"),
        *_hardware_lines(report.get("hardware")),
        "",
    ]
    rows = [
        ["epoch", "time s", f"energy {unit}", "power W", f"projected {unit}", f"interval {unit}", "stable"]
    ]
    for e in report.get("epochs") or []:
        h = history.get(e.get("epoch"), {})
        energy = e.get("energy_j")
        rows.append(
            [
                str(e.get("epoch")),
                _num(e.get("duration_s")),
                "missing" if energy is None else _num(energy / scale),
                _num(e.get("power_w")),
                _num(h["total_j"] / scale) if h.get("total_j") is not None else "-",
                _interval(h.get("low_j"), h.get("high_j"), scale),
                {True: "yes", False: "no"}.get(h.get("stable"), "-"),
            ]
        )
    energy_j = totals.get("energy_j")
    rows.append(
        ["total", _num(totals.get("duration_s")), _num(None if energy_j is None else energy_j / scale)]
    )
    rows[-1] += ["", "", "", ""]
    lines = [*head, _render(rows, first_left=False), ""]
    lines.append(
        f"measured: {_num(totals.get('energy_kwh'))} kWh in {_duration(totals.get('duration_s'))} "
        f"({totals.get('measured_epochs', 0)} epochs measured, {totals.get('missing_epochs', 0)} missing)"
    )
    parts = totals.get("components_kwh") or {}
    if parts:
        lines.append("  by component: " + ", ".join(f"{k} {_num(v)} kWh" for k, v in parts.items() if v))
    if totals.get("fit_energy_j") is not None:
        lines.append(
            f"whole fit (sanity check and gaps included): {_num(totals['fit_energy_j'] / scale)} {unit}"
        )
    final = _final_projection(report)
    if final is not None:
        since = final.get("stable_since")
        bound = " (upper bound: early stopping may end the run sooner)" if report.get("upper_bound") else ""
        lines.append(
            f"STEP projection: {_num(final.get('total_j', 0) / scale)} {unit} "
            f"{_interval(final.get('low_j'), final.get('high_j'), scale)}, "
            + (f"stable since epoch {since}" if since is not None else "not stable")
            + bound
        )
    pre = report.get("pre")
    pre_totals = pre_run_totals_j(report)
    if pre_totals is not None:
        interval = _interval(pre_totals[1], pre_totals[2], scale)
        line = f"PRE estimate: {_num(pre_totals[0] / scale)} {unit} {interval}"
        error = _measured_vs_pre(report)
        line += f"; measured is {error} vs PRE" if error else ""
        lines.append(line)
    elif isinstance(pre, Mapping) and pre.get("skipped"):
        lines.append(f"PRE estimate: skipped ({pre['skipped']})")
    carbon = report.get("carbon")
    lines.append(
        _carbon_line(carbon) if isinstance(carbon, Mapping) else "CO2: not reported (no carbon_intensity)"
    )
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["warnings:"] + [f"  - {w}" for w in warnings]
    return "\n".join(lines)


def compare_table(reports: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> str:
    """Several runs side by side, one column per run (``names`` labels the columns; default run 1, 2...)."""
    if not reports:
        raise ValueError("reports must hold at least one report; got none")
    labels = list(names) if names is not None else [f"run {i + 1}" for i in range(len(reports))]
    if len(labels) != len(reports):
        raise ValueError(f"names must have one label per report ({len(reports)}); got {len(labels)}")
    unit, scale = energy_unit(max(_report_max_j(r) for r in reports))
    rows = [["", *labels]]

    def add(title: str, cells: list[str]) -> None:
        rows.append([title, *cells])

    totals = [r.get("totals") or {} for r in reports]
    finals = [_final_projection(r) for r in reports]
    pres = [pre_run_totals_j(r) for r in reports]
    add("status", [str(r.get("status", "?")) for r in reports])
    add(
        "epochs measured",
        [
            f"{t.get('measured_epochs', 0)}/{len(r.get('epochs') or [])}"
            for r, t in zip(reports, totals, strict=True)
        ],
    )
    add("world size", [str(r.get("world_size", "-")) for r in reports])
    add("duration", [_duration(t.get("duration_s")) for t in totals])
    add(f"energy {unit}", [_num((t.get("energy_j") or 0.0) / scale) for t in totals])
    add(
        "mean power W",
        [
            _num(t["energy_j"] / t["duration_s"]) if t.get("energy_j") and t.get("duration_s") else "-"
            for t in totals
        ],
    )
    add(
        f"projected {unit}",
        [_num(f["total_j"] / scale) if f and f.get("total_j") is not None else "-" for f in finals],
    )
    add(f"interval {unit}", [_interval(f.get("low_j"), f.get("high_j"), scale) if f else "-" for f in finals])
    add(
        "stable since epoch",
        [str(f.get("stable_since")) if f and f.get("stable_since") is not None else "-" for f in finals],
    )
    add(f"PRE {unit}", [_num(p[0] / scale) if p else "-" for p in pres])
    add(
        "measured vs PRE",
        [_measured_vs_pre(r) or "-" for r in reports],
    )
    add("CO2 kg", [_num((r.get("carbon") or {}).get("co2_kg")) for r in reports])
    return _render(rows)


# ------------------------------------------------------------------------------------------------ example
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
            "epoch_energy_j": per_gpu_pre_j / max_epochs,
            "power_w": 270.0,
            "epoch_seconds": 62.0,
            "total_epochs": max_epochs,
            "world_size": 1,
            "gpu": {"name": "Example GPU"},
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
