"""STEP: detect the stable per-epoch energy online and project the whole run's energy, live.

Pure numpy/scipy; the callback feeds one measured epoch at a time to :class:`StepProjector`.

The method, at every :meth:`StepProjector.update` (the whole analysis is recomputed from the stored series,
which keeps it stateless apart from the series and makes resumption exact):

1. **Warm-up.** The first ``warmup_epochs`` epochs (cuDNN autotuning, data-loader start, compilation,
   cold GPU) are measured and counted but never used for the level.
2. **Noise.** The epoch-to-epoch noise ``sigma`` is a robust scale of the first differences
   (1.4826 x MAD / sqrt 2), which level shifts barely affect; it is floored at ``noise_floor`` x level.
3. **Regimes.** The current regime is found by binary segmentation of the tail of the series: for every
   split of ``series[start:]`` whose right part has at least ``confirm_epochs`` epochs, a two-sample z
   statistic of the (winsorised at median +- 3 sigma, so an isolated spike cannot make a change) means is
   computed; if the largest exceeds the Bonferroni-corrected normal quantile at ``change_alpha``, the regime
   start moves to that split and the test is repeated. A frozen-backbone plateau, a warm-up ramp, an
   unfreeze, a power cap or throttling all end a regime this way. Up to ``confirm_epochs`` leading epochs
   of the regime are then dropped while they depart from the median of the rest by ``SETTLE_SIGMAS``
   sigma (the mixed epoch of a change and the settling after it).
4. **Trend.** Inside the regime a Theil-Sen slope with its ``trend_confidence`` interval (scipy) tests for a
   drift (thermal ramp, slow throttling). A significant trend that would move the remaining energy by more
   than ``trend_tolerance`` blocks stability; the level is then the Theil-Sen line at the last epoch.
5. **Stability** is declared when the regime has ``min_stable_epochs`` epochs, has no material trend, and
   at least ``max(min_epochs, ceil(min_fraction x planned epochs))`` epochs were seen. The last guard exists
   because an early plateau (frozen backbone, LR warm-up) cannot be told apart from the final level by the
   data alone; on the 309 GAISSA runs it is what keeps the first declaration after the plateau.
6. **Level and projection.** The level is the mean of the last ``window`` epochs of the regime (a mean, so
   periodic spikes are counted at their frequency) without a one-off transient (one block of at most 2
   epochs beyond ``TRANSIENT_SIGMAS`` sigma: a stall); from ``min_epochs + LATE_WINDOW`` epochs on, a
   regime younger than ``LATE_WINDOW`` whose last epochs lie within ``LATE_MERGE_REL`` is read from the
   last ``LATE_WINDOW`` epochs. Before stability the level is the last epoch (the previous one when the
   last dropped beyond the change threshold), and from ``min_epochs + LATE_WINDOW`` epochs on the mean of
   the last ``LATE_WINDOW`` epochs (STEP-E). With ``val_every_n_epochs`` the two epoch kinds are
   modelled: regimes and level come from the training-only epochs, validation epochs are that level times
   the median ratio of recent validation epochs to their preceding training epochs, and the remaining
   epochs are split by the schedule. ``total = measured + unmeasured (skipped) + remaining x level``; with
   a time budget (``total_seconds``) the level is the regime's mean power and ``remaining = planned -
   elapsed seconds``.
7. **Interval.** Normal, at ``confidence``, on the remaining energy, with relative standard deviation
   ``sqrt(spread^2 / n + lr^2 / m + drift_rel_sigma^2 + trend^2)`` when stable (``m`` remaining epochs)
   and ``unstable_rel_sigma`` otherwise (``drift_rel_sigma`` is the chance that the level still moves,
   calibrated on the GAISSA traces). ``lr`` is the regime's long-run noise ``sigma sqrt(1 + rho) / (1 -
   rho)``, ``rho`` its robust, bias-corrected lag-1 autocorrelation (:func:`lag1_autocorrelation`), at
   least the block-means estimate (:func:`block_sigma`): autocorrelated noise (CPU runs: load, frequency
   scaling) makes both the level's error and the future epochs' summed noise larger than independent
   noise would. ``spread`` is the largest of ``lr`` and the standard deviation of the level's epochs. If the
   last epoch departs from the level by more than the change threshold (a possible new regime not yet
   confirmed), the interval is stretched to also cover the projection at that epoch's level. Before
   stability a PRE estimate, when given, is combined with the data by inverse-variance weighting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from lightning_energy.errors import ProjectionError

STATE_VERSION = 1
_WINSOR_SIGMAS = 3.0
SETTLE_SIGMAS = 2.0
HOMOGENEITY_SIGMAS = 8.0
LATE_WINDOW = 5
MIN_TREND_POINTS = 5  # Theil-Sen confidence intervals need a few points
TRANSIENT_SIGMAS = 6.0
LATE_MERGE_REL = 0.1  # steps smaller than this are merged into a young regime's window late in a run
MAX_RHO = 0.9  # cap of the estimated lag-1 autocorrelation (long-run variance at most 19 x sigma^2)
MIN_RHO_POINTS = 6  # epochs a regime needs before its autocorrelation is estimated


def _drop_transient(regime: np.ndarray, sigma: float) -> np.ndarray:
    """The level window ``regime`` without a one-off transient: a single block of at most 2 epochs beyond
    ``TRANSIENT_SIGMAS`` sigma of the median (a GPU stall, an idle gap). Recurring departures (periodic
    validation or checkpoint spikes) are part of the run and kept, so the mean counts them at their rate."""
    if regime.size < 5:
        return regime
    out = np.abs(regime - np.median(regime)) > TRANSIENT_SIGMAS * sigma
    if not out.any():
        return regime
    idx = np.flatnonzero(out)
    blocks = 1 + int(np.sum(np.diff(idx) > 1))
    if blocks > 1 or idx.size > 2:
        return regime  # recurring departures are part of the run: averaged in
    return regime[~out]


@dataclass(frozen=True)
class Projection:
    """One projection of the run's total energy, made after ``epochs_seen`` epochs.

    ``total_j`` is the best estimate and ``[low_j, high_j]`` an interval meant to contain the final total
    with probability ``confidence``. ``epoch_energy_j`` is the per-epoch level used (training-only epochs
    when a validation schedule is known), ``power_w`` the mean power of the current regime, ``method`` one
    of ``"level"`` (stable), ``"unstable"``, ``"prior"`` (PRE prior combined with the data) and
    ``"power"`` / ``"power-unstable"`` (time budget).
    """

    total_j: float
    low_j: float
    high_j: float
    stable: bool
    stable_since: int | None
    epoch_energy_j: float
    epochs_seen: int
    measured_j: float
    power_w: float
    regime_start: int
    remaining_epochs: int | None
    remaining_s: float | None
    method: str
    confidence: float
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able dict."""
        return asdict(self)


@dataclass(frozen=True)
class _Level:
    start_epoch: int  # epoch index where the current regime begins
    level: float  # per-epoch energy (J) or power (W) of the main epoch kind
    noise_rel: float  # epoch-to-epoch noise relative to the level
    long_run_rel: float  # long-run noise (autocorrelation and level wander included) relative to the level
    spread_rel: float  # standard deviation of the epochs used for the level, relative to it (spikes count)
    n: int  # epochs of the regime used for the level
    regime_n: int  # settled epochs of the regime (its first epoch dropped after a change)
    trend_rel: float  # significant Theil-Sen slope per epoch relative to the level, else 0
    last_rel: float  # (last main epoch - level) / level
    change_z: float  # threshold of the change test at this length
    pending: bool  # the last epoch departs from the level beyond the change threshold (unconfirmed change)
    recent: float  # level before stability: last ``unstable_window`` epochs (guarded), or the last 5 late


def robust_sigma(values: np.ndarray) -> float:
    """Robust epoch-to-epoch noise: 1.4826 x median |first difference| / sqrt(2)."""
    if values.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(values))) / math.sqrt(2.0))


def block_sigma(values: np.ndarray, block: int = 3) -> float:
    """Long-run noise from block means: ``sqrt(block) x 1.4826 x median |m_t - m_(t-block)| / sqrt 2`` over
    the moving means ``m`` of ``block`` epochs (the same sigma as :func:`robust_sigma` for independent
    noise, larger when blocks of epochs sit together above or below the level). 0 below ``2 x block``."""
    if values.size < 2 * block:
        return 0.0
    means = np.convolve(values, np.ones(block) / block, mode="valid")
    return float(
        math.sqrt(block) * 1.4826 * np.median(np.abs(means[block:] - means[:-block])) / math.sqrt(2.0)
    )


def lag1_autocorrelation(values: np.ndarray, max_rho: float = MAX_RHO) -> float:
    """Robust lag-1 autocorrelation of a regime's epochs from the von Neumann ratio, clipped to [0, max_rho].

    With AR(1) noise the first differences have variance ``2 sigma^2 (1 - rho)`` while the epochs vary by
    ``sigma^2`` about their level, so ``rho = 1 - (difference scale / marginal scale)^2``; both scales are
    robust (MAD) so a spike moves neither much. Negative values are clipped to 0 (no narrowing below
    independent noise); fewer than ``MIN_RHO_POINTS`` epochs give 0.
    """
    if values.size < MIN_RHO_POINTS:
        return 0.0
    marginal = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    if marginal <= 0:
        return 0.0
    rho = 1.0 - (robust_sigma(values) / marginal) ** 2
    rho += (1.0 + 3.0 * rho) / values.size  # Kendall's small-sample bias of a lag-1 autocorrelation
    return float(min(max(rho, 0.0), max_rho))


def change_threshold(n_splits: int, alpha: float) -> float:
    """Bonferroni-corrected two-sided normal quantile for ``n_splits`` candidate change points."""
    return float(stats.norm.isf(alpha / (2.0 * max(n_splits, 1))))


def regime_start(values: np.ndarray, sigma: float, alpha: float, confirm: int) -> int:
    """Index in ``values`` where the last regime begins (binary segmentation of the tail, see module doc)."""
    start = 0
    while values.size - start > confirm:
        seg = values[start:]
        n = seg.size
        med = float(np.median(seg))
        clipped = np.clip(seg, med - _WINSOR_SIGMAS * sigma, med + _WINSOR_SIGMAS * sigma)
        splits = np.arange(1, n - confirm + 1)
        csum = np.cumsum(clipped)
        left = csum[splits - 1] / splits
        right = (csum[-1] - csum[splits - 1]) / (n - splits)
        z = np.abs(left - right) / (sigma * np.sqrt(1.0 / splits + 1.0 / (n - splits)))
        best = int(np.argmax(z))
        if z[best] <= change_threshold(splits.size, alpha):
            break
        # A new level must be a level: its epochs (bar the first, often mixed) must agree with each other.
        # A transient (an idle gap, a checkpoint stall over one or two epochs) is not a regime change.
        right = seg[int(splits[best]) :]
        tail = right[1:] if right.size > confirm else right
        if np.max(np.abs(tail - np.median(tail))) > HOMOGENEITY_SIGMAS * sigma:
            break
        start += int(splits[best])
    return start


def _check_number(name: str, value: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ProjectionError(f"{name} must be a finite number >= 0, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result < 0 or (positive and result == 0):
        allowed = "> 0" if positive else ">= 0"
        raise ProjectionError(f"{name} must be a finite number {allowed}, got {value!r}")
    return result


def _check_param(name: str, value: float, low: float, high: float, *, integer: bool = False) -> None:
    kind = "an int" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not (low <= value <= high) or value != value:
        raise ValueError(f"{name} must be {kind} in [{low}, {high}], got {value!r}")


class StepProjector:
    """Online projector of a training run's total energy (STEP). See the module docstring for the method.

    Args:
        confidence: coverage probability of ``[low_j, high_j]``, in (0, 1).
        warmup_epochs: first epochs never used for the level (counted and measured all the same).
        min_epochs: no stability before this many epochs were seen.
        min_fraction: nor before this fraction of the planned epochs (or seconds) was seen.
        min_stable_epochs: epochs the current regime needs before it can be declared stable.
        confirm_epochs: epochs a new level needs before it is accepted as a regime change.
        window: the level is the mean of at most this many last epochs of the regime.
        change_alpha: false-alarm probability of one change-point test (Bonferroni-corrected).
        trend_confidence: confidence of the Theil-Sen trend interval.
        trend_tolerance: relative change of the remaining energy a significant trend must make to matter.
        noise_floor: floor of the relative epoch-to-epoch noise.
        drift_rel_sigma: relative standard deviation of the future level around a stable level.
        unstable_rel_sigma: relative standard deviation of the level before stability.
        level_tolerance: stability needs the level's relative standard error (noise / sqrt n) below this.
        unstable_window: before stability the level is the mean of this many last epochs
            (the epochs before them when the last dropped beyond the change threshold: a possible stall).
        val_every_n_epochs: Lightning's ``check_val_every_n_epoch``; epoch ``e`` (0-based) validates iff
            ``(e + 1) % n == 0``. ``None``: no schedule known (periodic spikes are then averaged in).
        prior_epoch_energy_j, prior_rel_sigma: a PRE estimate of the mean epoch energy and its relative
            standard deviation, used before stability (both or neither).
    """

    def __init__(
        self,
        *,
        confidence: float = 0.9,
        warmup_epochs: int = 1,
        min_epochs: int = 10,
        min_fraction: float = 0.0,
        min_stable_epochs: int = 3,
        confirm_epochs: int = 2,
        window: int = 20,
        change_alpha: float = 0.05,
        trend_confidence: float = 0.95,
        trend_tolerance: float = 0.005,
        noise_floor: float = 0.002,
        drift_rel_sigma: float = 0.01,
        unstable_rel_sigma: float = 0.2,
        unstable_window: int = 1,
        level_tolerance: float = 0.01,
        val_every_n_epochs: int | None = None,
        prior_epoch_energy_j: float | None = None,
        prior_rel_sigma: float | None = None,
    ) -> None:
        _check_param("confidence", confidence, 1e-6, 1 - 1e-6)
        _check_param("warmup_epochs", warmup_epochs, 0, 1000, integer=True)
        _check_param("min_epochs", min_epochs, 1, 100000, integer=True)
        _check_param("min_fraction", min_fraction, 0.0, 1.0)
        _check_param("min_stable_epochs", min_stable_epochs, 2, 1000, integer=True)
        _check_param("confirm_epochs", confirm_epochs, 1, 1000, integer=True)
        _check_param("window", window, 2, 100000, integer=True)
        _check_param("level_tolerance", level_tolerance, 0.0, 10.0)
        _check_param("unstable_window", unstable_window, 1, 100000, integer=True)
        _check_param("change_alpha", change_alpha, 1e-12, 0.5)
        _check_param("trend_confidence", trend_confidence, 0.5, 1 - 1e-9)
        _check_param("trend_tolerance", trend_tolerance, 0.0, 1.0)
        _check_param("noise_floor", noise_floor, 0.0, 1.0)
        _check_param("drift_rel_sigma", drift_rel_sigma, 0.0, 10.0)
        _check_param("unstable_rel_sigma", unstable_rel_sigma, 0.0, 10.0)
        if val_every_n_epochs is not None:
            _check_param("val_every_n_epochs", val_every_n_epochs, 1, 10**9, integer=True)
        if (prior_epoch_energy_j is None) != (prior_rel_sigma is None):
            raise ValueError(
                "prior_epoch_energy_j and prior_rel_sigma must be given together, got "
                f"prior_epoch_energy_j={prior_epoch_energy_j!r}, prior_rel_sigma={prior_rel_sigma!r}"
            )
        self.confidence = float(confidence)
        self.warmup_epochs = warmup_epochs
        self.min_epochs = min_epochs
        self.min_fraction = float(min_fraction)
        self.min_stable_epochs = min_stable_epochs
        self.confirm_epochs = confirm_epochs
        self.window = window
        self.unstable_window = unstable_window
        self.level_tolerance = float(level_tolerance)
        self.change_alpha = float(change_alpha)
        self.trend_confidence = float(trend_confidence)
        self.trend_tolerance = float(trend_tolerance)
        self.noise_floor = float(noise_floor)
        self.drift_rel_sigma = float(drift_rel_sigma)
        self.unstable_rel_sigma = float(unstable_rel_sigma)
        self.val_every_n_epochs = val_every_n_epochs
        self._energy_j: list[float] = []  # NaN for a skipped epoch
        self._duration_s: list[float] = []
        self._was_stable = False  # hysteresis: once stable, an isolated outlier does not end stability
        self._prior_j: float | None = None
        self._prior_rel_sigma: float | None = None
        if prior_epoch_energy_j is not None and prior_rel_sigma is not None:
            self.set_prior(prior_epoch_energy_j, prior_rel_sigma)

    # ----------------------------------------------------------------------------------------- inputs

    def set_prior(self, epoch_energy_j: float, rel_sigma: float) -> None:
        """Use a PRE estimate of the mean epoch energy (J), relative std ``rel_sigma``, before stability."""
        self._prior_j = _check_number("epoch_energy_j", epoch_energy_j, positive=True)
        self._prior_rel_sigma = _check_number("rel_sigma", rel_sigma, positive=True)

    @property
    def epochs_seen(self) -> int:
        return len(self._energy_j)

    def update(
        self,
        energy_j: float,
        duration_s: float,
        total_epochs: float | None = None,
        *,
        total_seconds: float | None = None,
        work: float = 1.0,
    ) -> Projection:
        """Add one measured epoch and project. Give exactly one of ``total_epochs`` / ``total_seconds``."""
        energy = _check_number("energy_j", energy_j)
        duration = _check_number("duration_s", duration_s)
        self._check_budget(total_epochs, total_seconds, self.epochs_seen + 1)
        self._energy_j.append(energy)
        self._duration_s.append(duration)
        return self._project(total_epochs, total_seconds)

    def skip(
        self,
        duration_s: float,
        total_epochs: float | None = None,
        *,
        total_seconds: float | None = None,
        work: float = 1.0,
    ) -> Projection:
        """Count an epoch whose energy could not be measured; its energy is taken at the current level."""
        duration = _check_number("duration_s", duration_s)
        self._check_budget(total_epochs, total_seconds, self.epochs_seen + 1)
        self._energy_j.append(math.nan)
        self._duration_s.append(duration)
        return self._project(total_epochs, total_seconds)

    def project(self, total_epochs: int | None = None, *, total_seconds: float | None = None) -> Projection:
        """Projection from the epochs seen so far, without adding one (at least one epoch must be seen)."""
        if self.epochs_seen == 0:
            raise ProjectionError("project() needs at least one epoch; call update() first")
        self._check_budget(total_epochs, total_seconds, self.epochs_seen)
        return self._project(total_epochs, total_seconds)

    def _check_budget(self, total_epochs: int | None, total_seconds: float | None, seen: int) -> None:
        if (total_epochs is None) == (total_seconds is None):
            raise ProjectionError(
                "give exactly one of total_epochs (epoch budget) or total_seconds (time budget), got "
                f"total_epochs={total_epochs!r}, total_seconds={total_seconds!r}"
            )
        if total_epochs is not None:
            if isinstance(total_epochs, bool) or not isinstance(total_epochs, (int, float, np.integer)):
                raise ProjectionError(f"total_epochs must be a number, got {total_epochs!r}")
            if total_epochs < seen:
                raise ProjectionError(
                    f"total_epochs must be >= the epochs seen including this one ({seen}), got {total_epochs}"
                )
        if total_seconds is not None:
            _check_number("total_seconds", total_seconds, positive=True)

    # ----------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, object]:
        """Plain JSON-able state (NaN marks a skipped epoch and is stored as ``None``)."""
        return {
            "version": STATE_VERSION,
            "energy_j": [None if math.isnan(e) else e for e in self._energy_j],
            "duration_s": list(self._duration_s),
            "prior_epoch_energy_j": self._prior_j,
            "prior_rel_sigma": self._prior_rel_sigma,
            "val_every_n_epochs": self.val_every_n_epochs,
            "was_stable": self._was_stable,
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore :meth:`state_dict` output; missing keys take defaults."""
        energy = state.get("energy_j", [])
        duration = state.get("duration_s", [])
        if not isinstance(energy, Sequence) or not isinstance(duration, Sequence):
            raise ProjectionError(
                f"state energy_j and duration_s must be lists, got {type(energy).__name__}, "
                f"{type(duration).__name__}"
            )
        if len(energy) != len(duration):
            raise ProjectionError(
                "state energy_j and duration_s must have the same length, got "
                f"{len(energy)} and {len(duration)}"
            )
        self._energy_j = [math.nan if e is None else _check_number("energy_j", e) for e in energy]
        self._duration_s = [_check_number("duration_s", d) for d in duration]
        prior = state.get("prior_epoch_energy_j")
        rel = state.get("prior_rel_sigma")
        self._prior_j = None
        self._prior_rel_sigma = None
        if isinstance(prior, (int, float)) and isinstance(rel, (int, float)):
            self.set_prior(prior, rel)
        self._was_stable = bool(state.get("was_stable", False))
        val_every = state.get("val_every_n_epochs", self.val_every_n_epochs)
        if val_every is None or isinstance(val_every, int):
            self.val_every_n_epochs = val_every

    # ----------------------------------------------------------------------------------------- analysis

    def _is_val(self, epoch: int) -> bool:
        n = self.val_every_n_epochs
        return n is not None and n > 1 and (epoch + 1) % n == 0

    def _analyse(self, values: np.ndarray, epochs: np.ndarray) -> _Level:
        """Regime, level, noise and trend of a series of main-kind values (J per epoch or W)."""
        if values.size > self.warmup_epochs and epochs[0] < self.warmup_epochs:
            keep = epochs >= self.warmup_epochs
            if keep.any():
                values, epochs = values[keep], epochs[keep]
        scale = float(np.median(np.abs(values))) or 1.0
        sigma = max(robust_sigma(values[-50:]), self.noise_floor * scale)
        start = regime_start(values, sigma, self.change_alpha, self.confirm_epochs)
        regime = values[start:]
        # Settling: the first epochs of a regime (the epoch that mixes two levels, then a thermal or
        # post-unfreeze ramp) are dropped while they depart from the median of the rest, at most
        # ``confirm_epochs`` of them (a longer departure is a trend, which the Theil-Sen test handles).
        dropped = 0
        while (
            dropped < self.confirm_epochs
            and regime.size > self.min_stable_epochs
            and (abs(regime[0] - float(np.median(regime[1:]))) > SETTLE_SIGMAS * sigma)
        ):
            regime = regime[1:]
            start += 1
            dropped += 1
        used = _drop_transient(regime[-self.window :], sigma)
        level = float(np.mean(used))
        # Once min_epochs + LATE_WINDOW epochs were seen, a young regime whose step from the epochs before is
        # small (a periodic spike pattern cut by the change test, not a new level) is read from the last
        # LATE_WINDOW epochs, as STEP-E does.
        late = int(epochs[-1]) + 1 >= self.min_epochs + LATE_WINDOW
        if late and used.size < LATE_WINDOW:
            wide = values[-LATE_WINDOW:]
            if np.max(np.abs(wide - level)) <= LATE_MERGE_REL * level:
                used = wide
        level = float(np.mean(used))
        if regime.size >= MIN_TREND_POINTS + 1:  # the regime's own noise once it has enough epochs
            sigma = max(robust_sigma(regime[-50:]), self.noise_floor * scale)
        trend_rel = 0.0
        if regime.size >= MIN_TREND_POINTS:
            slope, intercept, low, high = stats.theilslopes(
                regime[-self.window :], alpha=self.trend_confidence
            )
            if low > 0 or high < 0:
                trend_rel = float(slope) / level if level > 0 else 0.0
                line_end = float(intercept + slope * (min(regime.size, self.window) - 1))
                if abs(trend_rel) * used.size > self.trend_tolerance:
                    level = max(line_end, 0.0)
        rho = lag1_autocorrelation(regime[-self.window :])
        # sigma (from differences) is sigma_marginal sqrt(1 - rho); the long-run sd is
        # sigma_marginal sqrt((1 + rho) / (1 - rho)) = sigma sqrt(1 + rho) / (1 - rho).
        long_run = max(sigma * math.sqrt(1.0 + rho) / (1.0 - rho), block_sigma(regime[-self.window :]))
        n_splits = max(regime.size - self.confirm_epochs, 1)
        z_crit = change_threshold(n_splits, self.change_alpha)
        pending = abs(float(values[-1]) - float(np.median(used))) > z_crit * sigma
        if late:
            # Late in a run an unsettled series is best read by the plain mean of its last epochs (STEP-E).
            recent = float(np.mean(values[-LATE_WINDOW:]))
        else:
            # Before stability the latest epochs (warm-up ramps, an unfreeze: the level rises) weigh most;
            # a drop of the last epoch beyond the change threshold is not trusted until confirmed.
            w = self.unstable_window
            recent = float(np.mean(values[-w:]))
            if values.size > w and values[-1] < values[-2] - z_crit * sigma:
                recent = float(np.mean(values[-w - 1 : -1]))
        return _Level(
            start_epoch=int(epochs[start]),
            level=level,
            noise_rel=sigma / level if level > 0 else 0.0,
            long_run_rel=max(sigma, long_run) / level if level > 0 else 0.0,
            spread_rel=float(np.std(used)) / level if level > 0 else 0.0,
            n=int(used.size),
            regime_n=int(regime.size),
            trend_rel=trend_rel,
            last_rel=(float(values[-1]) - level) / level if level > 0 else 0.0,
            change_z=z_crit,
            pending=pending,
            recent=recent,
        )

    def _val_ratio(self, energy: np.ndarray) -> float | None:
        """Median ratio of the last (up to 3) validation epochs to the mean of the 3 train epochs before."""
        ratios: list[float] = []
        for epoch in range(energy.size - 1, -1, -1):
            if not self._is_val(epoch) or math.isnan(energy[epoch]):
                continue
            before = [
                energy[e]
                for e in range(epoch - 1, -1, -1)
                if not self._is_val(e) and not math.isnan(energy[e]) and e >= self.warmup_epochs
            ][:3]
            if before and np.mean(before) > 0:
                ratios.append(float(energy[epoch] / np.mean(before)))
            if len(ratios) == 3:
                break
        return float(np.median(ratios)) if ratios else None

    def _project(self, total_epochs: int | None, total_seconds: float | None) -> Projection:
        energy = np.asarray(self._energy_j, dtype=np.float64)
        duration = np.asarray(self._duration_s, dtype=np.float64)
        seen = energy.size
        epochs = np.arange(seen)
        measured = ~np.isnan(energy)
        measured_j = float(energy[measured].sum())
        elapsed_s = float(duration.sum())
        power_mode = total_seconds is not None
        if power_mode:  # level in W from every measured epoch with a duration (validation spikes averaged in)
            usable = measured & (duration > 0)
            values = energy[usable] / np.where(usable, duration, 1.0)[usable]
            used_epochs = epochs[usable]
        else:  # level in J per epoch from the training-only epochs when the schedule is known
            is_val = np.array([self._is_val(int(e)) for e in epochs], dtype=bool)
            usable = measured & ~is_val if (measured & ~is_val).any() else measured
            values, used_epochs = energy[usable], epochs[usable]
        if values.size == 0:  # nothing measured yet (only skipped epochs)
            return self._unmeasured(seen, total_epochs, total_seconds, elapsed_s)
        info = self._analyse(values, used_epochs)
        if total_epochs is not None:
            fraction_seen = seen / total_epochs
        else:
            fraction_seen = elapsed_s / float(total_seconds) if total_seconds else 1.0
        mean_epoch_s = float(np.mean(duration)) if seen else 0.0
        if power_mode:
            assert total_seconds is not None
            left_s = max(float(total_seconds) - elapsed_s, 0.0)
            remaining_s: float | None = left_s
            remaining_epochs: int | None = None
            remaining_units = left_s / mean_epoch_s if mean_epoch_s > 0 else 0.0
        else:
            assert total_epochs is not None
            remaining_s, remaining_epochs = None, total_epochs - seen
            remaining_units = float(remaining_epochs)
        trend_term = info.trend_rel * remaining_units / 2.0
        stable = (
            info.regime_n >= self.min_stable_epochs
            and info.noise_rel / math.sqrt(info.n) <= self.level_tolerance
            and seen >= self.min_epochs
            and fraction_seen >= self.min_fraction - 1e-12
            and abs(trend_term) <= self.trend_tolerance
            and (self._was_stable or not info.pending)
        )
        self._was_stable = stable
        level = info.level if stable else info.recent

        val_unknown_frac = 0.0
        if power_mode:
            assert remaining_s is not None
            power_w = level
            remaining_j = level * remaining_s
            skipped_j = level * float(duration[~measured].sum())
            epoch_energy_j = level * mean_epoch_s
        else:
            assert remaining_epochs is not None and total_epochs is not None
            ratio_or_none = self._val_ratio(energy)
            ratio = 1.0 if ratio_or_none is None else ratio_or_none
            kinds = np.array([self._is_val(e) for e in range(total_epochs)], dtype=bool)
            future_val = kinds[seen:]
            remaining_j = level * float(np.sum(np.where(future_val, ratio, 1.0)))
            skipped_j = level * float(np.sum(np.where(kinds[:seen][~measured], ratio, 1.0)))
            epoch_energy_j = level
            train_s = duration[usable]
            power_w = level / float(np.mean(train_s)) if train_s.size and np.mean(train_s) > 0 else 0.0
            if ratio_or_none is None and remaining_epochs > 0:
                val_unknown_frac = float(future_val.sum()) / remaining_epochs

        if stable:
            spread = max(info.long_run_rel, info.spread_rel)
            rel_var = spread**2 / max(info.n, 1) + self.drift_rel_sigma**2 + trend_term**2
            if remaining_units > 0:  # the future epochs' own noise, summed over the remaining epochs
                rel_var += info.long_run_rel**2 / remaining_units
        else:
            rel_var = self.unstable_rel_sigma**2 + trend_term**2
        rel_var += (val_unknown_frac * self.unstable_rel_sigma) ** 2
        sd_j = math.sqrt(rel_var) * remaining_j
        method = (
            ("power" if stable else "power-unstable") if power_mode else ("level" if stable else "unstable")
        )
        if not stable and self._prior_j is not None and self._prior_rel_sigma is not None:
            prior_remaining_j = self._prior_j * remaining_units
            prior_sd_j = self._prior_rel_sigma * prior_remaining_j
            if sd_j > 0 and prior_sd_j > 0:
                w_data, w_prior = 1.0 / sd_j**2, 1.0 / prior_sd_j**2
                remaining_j = (w_data * remaining_j + w_prior * prior_remaining_j) / (w_data + w_prior)
                sd_j = math.sqrt(1.0 / (w_data + w_prior))
                method = "prior"
        z = float(stats.norm.ppf(0.5 + self.confidence / 2.0))
        total_j = measured_j + skipped_j + remaining_j
        half = z * sd_j + z * self.unstable_rel_sigma * skipped_j
        low_j, high_j = total_j - half, total_j + half
        if info.pending and level > 0:  # a possible, not yet confirmed new regime: cover its projection too
            alt_j = total_j + (float(values[-1]) / level - 1.0) * (remaining_j + skipped_j)
            low_j, high_j = min(low_j, alt_j), max(high_j, alt_j)
        return Projection(
            total_j=total_j,
            low_j=max(low_j, measured_j),
            high_j=max(high_j, total_j),
            stable=stable,
            stable_since=info.start_epoch if stable else None,
            epoch_energy_j=epoch_energy_j,
            epochs_seen=seen,
            measured_j=measured_j,
            power_w=power_w,
            regime_start=info.start_epoch,
            remaining_epochs=remaining_epochs,
            remaining_s=remaining_s,
            method=method,
            confidence=self.confidence,
        )

    def _unmeasured(
        self, seen: int, total_epochs: int | None, total_seconds: float | None, elapsed_s: float
    ) -> Projection:
        """Nothing measured yet (only skipped epochs): the prior if any, else an unbounded interval."""
        if total_epochs is not None:
            units, remaining_epochs, remaining_s = float(total_epochs), total_epochs - seen, None
        else:
            assert total_seconds is not None
            remaining_s = max(float(total_seconds) - elapsed_s, 0.0)
            units = float(total_seconds) / max(elapsed_s / seen, 1e-9)
            remaining_epochs = None
        if self._prior_j is None or self._prior_rel_sigma is None:
            return Projection(
                total_j=math.nan, low_j=0.0, high_j=math.inf, stable=False, stable_since=None,
                epoch_energy_j=math.nan, epochs_seen=seen, measured_j=0.0, power_w=math.nan, regime_start=0,
                remaining_epochs=remaining_epochs, remaining_s=remaining_s, method="none",
                confidence=self.confidence,
            )  # fmt: skip
        z = float(stats.norm.ppf(0.5 + self.confidence / 2.0))
        total = self._prior_j * units
        half = z * self._prior_rel_sigma * total
        return Projection(
            total_j=total, low_j=max(total - half, 0.0), high_j=total + half, stable=False, stable_since=None,
            epoch_energy_j=self._prior_j, epochs_seen=seen, measured_j=0.0,
            power_w=self._prior_j / max(elapsed_s / seen, 1e-9), regime_start=0,
            remaining_epochs=remaining_epochs, remaining_s=remaining_s, method="prior",
            confidence=self.confidence,
        )  # fmt: skip


def project_series(
    energy_j: Sequence[float], total_epochs: int, projector: StepProjector | None = None
) -> list[Projection]:
    """Feed a whole series of epoch energies (1 s each) to a projector; one projection per epoch."""
    step = StepProjector() if projector is None else projector
    return [step.update(float(e), 1.0, total_epochs) for e in energy_j]
