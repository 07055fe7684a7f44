"""Pure helpers shared by the GPU visit's scripts: integration, statistics, tables, JSON output.

No torch, no Lightning, no NVML here: ``visit.py``, ``nvml_check.py`` and ``summarise.py`` import it, and
the tests exercise it directly.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_energy.meters import Trace
from lightning_energy.units import sig


@dataclass(frozen=True)
class Latency:
    """Latency of one call, in microseconds."""

    median_us: float
    p99_us: float
    calls: int

    def to_dict(self) -> dict[str, float | int]:
        return {"median_us": self.median_us, "p99_us": self.p99_us, "calls": self.calls}


def time_calls(call: Callable[[], object], n: int, clock: Callable[[], float]) -> Latency:
    """Median and P99 of ``n`` calls of ``call`` (``clock`` in seconds, e.g. ``time.perf_counter``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    times_us: list[float] = []
    for _ in range(n):
        t0 = clock()
        call()
        times_us.append((clock() - t0) * 1e6)
    return Latency(statistics.median(times_us), percentile(times_us, 99.0), n)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile, nearest rank (P99 of 1,000 values is the 990th smallest)."""
    if not values:
        raise ValueError("values must not be empty")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def integrate_power_j(samples: Sequence[tuple[float, float]], t0_s: float, t1_s: float) -> float | None:
    """Trapezoid integral of (t_s, W) samples over [t0_s, t1_s] (ends interpolated); None if not covered."""
    points = sorted(samples)
    if len(points) < 2 or points[0][0] > t0_s or points[-1][0] < t1_s or t1_s <= t0_s:
        return None
    times = [t for t, _ in points]

    def power_at(t_s: float) -> float:
        i = bisect.bisect_right(times, t_s)
        if i >= len(points):
            return points[-1][1]
        (ta, wa), (tb, wb) = points[i - 1], points[i]
        return wa if tb == ta else wa + (wb - wa) * (t_s - ta) / (tb - ta)

    lo, hi = bisect.bisect_right(times, t0_s), bisect.bisect_left(times, t1_s)
    curve = [(t0_s, power_at(t0_s)), *points[lo:hi], (t1_s, power_at(t1_s))]
    return sum(0.5 * (wa + wb) * (tb - ta) for (ta, wa), (tb, wb) in itertools.pairwise(curve))


def gap_pct(value: float | None, reference: float | None) -> float | None:
    """``100 (value - reference) / reference``; None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value - reference) / reference


def change_intervals_s(series: Sequence[tuple[float, float]]) -> list[float]:
    """Seconds between successive changes of the value in a (t_s, value) series: a counter's update period."""
    change_times = [t for (_, va), (t, vb) in itertools.pairwise(series) if vb != va]
    return [tb - ta for ta, tb in itertools.pairwise(change_times)]


@dataclass(frozen=True)
class EpochEnergy:
    """One epoch of a trace: boundary times and the energy between them."""

    epoch: int
    start_s: float
    end_s: float
    energy_j: float  # all components
    gpu_j: float  # components whose name starts with "gpu"

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def trace_epochs(trace: Trace) -> list[EpochEnergy]:
    """Epochs with both boundary readings (the first of each), in epoch order."""
    bounds: dict[tuple[str, int], tuple[float, dict[str, float]]] = {}
    for reading in trace.readings:
        if reading.event is not None and reading.epoch is not None and reading.joules is not None:
            bounds.setdefault((reading.event, reading.epoch), (reading.t_s, reading.joules))
    epochs: list[EpochEnergy] = []
    for epoch in sorted({e for _, e in bounds}):
        if ("epoch_start", epoch) not in bounds or ("epoch_end", epoch) not in bounds:
            continue
        (t0, start), (t1, end) = bounds[("epoch_start", epoch)], bounds[("epoch_end", epoch)]
        delta = {name: end[name] - start.get(name, 0.0) for name in end}
        gpu_j = sum(value for name, value in delta.items() if name.startswith("gpu"))
        epochs.append(EpochEnergy(epoch, t0, t1, sum(delta.values()), gpu_j))
    return epochs


def counter_vs_sampling(trace: Trace, component: str = "gpu0") -> list[dict[str, float | int | None]]:
    """Per epoch: energy from the boundary readings (counter) and from the power samples; gap in %."""
    starts = {r.epoch: r for r in trace.readings if r.event == "epoch_start" and r.joules}
    rows: list[dict[str, float | int | None]] = []
    for end in trace.readings:
        if end.event != "epoch_end" or not end.joules or end.epoch not in starts:
            continue
        start = starts[end.epoch]
        assert start.joules is not None
        counter_j = end.joules.get(component, 0.0) - start.joules.get(component, 0.0)
        sampled_j = integrate_power_j(trace.power_samples, start.t_s, end.t_s)
        rows.append(
            {
                "epoch": end.epoch,
                "seconds": end.t_s - start.t_s,
                "counter_j": counter_j,
                "sampled_j": sampled_j,
                "gap_pct": gap_pct(sampled_j, counter_j),
            }
        )
    return rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats with 3 significant figures, ``None`` as ``n/a``, booleans as yes/no."""

    def cell(value: object) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return sig(value)
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(data: Any, path: str | os.PathLike[str]) -> Path:
    """Write JSON atomically (a temporary file in the same folder, then ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, allow_nan=False, default=str)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
