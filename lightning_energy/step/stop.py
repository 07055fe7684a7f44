"""Forecast when an ``EarlyStopping`` run will stop, from the monitored metric seen so far (pure numpy).

:class:`StopForecaster` is fed the monitored value once per evaluation. It fits a weighted set of learning
curve families (:mod:`lightning_energy.step.curves`; reweighed by a backtest on the run itself,
:mod:`lightning_energy.step.stop_fit`), draws futures of the curve with noise, runs the stopping rule
(:mod:`lightning_energy.step.stop_rule`) on each (:mod:`lightning_energy.step.stop_simulation`), and
returns a :class:`StopForecast`: the predicted number of evaluations of the whole run (counting those done)
with a 90 % interval. The interval is calibrated (:mod:`lightning_energy.step.stop_calibration`): the
remaining evaluations of every simulated stop are spread on the log scale by a normal error (the curve
model's own error), of standard deviation ``kappa_low`` downward and ``kappa_high`` upward, both fitted on
tuning curves (``tools/fit_stop.py``; ``stop_params.json``, :class:`StopParams`). Before that, a learned
correction (``correction``) can re-centre the simulated stops: a linear model of the log of the remaining
evaluations on features of the curve model's own forecast and on how well the curve families fit the run
(:func:`~lightning_energy.step.stop_calibration.correction_features`,
:func:`~lightning_energy.step.stop_noise.misfit_ratio`), fitted on tuning curves. The families' weights
can be tested on the run itself (``holdout_weight``, :func:`~lightning_energy.step.stop_fit.holdout_reweigh`:
each family refitted on the first two thirds of the evaluations and scored on the last third), the
futures' noise can remember (``noise_memory``, :func:`~lightning_energy.step.stop_noise.start_memory`: a
first-order autoregression) and can be the series' own evaluation-to-evaluation noise rather than the
fits' residuals (``series_noise``, :mod:`lightning_energy.step.stop_noise`). The curve is fitted and
simulated in the units of :func:`~lightning_energy.step.stop_scale.rescaled`. See ``docs/step.md``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lightning_energy._validate import finite_number
from lightning_energy.step.curves import CurveFit, best_fit, mean_curve
from lightning_energy.step.stop_calibration import predictive, summarise
from lightning_energy.step.stop_noise import misfit_ratio
from lightning_energy.step.stop_params import StopParams
from lightning_energy.step.stop_rule import RuleState, StopRule, advance
from lightning_energy.step.stop_scale import rescaled
from lightning_energy.step.stop_simulation import horizon, raw_stop_samples

__all__ = ["StopForecast", "StopForecaster", "StopParams", "forecast"]


@dataclass(frozen=True)
class StopForecast:
    """The forecast after ``seen`` evaluations.

    ``epochs`` is the predicted number of evaluations of the whole run (counting those done), ``None``
    while the forecaster cannot tell (too few evaluations, or most simulated futures do not stop within
    the simulated horizon); ``[low, high]`` a 90 % interval (``high`` is ``None`` when the interval's top
    lies beyond the horizon). ``stopped`` says the run ends at the last value (the rule fired there, or
    fired earlier and the run was held to the minimum, or the bound is reached). ``reason`` is one line.
    """

    seen: int
    epochs: int | None
    low: int | None
    high: int | None
    stopped: bool
    reason: str
    samples: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def p_stop_before(self, n: int) -> float:
        """Probability that the run stops before ``n`` evaluations (ends with fewer than ``n``)."""
        n = int(finite_number("n", n))
        if self.stopped:
            return 1.0 if self.seen < n else 0.0
        if n <= self.seen + 1 or not self.samples:
            return 0.0 if self.samples or n <= self.seen + 1 else math.nan
        return bisect.bisect_left(self.samples, n) / len(self.samples)


class StopForecaster:
    """Online forecast of the number of evaluations an ``EarlyStopping`` run will make.

    Args:
        mode: ``"min"`` or ``"max"``, as the ``EarlyStopping`` callback.
        stopping_threshold: stop as soon as the value is past it (better).
        patience: stop after this many evaluations without an improvement larger than ``min_delta``.
        min_delta: the smallest change that counts as an improvement (>= 0).
        divergence_threshold: stop as soon as the value is past it (worse).
        max_evaluations: a bound on the number of evaluations (``max_epochs`` mapped to evaluations).
        check_finite: a non-finite value stops the run (``EarlyStopping(check_finite=...)``); without it
            a non-finite value is compared as the callback compares it (a NaN is no improvement) and is
            left out of the curve fit.
        min_evaluations: a firing before this many evaluations does not end the run, which goes on to it
            (``min_epochs`` mapped to evaluations; :class:`~lightning_energy.step.stop_rule.StopRule`).
        params: constants (default: :meth:`StopParams.shipped`).
        seed: seed of the simulation, >= 0 (the forecasts are deterministic for a given seed).
    """

    def __init__(
        self,
        mode: str = "min",
        stopping_threshold: float | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
        divergence_threshold: float | None = None,
        *,
        max_evaluations: int | None = None,
        check_finite: bool = True,
        min_evaluations: int | None = None,
        params: StopParams | None = None,
        seed: int = 0,
    ) -> None:
        self.rule = StopRule(
            mode=mode,
            stopping_threshold=stopping_threshold,
            patience=patience,
            min_delta=min_delta,
            divergence_threshold=divergence_threshold,
            max_evaluations=max_evaluations,
            check_finite=check_finite,
            min_evaluations=min_evaluations,
        )
        if params is not None and not isinstance(params, StopParams):
            raise TypeError(f"params must be a StopParams or None, got {type(params).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed!r}")
        self.params = StopParams.shipped() if params is None else params
        self.seed = seed
        self._state = RuleState()
        self._z: list[float] = []
        self._went_on: int | None = None  # the last evaluation at which the run stopped and then went on

    @classmethod
    def from_rule(cls, rule: StopRule, *, params: StopParams | None = None, seed: int = 0) -> StopForecaster:
        """A forecaster for the settings of ``rule`` (every field of it, bounds included)."""
        return cls(
            rule.mode,
            rule.stopping_threshold,
            rule.patience,
            rule.min_delta,
            rule.divergence_threshold,
            max_evaluations=rule.max_evaluations,
            check_finite=rule.check_finite,
            min_evaluations=rule.min_evaluations,
            params=params,
            seed=seed,
        )

    @property
    def seen(self) -> int:
        """Evaluations seen so far."""
        return self._state.evaluations

    def update(self, value: float) -> StopForecast:
        """Add one evaluation of the monitored metric and forecast the stop.

        A value after a stop means the run went on (the Trainer's ``should_stop`` was reset outside
        ``EarlyStopping``): the rule carries on from its best and wait, as ``EarlyStopping`` does, and the
        forecast goes on (its ``reason`` says so).
        """
        self._add(value)
        return self._forecast()

    def replay(self, values: Iterable[float]) -> StopForecast | None:
        """Feed ``values`` (a resumed run's evaluations, oldest first) and forecast once, after the last.

        The same forecast as :meth:`update` on the last value; ``None`` when ``values`` is empty. A value
        after a stop means the run went on, as in :meth:`update`.
        """
        fed = 0
        for value in values:
            self._add(value)
            fed += 1
        return self._forecast() if fed else None

    def _add(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"value must be a number, got {value!r}")
        if self._state.stopped:
            self._went_on = self._state.evaluations
        self._state = advance(self.rule, self._state, float(value))
        if math.isfinite(float(value)):
            self._z.append(self.rule.sign * float(value))

    def _forecast(self) -> StopForecast:
        state, rule = self._state, self.rule
        went_on = (
            "" if self._went_on is None else f"the run went on after its stop at evaluation {self._went_on}; "
        )
        if state.stopped:
            n = state.evaluations
            return StopForecast(n, n, n, n, True, f"{went_on}stopped at evaluation {n}: {state.why}")
        if state.pending:  # should_stop is set: the run ends where the minimum holds it to
            m = rule.hold
            why = f"the rule fired at evaluation {state.fired_at} ({state.why}); the minimum holds the run"
            draws = (float(m),) * self.params.draws
            return StopForecast(
                state.evaluations, m, m, m, False, f"{went_on}stop at evaluation {m}: {why}", draws
            )
        if rule.hold <= state.evaluations + 1:
            out = forecast(rule, state, np.asarray(self._z), self.params, self.seed)
            return dataclasses.replace(out, reason=went_on + out.reason) if went_on else out
        # the rule's firing is forecast on its own; a firing before the minimum ends the run at the minimum
        free = dataclasses.replace(rule, min_evaluations=None)
        out = forecast(free, state, np.asarray(self._z), self.params, self.seed)
        if out.epochs is None:  # too few evaluations, or most simulated runs go on past the horizon
            return dataclasses.replace(out, reason=went_on + out.reason)
        samples = np.maximum(np.asarray(out.samples), float(rule.hold))
        mid, low, high = summarise(samples, state.evaluations)
        top = "beyond the horizon" if high is None else str(high)
        reason = (
            f"{went_on}stop predicted at evaluation {mid} [{low}, {top}], not before evaluation {rule.hold} "
            f"(the minimum); the rule alone: {out.reason}"
        )
        return StopForecast(
            state.evaluations, mid, low, high, False, reason, tuple(float(v) for v in samples)
        )


def forecast(rule: StopRule, state: RuleState, z: np.ndarray, params: StopParams, seed: int) -> StopForecast:
    """The forecast from the lower-is-better curve ``z`` and the rule's state (the run has not stopped);
    fitted and simulated in the units of :func:`~lightning_energy.step.stop_scale.rescaled`."""
    seen = state.evaluations
    if not rule.can_stop:
        return StopForecast(seen, None, None, None, False, "cannot tell: the rule has no stopping criterion")
    shown = rule
    rule, state, z = rescaled(rule, state, z)
    simulated = raw_stop_samples(rule, state, z, params, seed)
    if simulated is None:
        return StopForecast(
            seen,
            None,
            None,
            None,
            False,
            f"cannot tell: {params.min_evaluations} evaluations needed, {seen} seen",
        )
    raw, fits = simulated
    samples = predictive(raw, seen, rule, params, seed, misfit=misfit_ratio(fits, z))
    mid, low, high = summarise(samples, seen)
    limit = seen + horizon(rule, seen, params)
    if mid is None:
        reason = f"cannot tell: most simulated runs go on past {limit} evaluations"
    else:
        reason = (
            f"stop predicted at evaluation {mid} [{low}, {high if high is not None else '>' + str(limit)}]: "
        )
        reason += _why(rule, shown, fits, z)
    return StopForecast(seen, mid, low, high, False, reason, tuple(float(s) for s in samples))


def _why(rule: StopRule, shown: StopRule, fits: list[CurveFit], z: np.ndarray) -> str:
    """Why the stop is predicted there, in one clause (``rule`` and ``z`` in the fit's units, ``shown``:
    the rule in the metric's own units, for the text)."""
    family = best_fit(fits).family if fits else "flat"

    def end() -> float:  # the fitted curve far ahead
        return float(mean_curve(fits, np.array([float(z.size * 10)]), z.size)[0]) if fits else math.nan

    if rule.stopping_threshold is not None:
        side = "reaches" if end() < rule.sign * rule.stopping_threshold else "falls short of"
        return f"the fitted curve ({family}) {side} the threshold {shown.stopping_threshold:g}"
    if rule.patience is not None:
        return f"the fitted curve ({family}) flattens; patience {rule.patience}"
    if rule.divergence_threshold is not None:
        side = "worsens past" if end() > rule.sign * rule.divergence_threshold else "stays within"
        return f"the fitted curve ({family}) {side} the divergence threshold {shown.divergence_threshold:g}"
    return f"the fitted curve ({family}) runs to the bound of {rule.max_evaluations} evaluations"
