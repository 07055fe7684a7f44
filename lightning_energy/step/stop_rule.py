"""Lightning's ``EarlyStopping`` rule as pure data and a pure step function (no torch, no Lightning).

:class:`StopRule` holds the rule's settings (``mode``, ``patience``, ``min_delta``, ``stopping_threshold``,
``divergence_threshold`` and an optional bound on the number of evaluations, ``max_evaluations``);
:func:`advance` applies one evaluation to a :class:`RuleState` exactly as ``EarlyStopping`` does, in its
order: a non-finite value stops; a value past ``stopping_threshold`` stops; a value past
``divergence_threshold`` stops; an improvement by more than ``min_delta`` over the best so far resets the
patience counter; otherwise the counter grows and reaching ``patience`` stops; reaching ``max_evaluations``
stops. :func:`simulate` runs the rule on many sampled futures at once (numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lightning_energy._validate import finite_number

MODES = ("min", "max")


@dataclass(frozen=True)
class StopRule:
    """The settings of an ``EarlyStopping`` callback (``None``: that criterion is off)."""

    mode: str = "min"
    stopping_threshold: float | None = None
    patience: int | None = None
    min_delta: float = 0.0
    divergence_threshold: float | None = None
    max_evaluations: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        for name in ("stopping_threshold", "divergence_threshold"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, finite_number(name, value))
        object.__setattr__(self, "min_delta", finite_number("min_delta", self.min_delta, minimum=0.0))
        for name, low in (("patience", 0), ("max_evaluations", 1)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if (
            self.stopping_threshold is not None
            and self.divergence_threshold is not None
            and self.sign * self.stopping_threshold >= self.sign * self.divergence_threshold
        ):
            raise ValueError(
                "divergence_threshold must lie on the worse side of stopping_threshold, got "
                f"stopping_threshold={self.stopping_threshold!r}, "
                f"divergence_threshold={self.divergence_threshold!r}"
            )

    @property
    def sign(self) -> float:
        """+1 for ``mode="min"``, -1 for ``"max"``: ``sign x value`` is lower-is-better."""
        return 1.0 if self.mode == "min" else -1.0

    @property
    def can_stop(self) -> bool:
        """Whether anything but a non-finite value can end the run."""
        return any(
            v is not None
            for v in (self.stopping_threshold, self.patience, self.divergence_threshold, self.max_evaluations)
        )


@dataclass(frozen=True)
class RuleState:
    """Where the rule stands after ``evaluations`` values: best (lower-is-better) so far and the wait."""

    evaluations: int = 0
    best: float = math.inf
    wait: int = 0
    stopped: bool = False
    why: str = ""


def advance(rule: StopRule, state: RuleState, value: float) -> RuleState:
    """The rule's state after one more evaluation ``value`` (``EarlyStopping`` semantics and order)."""
    if state.stopped:
        raise ValueError("the run has already stopped; no evaluation follows")
    n = state.evaluations + 1
    z = rule.sign * float(value)
    if not math.isfinite(z):
        return RuleState(n, state.best, state.wait, True, "the monitored value is not finite")
    if rule.stopping_threshold is not None and z < rule.sign * rule.stopping_threshold:
        return RuleState(
            n, min(state.best, z), 0, True, f"reached stopping_threshold {rule.stopping_threshold:g}"
        )
    if rule.divergence_threshold is not None and z > rule.sign * rule.divergence_threshold:
        return RuleState(
            n, state.best, state.wait, True, f"passed divergence_threshold {rule.divergence_threshold:g}"
        )
    if z + rule.min_delta < state.best:
        best, wait = z, 0
    else:
        best, wait = state.best, state.wait + 1
    if rule.patience is not None and wait >= rule.patience:
        return RuleState(n, best, wait, True, f"no improvement in {rule.patience} evaluations")
    if rule.max_evaluations is not None and n >= rule.max_evaluations:
        return RuleState(n, best, wait, True, f"reached the bound of {rule.max_evaluations} evaluations")
    return RuleState(n, best, wait, False, "")


def simulate(rule: StopRule, state: RuleState, futures: np.ndarray) -> np.ndarray:
    """Evaluation number at which each future stops (``inf`` if none of its steps stops it).

    ``futures`` holds lower-is-better values (``sign x value``) of evaluations ``state.evaluations + 1``
    onward, one row per future.
    """
    draws, steps = futures.shape
    stop_at = np.full(draws, math.inf)
    if steps == 0:
        return stop_at
    best = np.full(draws, state.best)
    wait = np.full(draws, state.wait, dtype=np.int64)
    alive = np.ones(draws, dtype=bool)
    thr = None if rule.stopping_threshold is None else rule.sign * rule.stopping_threshold
    div = None if rule.divergence_threshold is None else rule.sign * rule.divergence_threshold
    last = steps if rule.max_evaluations is None else min(steps, rule.max_evaluations - state.evaluations)
    if rule.patience is None:  # no sequential state: the first step that meets a criterion stops
        hit = ~np.isfinite(futures[:, :last])
        if thr is not None:
            hit |= futures[:, :last] < thr
        if div is not None:
            hit |= futures[:, :last] > div
        any_hit = hit.any(axis=1)
        stop_at[any_hit] = state.evaluations + 1 + np.argmax(hit[any_hit], axis=1)
    else:
        for j in range(last):
            z = futures[:, j]
            hit = alive & ~np.isfinite(z)
            if thr is not None:
                hit |= alive & (z < thr)
            if div is not None:
                hit |= alive & (z > div)
            improved = z + rule.min_delta < best
            best = np.where(improved, z, best)
            wait = np.where(improved, 0, wait + 1)
            hit |= alive & (wait >= rule.patience)
            stop_at[hit] = state.evaluations + 1 + j
            alive &= ~hit
            if not alive.any():
                break
    if rule.max_evaluations is not None and last == rule.max_evaluations - state.evaluations:
        stop_at = np.minimum(stop_at, float(rule.max_evaluations))
    return stop_at
