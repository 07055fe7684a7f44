"""Plain-text tables of run reports: :func:`format_table` for one run, :func:`compare_table` for several.

Every energy in one table is in one unit (J, Wh, kWh or MWh, chosen from the largest figure shown), with
three significant figures; power in W, CO₂ in t, kg, g or mg.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_energy.hardware import Hardware
from lightning_energy.report_model import CarbonSummary, RunReport
from lightning_energy.units import energy_unit, format_mass, mass_unit, sig

__all__ = ["compare_table", "format_table"]


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else sig(value, digits)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
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


class _Scale:
    """The one energy unit of a table."""

    def __init__(self, max_j: float) -> None:
        unit = energy_unit(max_j)
        self.unit, self.factor = unit.name, unit.joules

    def __call__(self, energy_j: float | None) -> str:
        return "-" if energy_j is None else sig(energy_j / self.factor)

    def interval(self, low_j: float | None, high_j: float | None) -> str:
        return "-" if low_j is None or high_j is None else f"[{self(low_j)}, {self(high_j)}]"


def _measured_vs_pre(report: RunReport) -> str | None:
    """``"+8.7 %"``: how far the measured total of a complete run is from the PRE estimate, else ``None``."""
    pre, energy_j = report.pre_available, report.totals.energy_j
    if pre is None or not pre.total_j or energy_j is None or report.status != "complete":
        return None
    return f"{100 * (energy_j - pre.total_j) / pre.total_j:+.1f} %"


def _hardware_lines(hardware: Hardware) -> list[str]:
    """``hardware: 2 x NVIDIA A100; host AMD EPYC`` from the report's hardware section, if it says."""
    parts = []
    gpus = [g.name for g in hardware.gpus if g.name]
    for name in dict.fromkeys(gpus):
        parts.append(f"{gpus.count(name)} x {name}")
    if hardware.host is not None and hardware.host.cpu_model:
        parts.append(f"host {hardware.host.cpu_model}")
    return ["hardware: " + "; ".join(parts)] if parts else []


def _carbon_line(carbon: CarbonSummary) -> str:
    measured = "-" if carbon.co2_kg is None else format_mass(carbon.co2_kg)
    line = f"CO2: {measured} CO2e measured"
    line += (
        f", {format_mass(carbon.projected_co2_kg)} projected" if carbon.projected_co2_kg is not None else ""
    )
    c = carbon.intensity
    intensity = f"{_num(c.g_per_kwh)} g/kWh, PUE {_num(c.pue)}"
    if c.source == "user":
        return f"{line} (user-given {intensity})"
    where = c.country_name or c.country_iso3 or "?"
    return f"{line} ({where}, {intensity}; {c.source}, data year {c.year or 'unknown'})"


def _epoch_rows(report: RunReport, s: _Scale) -> list[list[str]]:
    history = {h.epoch: h for h in report.projections if h.step is None}
    rows = [["epoch", "time s", f"energy {s.unit}", "power W", f"projected {s.unit}", f"interval {s.unit}"]]
    rows[0].append("stable")
    for e in report.epochs:
        h = history.get(e.epoch)
        rows.append(
            [
                str(e.epoch),
                _num(e.duration_s),
                "missing" if e.energy_j is None else s(e.energy_j),
                _num(e.power_w),
                "-" if h is None else s(h.total_j),
                "-" if h is None else s.interval(h.low_j, h.high_j),
                "-" if h is None else ("yes" if h.stable else "no"),
            ]
        )
    rows.append(["total", _num(report.totals.duration_s), s(report.totals.energy_j), "", "", "", ""])
    return rows


def _declared_lines(report: RunReport, s: _Scale) -> list[str]:
    """When STEP first declared stability for the final budget (and for an earlier one, before a resume
    changed the budget), and why "stable since" may be earlier."""
    lines: list[str] = []
    declared, earlier = report.first_stable, report.earlier_budget_stable
    if declared is not None:
        lines.append(
            f"STEP first declared stable after epoch {declared.epoch}: {s(declared.total_j)} {s.unit} "
            f"{s.interval(declared.low_j, declared.high_j)}"
        )
    if earlier is not None and earlier.planned_epochs is not None:
        final = "" if report.max_epochs is None else f" to {report.max_epochs:g}"
        lines.append(
            f"  (before a resume changed the planned epochs{final}: declared stable after epoch "
            f"{earlier.epoch} for {earlier.planned_epochs:g} epochs, {s(earlier.total_j)} {s.unit} "
            f"{s.interval(earlier.low_j, earlier.high_j)})"
        )
    first = earlier if earlier is not None else declared
    final_point = report.final_projection
    since = final_point.stable_since if final_point is not None else None
    if first is not None and since is not None and since < first.epoch:
        lines.append(
            f"  (dated back to epoch {since}, where the level began; declared only after epoch "
            f"{first.epoch}, once enough epochs confirmed it)"
        )
    return lines


def _summary_lines(report: RunReport, s: _Scale) -> list[str]:
    totals = report.totals
    lines = [
        f"measured: {s(totals.energy_j)} {s.unit} in {_duration(totals.duration_s)} "
        f"({totals.measured_epochs} epochs measured, {totals.missing_epochs} missing)"
    ]
    parts = {k: v for k, v in totals.components_j.items() if v}
    if parts:
        lines.append("  by component: " + ", ".join(f"{k} {s(v)} {s.unit}" for k, v in parts.items()))
    if totals.fit_energy_j is not None:
        lines.append(f"whole fit (sanity check and gaps included): {s(totals.fit_energy_j)} {s.unit}")
    final = report.final_projection
    if final is not None:
        bound = report.upper_bound_note()
        state = (
            f"stable: one per-epoch energy level since epoch {final.stable_since}"
            if final.stable_since is not None
            else "not stable"
        )
        if not final.stable and final.reason:
            state = final.reason
        lines.append(
            f"STEP projection: {s(final.total_j)} {s.unit} {s.interval(final.low_j, final.high_j)}, "
            f"{state}{bound}"
        )
    elif report.projection_note:
        lines.append(f"STEP projection: none ({report.projection_note})")
    if report.expected:  # EarlyStopping: the expected total next to the max_epochs bound
        e = report.expected[-1]
        top = "open" if e.stop_epoch_high is None else f"{e.stop_epoch_high:.0f}"
        trail = ", ".join(f"{p.epoch}: {p.stop_epoch:.0f}" for p in report.expected[-5:])
        lines.append(
            f"expected with early stopping: {s(e.total_j)} {s.unit} {s.interval(e.low_j, e.high_j)}, "
            f"stop predicted at epoch {e.stop_epoch:.0f} [{e.stop_epoch_low:.0f}, {top}] "
            f"(predicted stop after epoch {trail})"
        )
    lines += _declared_lines(report, s)
    pre = report.pre_available
    if pre is not None:
        error = _measured_vs_pre(report)
        lines.append(
            f"PRE estimate: {s(pre.total_j)} {s.unit} {s.interval(pre.low_j, pre.high_j)}"
            + (f"; measured is {error} vs PRE" if error else "")
        )
    elif report.pre is not None and report.pre.skipped:
        lines.append(f"PRE estimate: skipped ({report.pre.skipped})")
    if report.windows:
        w = report.windows[-1]
        lines.append(
            f"windows: {len(report.windows)} in-epoch windows; last at step {w.step}: projected "
            f"{s(w.total_j)} {s.unit} {s.interval(w.low_j, w.high_j)}"
        )
    lines.append(_carbon_line(report.carbon) if report.carbon else "CO2: not reported (no carbon_intensity)")
    if report.warnings:
        lines += ["warnings:"] + [f"  - {w}" for w in report.warnings]
    return lines


def _budget(report: RunReport) -> str:
    """``max_epochs 20``, or ``max_steps 1200 (4.69 epochs)`` when the steps end the run inside an epoch."""
    epochs = report.max_epochs
    if report.max_steps is not None and (epochs is None or not float(epochs).is_integer()):
        return f"max_steps {report.max_steps}" + ("" if epochs is None else f" ({sig(epochs)} epochs)")
    return "max_epochs -" if epochs is None else f"max_epochs {epochs:g}"


def _unmetered_ranks_line(report: RunReport) -> list[str]:
    n = report.unmetered_ranks
    if not n:
        return []
    ranks = "1 rank has" if n == 1 else f"{n} ranks have"
    return [
        f"{ranks} nothing to meter by design (no GPU; the host is metered by each node's local rank 0): "
        "counted as 0 J, not missing"
    ]


def format_table(report: RunReport) -> str:
    """One run as a readable text table: epochs, energy, power, projection and interval, PRE, totals, CO₂."""
    s = _Scale(report.max_j())
    head = [
        f"lightning_energy report: {report.status}, {len(report.epochs)} epochs ({_budget(report)}), "
        f"world size {report.world_size}, {report.num_nodes} node(s)",
        f"from {report.started_at} to {report.ended_at}",
        "components: " + (", ".join(f"{k} {v}" for k, v in report.components.items()) or "none"),
        *_unmetered_ranks_line(report),
        *_hardware_lines(report.hardware),
        "",
    ]
    return "\n".join(
        [*head, _render(_epoch_rows(report, s), first_left=False), "", *_summary_lines(report, s)]
    )


def compare_table(reports: Sequence[RunReport], names: Sequence[str] | None = None) -> str:
    """Several runs side by side, one column per run (``names`` labels the columns; default run 1, 2...)."""
    if not reports:
        raise ValueError("reports must hold at least one report; got none")
    labels = list(names) if names is not None else [f"run {i + 1}" for i in range(len(reports))]
    if len(labels) != len(reports):
        raise ValueError(f"names must have one label per report ({len(reports)}); got {len(labels)}")
    s = _Scale(max(r.max_j() for r in reports))
    co2 = [r.carbon.co2_kg if r.carbon else None for r in reports]
    mass = mass_unit(max((c for c in co2 if c is not None), default=1.0)).name
    finals = [r.final_projection for r in reports]
    pres = [r.pre_available for r in reports]

    def power(r: RunReport) -> str:
        t = r.totals
        return _num(t.energy_j / t.duration_s) if t.energy_j and t.duration_s else "-"

    rows = [
        ["", *labels],
        ["status", *(r.status for r in reports)],
        ["epochs measured", *(f"{r.totals.measured_epochs}/{len(r.epochs)}" for r in reports)],
        ["world size", *(str(r.world_size) for r in reports)],
        ["duration", *(_duration(r.totals.duration_s) for r in reports)],
        [f"energy {s.unit}", *(s(r.totals.energy_j) for r in reports)],
        ["mean power W", *(power(r) for r in reports)],
        [f"projected {s.unit}", *(s(f.total_j) if f else "-" for f in finals)],
        [f"interval {s.unit}", *(s.interval(f.low_j, f.high_j) if f else "-" for f in finals)],
        [
            "stable since epoch",
            *(str(f.stable_since) if f and f.stable_since is not None else "-" for f in finals),
        ],
        [f"PRE {s.unit}", *(s(p.total_j) if p else "-" for p in pres)],
        ["measured vs PRE", *(_measured_vs_pre(r) or "-" for r in reports)],
        [f"CO2 {mass}", *("-" if c is None else format_mass(c, mass).split()[0] for c in co2)],
    ]
    return _render(rows)
