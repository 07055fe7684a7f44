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

from fit_harness import fit

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


def paired_share(root: Path, *, pairs: int, epochs: int, batches: int, batch_size: int) -> dict[str, float]:
    """``pairs`` A/B pairs of fits of ``epochs`` x ``batches`` (ABBA order, after one warm-up fit of each)."""
    for name, callbacks in (("a", []), ("b", [EnergyCallback(history_path=False)])):
        fit(callbacks, root / f"ab-warm-{name}", epochs=1, batches=50, batch_size=batch_size)
    loads = [load_average()]
    plain_s: list[float] = []
    wall_diffs: list[float] = []
    cpu_diffs: list[float] = []
    for i in range(pairs):
        measured: dict[bool, tuple[float, float]] = {}
        for with_callback in (False, True) if i % 2 == 0 else (True, False):
            callbacks = [EnergyCallback(history_path=False)] if with_callback else []
            cpu = time.process_time()
            wall = fit(
                callbacks,
                root / f"ab{i}-{with_callback}",
                epochs=epochs,
                batches=batches,
                batch_size=batch_size,
            )
            measured[with_callback] = (wall, time.process_time() - cpu)
        plain_s.append(measured[False][0])
        wall_diffs.append(measured[True][0] - measured[False][0])
        cpu_diffs.append(measured[True][1] - measured[False][1])
        loads.append(load_average())
    plain = statistics.median(plain_s)
    low, high = median_interval(wall_diffs)
    return {
        "pairs": pairs,
        "plain_s": plain,
        "added_ms": 1000 * statistics.median(wall_diffs),
        "share_pct": 100 * statistics.median(wall_diffs) / plain,
        "share_low_pct": 100 * low / plain,
        "share_high_pct": 100 * high / plain,
        "spread_pct": 100 * (max(plain_s) - min(plain_s)) / plain,
        "cpu_share_pct": 100 * statistics.median(cpu_diffs) / plain,
        "load_min": min(loads),
        "load_max": max(loads),
    }
