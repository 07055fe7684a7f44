"""The callback's cost hook by hook on a fit of ~1 ms batches, beside CodeCarbon's tracker (its thread too).

Used by ``benchmarks/overhead.py --hooks`` (the default there); prints a Markdown table of the callback's
cost per training batch, per epoch (its start and end hooks), at set-up and at the end, and the share of
the fit's wall time spent inside its hooks, against the budget of issue #21. CodeCarbon's
``OfflineEmissionsTracker`` is timed around the same fit: ``start()``/``stop()`` and the CPU time of the
background thread it starts.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import torch
from fit_harness import HookProfile, NoOpCallback, TinyMLP, fit, offline_tracker
from share_ab import load_average, paired_share

from lightning_energy import EnergyCallback

SETUP_HOOKS = ("setup", "on_fit_start", "on_train_start")
EPOCH_HOOKS = ("on_train_epoch_start", "on_train_epoch_end")
END_HOOKS = ("on_fit_end", "teardown")
BUDGET = {"batch_median_us": 2.0, "epoch_ms": 2.0, "setup_ms": 5.0, "share_pct": 0.3}


def _thread_cpu_s(threads: list[threading.Thread]) -> float:
    total = 0.0
    for thread in threads:
        if thread.ident is None or not thread.is_alive():
            continue
        try:
            total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, AttributeError):  # the thread ended meanwhile, or no per-thread clock here
            continue
    return total


def codecarbon_cost(root: Path, *, epochs: int, batches: int, batch_size: int) -> dict[str, float]:
    before = set(threading.enumerate())
    tracker = offline_tracker(root)
    start = time.perf_counter()
    tracker.start()
    start_s = time.perf_counter() - start
    threads = [t for t in threading.enumerate() if t not in before]
    try:
        wall_s = fit([], root, epochs=epochs, batches=batches, batch_size=batch_size)
    finally:
        thread_s = _thread_cpu_s(threads)  # read before stop() ends the threads
        start = time.perf_counter()
        tracker.stop()
        stop_s = time.perf_counter() - start
    return {"wall_s": wall_s, "start_stop_s": start_s + stop_s, "thread_cpu_s": thread_s}


def host_meter_open_ms() -> float:
    """Wall time of opening CodeCarbon's host meter in the calling thread (CodeCarbon already imported):
    the work the callback leaves to its background thread."""
    from lightning_energy.meters import HostMeter

    start = time.perf_counter()
    HostMeter().close()
    return 1000 * (time.perf_counter() - start)


# the share's budget is judged on a fit of a typical length: CIFAR-10's 50 000 training images in batches
# of 32 (1563 batches per epoch, within the 1000-5000 of most image and text fits: MNIST 1875, ImageNet at
# 256 per batch 5005), several epochs; at ~1 ms per batch an epoch is ~1.6 s, far shorter than on a GPU
TYPICAL = {"epochs": 5, "batches": 1563}


def typical_share(root: Path, *, epochs: int, batches: int, batch_size: int) -> dict[str, float]:
    """The hooks' share of a fit's wall time (and net of the timer), on a fit of ``epochs`` x ``batches``."""
    callback, no_op = EnergyCallback(history_path=False), NoOpCallback()
    profile, timer = HookProfile(callback), HookProfile(no_op)
    wall_s = fit([no_op, callback], root, epochs=epochs, batches=batches, batch_size=batch_size)
    hooks_s = profile.total_s()
    return {
        "share_pct": 100 * hooks_s / wall_s,
        "net_share_pct": 100 * (hooks_s - timer.total_s()) / wall_s,
        "fit_s": wall_s,
        "hooks_ms": 1000 * hooks_s,
    }


def hook_table(
    *,
    runs: int = 3,
    epochs: int = 3,
    batches: int = 1000,
    batch_size: int = 32,
    typical_epochs: int = TYPICAL["epochs"],
    typical_batches: int = TYPICAL["batches"],
    pairs: int = 8,
) -> str:
    """Run the fits and return the Markdown table: the hook-by-hook costs on a fit of ``epochs`` x
    ``batches``, the share on it and on a fit of typical length (``typical_epochs`` x ``typical_batches``),
    timed in the hooks and, by ``pairs`` A/B pairs of untimed fits (0: none), as the wall time added."""
    rows: dict[str, list[float]] = defaultdict(list)
    loads = [load_average()]
    started = time.strftime("%H:%M:%S", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fit(
            [EnergyCallback(history_path=False, report=False)],
            root / "warm",
            epochs=1,
            batches=50,
            batch_size=32,
        )
        for i in range(runs):
            plain_s = fit([], root / f"plain{i}", epochs=epochs, batches=batches, batch_size=batch_size)
            callback, no_op = EnergyCallback(history_path=False), NoOpCallback()
            profile, timer, model = HookProfile(callback), HookProfile(no_op), TinyMLP()
            wall_s = fit(
                [no_op, callback],
                root / f"cb{i}",
                epochs=epochs,
                batches=batches,
                batch_size=batch_size,
                model=model,
            )
            cc = codecarbon_cost(root / f"cc{i}", epochs=epochs, batches=batches, batch_size=batch_size)
            rows["batch_ms"].append(1000 * plain_s / (epochs * batches))
            per_batch = profile.per_batch_s()
            rows["batch_us"].append(1e6 * statistics.mean(per_batch))
            rows["batch_median_us"].append(1e6 * statistics.median(per_batch))
            rows["timer_batch_us"].append(1e6 * statistics.median(timer.per_batch_s()))
            rows["net_batch_median_us"].append(rows["batch_median_us"][-1] - rows["timer_batch_us"][-1])
            rows["batch_max_us"].append(1e6 * max(per_batch))
            rows["epoch_ms"].append(1000 * profile.total_s(EPOCH_HOOKS) / epochs)
            rows["first_epoch_start_ms"].append(1000 * profile.times["on_train_epoch_start"][0])
            later = sum(profile.times["on_train_epoch_start"][1:]) + sum(
                profile.times["on_train_epoch_end"][1:]
            )
            rows["later_epoch_ms"].append(1000 * later / max(1, epochs - 1))
            rows["log_ms"].append(1000 * model.log_s / epochs)
            rows["logged"].append(model.logged / epochs)
            rows["host_open_ms"].append(host_meter_open_ms())
            rows["setup_ms"].append(1000 * profile.total_s(SETUP_HOOKS))
            rows["end_ms"].append(1000 * profile.total_s(END_HOOKS))
            typical = typical_share(
                root / f"typical{i}", epochs=typical_epochs, batches=typical_batches, batch_size=batch_size
            )
            for key, value in typical.items():
                rows[f"typical_{key}"].append(value)
            rows["hooks_ms"].append(1000 * profile.total_s())
            rows["share_pct"].append(100 * profile.total_s() / wall_s)
            rows["fit_s"].append(wall_s)
            rows["net_share_pct"].append(100 * (profile.total_s() - timer.total_s()) / wall_s)
            rows["cc_start_stop_ms"].append(1000 * cc["start_stop_s"])
            rows["cc_thread_pct"].append(100 * cc["thread_cpu_s"] / cc["wall_s"])
            rows["cc_share_pct"].append(100 * (cc["start_stop_s"] + cc["thread_cpu_s"]) / cc["wall_s"])
            loads.append(load_average())
        ab = (
            paired_share(
                root / "ab",
                pairs=pairs,
                epochs=typical_epochs,
                batches=typical_batches,
                batch_size=batch_size,
            )
            if pairs
            else None
        )
    med = {k: statistics.median(v) for k, v in rows.items()}
    if ab is not None:
        loads += [ab["load_min"], ab["load_max"]]

    def verdict(key: str) -> str:
        return "within" if med[key] <= BUDGET[key.removeprefix("typical_").removeprefix("net_")] else "over"

    ended = time.strftime("%H:%M:%S", time.gmtime())
    lines = [
        f"{started}–{ended} UTC, load average (1 min, sampled between fits) "
        f"{min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores. "
        f"{runs} runs (median), {epochs} epochs of {batches} batches of {batch_size}, a 2-layer MLP on CPU "
        f"({torch.get_num_threads()} threads), {med['batch_ms']:.2f} ms per batch without a callback; "
        "`EnergyCallback(history_path=False)` with the default meter (CodeCarbon's host meter on CPU).",
        "",
        "| cost | measured | budget | |",
        "|---|---|---|---|",
        f"| per training batch (`on_train_batch_start` + `_end`, median), net of the timer "
        f"| {med['net_batch_median_us']:.2f} µs | ≤ 2 µs | {verdict('net_batch_median_us')} |",
        f"| per training batch, as timed (median) | {med['batch_median_us']:.2f} µs | | |",
        f"| the timer's own cost per batch (a no-op callback timed alike, median) "
        f"| {med['timer_batch_us']:.2f} µs | | |",
        f"| per training batch, mean (windows and bar refreshes included) | {med['batch_us']:.2f} µs | | |",
        f"| per training batch, slowest (a window or a bar refresh) | {med['batch_max_us']:.0f} µs | | |",
        f"| per epoch (`on_train_epoch_start` + `on_train_epoch_end`) | {med['epoch_ms']:.2f} ms | ≤ 2 ms "
        f"| {verdict('epoch_ms')} |",
        f"| of which the first `on_train_epoch_start` (reads the host meter without waiting for it to open) "
        f"| {med['first_epoch_start_ms']:.2f} ms | | |",
        f"| per epoch after the first | {med['later_epoch_ms']:.2f} ms | | |",
        f"| in Lightning's `LightningModule.log`, per epoch ({med['logged']:.1f} figures: the callback "
        f"publishes its figures without it) | {med['log_ms']:.2f} ms | | |",
        f"| set-up (`setup`, `on_fit_start`, `on_train_start`) | {med['setup_ms']:.2f} ms | ≤ 5 ms "
        f"| {verdict('setup_ms')} |",
        f"| host meter opening, done in a background thread (`HostMeter()` timed on its own) "
        f"| {med['host_open_ms']:.1f} ms | | |",
        f"| end (`on_fit_end`, `teardown`: report written) | {med['end_ms']:.2f} ms | | |",
        f"| share of the fit's wall time in the hooks, on a fit of typical length: {typical_epochs} epochs "
        f"of {typical_batches} batches (CIFAR-10 in batches of 32), {med['typical_fit_s']:.1f} s, "
        f"{med['typical_hooks_ms']:.0f} ms in the hooks | {med['typical_share_pct']:.3f} % | ≤ 0.3 % "
        f"| {verdict('typical_share_pct')} |",
        f"| the same share net of the timer's own cost | {med['typical_net_share_pct']:.3f} % | | |",
        f"| share on the short fit above ({epochs} epochs of {batches} batches, {med['fit_s']:.1f} s, "
        f"{med['hooks_ms']:.0f} ms in the hooks) | {med['share_pct']:.3f} % | (≤ 0.3 %) "
        f"| {verdict('share_pct')} |",
        f"| the same share net of the timer's own cost | {med['net_share_pct']:.3f} % | | |",
        f"| CodeCarbon `OfflineEmissionsTracker`: `start()` + `stop()` | {med['cc_start_stop_ms']:.1f} ms "
        "| | |",
        f"| CodeCarbon: its background thread's CPU time, share of the wall time "
        f"| {med['cc_thread_pct']:.3f} % | | |",
        f"| CodeCarbon: total share (start/stop + thread CPU) | {med['cc_share_pct']:.3f} % | | |",
    ]
    if ab is not None:
        lines[-3:-3] = ab_rows(ab, typical_epochs, typical_batches)
    return "\n".join(lines)


def ab_rows(ab: dict[str, float], epochs: int, batches: int) -> list[str]:
    """The table's rows of :func:`~share_ab.paired_share`: added wall time as shares of the fit's, judged on
    the 90 % interval of the median (one straddling the budget does not settle it)."""

    def verdict(key: str) -> str:
        if ab[f"{key}share_high_pct"] <= BUDGET["share_pct"]:
            return "within"
        return "over" if ab[f"{key}share_low_pct"] > BUDGET["share_pct"] else "not resolved"

    def row(label: str, key: str, budget: bool) -> str:
        interval = f"{ab[f'{key}share_low_pct']:.3f} to {ab[f'{key}share_high_pct']:.3f} %"
        return (
            f"| {label} ({ab[f'{key}added_ms']:.0f} ms; 90 % interval of the median {interval}; CPU time "
            f"{ab[f'{key}cpu_share_pct']:.3f} %) | {ab[f'{key}share_pct']:.3f} % "
            + (f"| ≤ 0.3 % | {verdict(key)} |" if budget else "| | |")
        )

    head = (
        f"untimed fits of typical length ({epochs} x {batches} batches, {ab['plain_s']:.1f} s without a "
        f"callback, spread {ab['spread_pct']:.1f} %), median of {ab['pairs']:.0f} paired differences "
        f"in ABC/CBA "
        f"order, load {ab['load_min']:.2f}–{ab['load_max']:.2f}"
    )
    return [
        row(f"share of the fit's wall time added by `EnergyCallback`, A/B: {head}", "", True),
        row(
            "of which added by any callback: a no-op callback, Lightning's own hook dispatch", "noop_", False
        ),
        row("added by `EnergyCallback` beyond a no-op callback: its own cost", "own_", True),
    ]
