"""The share of a fit's wall time the callback adds, measured without timing its hooks: A/B fits.

Used by ``benchmarks/hook_cost.py``. Fits without a callback (A) and with an untimed
``EnergyCallback(history_path=False)`` (B) run in ABBA order (a linear drift in the machine's load hits both
alike); each A/B pair gives one difference of wall time (and of the process's CPU time, all threads). The
share is the median difference over the median fit without the callback, with a distribution-free interval
for the median (order statistics of the differences). Nothing wraps the hooks, so no timer's cost is in it;
what it includes that the hook-by-hook table does not: everything the callback makes the process do, its
background thread and Lightning's calls of its hooks included. On a shared machine a pair's difference
varies by more than the callback costs: the interval says how far the median can be trusted.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import lightning.pytorch as pl
from fit_harness import NoOpCallback, fit

from lightning_energy import EnergyCallback


def load_average() -> float:
    """The machine's 1-minute load average (other jobs' CPU demand; 2 cores here)."""
    return os.getloadavg()[0]


def median_interval(values: list[float], confidence: float = 0.9) -> tuple[float, float]:
    """A distribution-free interval for the median of ``values``: the ``k``-th smallest and largest values,
    ``k`` the largest whose coverage (binomial, p = 1/2) is at least ``confidence``; the whole range when
    there are too few values for that."""
    ordered, n = sorted(values), len(values)
    k = 1
    while k < n // 2:
        outside = 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # P(median outside the k+1-th values)
        if 1 - outside < confidence:
            break
        k += 1
    return ordered[k - 1], ordered[n - k]


def _variant(name: str) -> list[pl.Callback]:
    if name == "energy":
        return [EnergyCallback(history_path=False)]
    return [NoOpCallback()] if name == "no-op" else []


def paired_share(root: Path, *, pairs: int, epochs: int, batches: int, batch_size: int) -> dict[str, float]:
    """``pairs`` rounds of fits of ``epochs`` x ``batches`` without a callback, with a no-op callback and
    with the callback (in ABC order, then CBA: a linear drift hits all alike), after one warm-up fit of
    each; each round gives one difference to the fit without a callback per variant."""
    names = ("plain", "no-op", "energy")
    for name in names:
        fit(_variant(name), root / f"ab-warm-{name}", epochs=1, batches=50, batch_size=batch_size)
    loads = [load_average()]
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for i in range(pairs):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.process_time()
            wall[name].append(
                fit(
                    _variant(name),
                    root / f"ab{i}-{name}",
                    epochs=epochs,
                    batches=batches,
                    batch_size=batch_size,
                )
            )
            cpu[name].append(time.process_time() - start)
        loads.append(load_average())
    plain = statistics.median(wall["plain"])
    out = {
        "pairs": float(pairs),
        "plain_s": plain,
        "spread_pct": 100 * (max(wall["plain"]) - min(wall["plain"])) / plain,
        "load_min": min(loads),
        "load_max": max(loads),
    }
    for key, name, base in (
        ("", "energy", "plain"),
        ("noop_", "no-op", "plain"),
        ("own_", "energy", "no-op"),
    ):
        diffs = [a - b for a, b in zip(wall[name], wall[base], strict=True)]
        low, high = median_interval(diffs)
        out[f"{key}added_ms"] = 1000 * statistics.median(diffs)
        out[f"{key}share_pct"] = 100 * statistics.median(diffs) / plain
        out[f"{key}share_low_pct"] = 100 * low / plain
        out[f"{key}share_high_pct"] = 100 * high / plain
        cpu_diffs = [a - b for a, b in zip(cpu[name], cpu[base], strict=True)]
        out[f"{key}cpu_share_pct"] = 100 * statistics.median(cpu_diffs) / plain
    return out
