"""Plain-text tables of run reports: :func:`format_table` for one run, :func:`compare_table` for several."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_energy.report import energy_unit, first_stable, pre_run_totals_j

__all__ = ["compare_table", "format_table"]


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
    declared = first_stable(report)
    if declared is not None:
        lines.append(
            f"STEP first declared stable after epoch {declared['epoch']}: "
            f"{_num(declared['total_j'] / scale)} {unit} "
            f"{_interval(declared.get('low_j'), declared.get('high_j'), scale)}"
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
