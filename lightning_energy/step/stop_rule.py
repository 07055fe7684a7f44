"""Lightning's ``EarlyStopping`` rule and the Trainer's stop as pure data and a pure step function (no
torch, no Lightning).

:class:`StopRule` holds the rule's settings (``mode``, ``patience``, ``min_delta``, ``stopping_threshold``,
``divergence_threshold``, ``check_finite``) and the Trainer's bounds in evaluations (``max_evaluations``
from ``max_epochs``, ``min_evaluations`` from ``min_epochs``); :func:`advance` applies one evaluation to a
:class:`RuleState` exactly as ``EarlyStopping._evaluate_stopping_criteria`` does, in its order: a
non-finite value fires (with ``check_finite``; without it, it is compared as IEEE floats are: a NaN is no
improvement and counts toward the patience); a value past ``stopping_threshold`` fires; a value past
``divergence_threshold`` fires (these three leave the best and the wait as they are); an improvement by
more than ``min_delta`` over the best so far resets the patience counter; otherwise the counter grows and
reaching ``patience`` fires (only an evaluation without improvement fires: ``patience=0`` acts as 1, as
in ``EarlyStopping``). A firing sets the Trainer's ``should_stop``, which stays set: the run ends
at the first evaluation from ``min_evaluations`` on (at once without it). Reaching ``max_evaluations``
ends the run. A value after the run ended means it went on (``should_stop`` was reset outside
``EarlyStopping``): the rule carries on from its best and wait as ``EarlyStopping`` does.
:func:`simulate` runs the rule on many sampled futures at once (numpy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lightning_energy._validate import finite_number

MODES = ("min", "max")


@dataclass(frozen=True)
class StopRule:
    """The settings of an ``EarlyStopping`` callback (``None``: that criterion is off) and the Trainer's
    bounds in evaluations.

    ``check_finite``: a non-finite value fires (``EarlyStopping(check_finite=...)``). ``max_evaluations``:
    the run ends there (``max_epochs``). ``min_evaluations``: a firing before it does not end the run, which
    goes on to it (``min_epochs``: Lightning's ``trainer.should_stop`` stays set and the fit loop ends at the
    first epoch boundary where ``_can_stop_early`` holds).
    """

    mode: str = "min"
    stopping_threshold: float | None = None
    patience: int | None = None
    min_delta: float = 0.0
    divergence_threshold: float | None = None
    max_evaluations: int | None = None
    check_finite: bool = True
    min_evaluations: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        for name in ("stopping_threshold", "divergence_threshold"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, finite_number(name, value))
        object.__setattr__(self, "min_delta", finite_number("min_delta", self.min_delta, minimum=0.0))
        if not isinstance(self.check_finite, bool):
            raise TypeError(f"check_finite must be a bool, got {self.check_finite!r}")
        for name, low in (("patience", 0), ("max_evaluations", 1), ("min_evaluations", 1)):
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

    @property
    def hold(self) -> int:
        """The first evaluation at which a firing can end the run (1: at once), within ``max_evaluations``."""
        low = self.min_evaluations or 1
        return low if self.max_evaluations is None else min(low, self.max_evaluations)


@dataclass(frozen=True)
class RuleState:
    """Where the rule stands after ``evaluations`` values: best (lower-is-better) so far and the wait.

    ``stopped``: the run ends at this evaluation; ``why`` says why (the last firing). ``fired_at``: the
    evaluation at which the rule fired, the Trainer's ``should_stop`` set since (0: not set); with
    ``min_evaluations`` it can be set while the run goes on (:attr:`pending`).
    """

    evaluations: int = 0
    best: float = math.inf
    wait: int = 0
    stopped: bool = False
    why: str = ""
    fired_at: int = 0

    @property
    def pending(self) -> bool:
        """The rule has fired but the run goes on to ``min_evaluations`` (its stop is known)."""
        return self.fired_at > 0 and not self.stopped


def criteria(rule: StopRule, best: float, wait: int, z: float) -> tuple[float, int, str]:
    """``EarlyStopping._evaluate_stopping_criteria`` on the lower-is-better value ``z``: the new best, the
    new wait and why the rule fires (empty: it does not)."""
    if rule.check_finite and not math.isfinite(z):
        return best, wait, "the monitored value is not finite"
    # without check_finite, a NaN compares False everywhere (no improvement), an infinity as IEEE floats do
    if rule.stopping_threshold is not None and z < rule.sign * rule.stopping_threshold:
        return best, wait, f"reached stopping_threshold {rule.stopping_threshold:g}"
    if rule.divergence_threshold is not None and z > rule.sign * rule.divergence_threshold:
        return best, wait, f"passed divergence_threshold {rule.divergence_threshold:g}"
    if z + rule.min_delta < best:
        return z, 0, ""
    wait += 1
    if rule.patience is not None and wait >= rule.patience:  # patience=0: wait is at least 1 here
        return best, wait, f"no improvement in {_evaluations(max(rule.patience, 1))}"
    return best, wait, ""


def _evaluations(n: int) -> str:
    return f"{n} evaluation" if n == 1 else f"{n} evaluations"


def advance(rule: StopRule, state: RuleState, value: float) -> RuleState:
    """The rule's state after one more evaluation ``value`` (``EarlyStopping`` semantics and order).

    After a state that ``stopped``, the run went on (``should_stop`` was reset): the rule carries on from
    its best and wait, and fires again as soon as its condition holds.
    """
    n = state.evaluations + 1
    best, wait, why = criteria(rule, state.best, state.wait, rule.sign * float(value))
    fired_at = 0 if state.stopped else state.fired_at
    if why and not fired_at:
        fired_at = n
    if fired_at and n >= rule.hold:
        if fired_at < n:  # min_evaluations held the run to this evaluation
            why = f"{why or state.why} (first fired at evaluation {fired_at}, held to evaluation {n})"
        return RuleState(n, best, wait, True, why, fired_at)
    if rule.max_evaluations is not None and n >= rule.max_evaluations:
        return RuleState(n, best, wait, True, f"reached the bound of {rule.max_evaluations} evaluations")
    return RuleState(n, best, wait, False, (why or state.why) if fired_at else "", fired_at)


def final_state(rule: StopRule, values: Iterable[float]) -> RuleState:
    """The rule's state after ``values`` (oldest first), up to the evaluation at which the run stops."""
    state = RuleState()
    for value in values:
        state = advance(rule, state, value)
        if state.stopped:
            break
    return state


@dataclass
class Paths:
    """Per-future rule state of a simulation run in chunks: best so far, wait, stop (``inf``: running)."""

    best: np.ndarray
    wait: np.ndarray
    stop_at: np.ndarray
    evaluations: int  # evaluations simulated so far (the same for every future)

    @classmethod
    def start(cls, state: RuleState, draws: int) -> Paths:
        return cls(
            np.full(draws, state.best), np.full(draws, state.wait, dtype=np.int64), np.full(draws, math.inf),
            state.evaluations,
        )  # fmt: skip

    @property
    def running(self) -> np.ndarray:
        return ~np.isfinite(self.stop_at)


def simulate_chunk(rule: StopRule, paths: Paths, block: np.ndarray) -> None:
    """Run the rule over the next ``block.shape[1]`` evaluations of every future (in place).

    ``block`` holds lower-is-better values (``sign x value``), one row per future; futures that stopped
    already are left as they are (their rows are not looked at: the rule runs on the running futures only).
    A future whose rule fires before ``min_evaluations`` stops there (:attr:`StopRule.hold`; the run's stop
    is then known). A ``max_evaluations`` bound stops the futures still running there.
    """
    steps = block.shape[1]
    if rule.max_evaluations is not None:
        steps = min(steps, rule.max_evaluations - paths.evaluations)
    if steps <= 0:
        return
    running = np.flatnonzero(paths.running)  # a future that stopped is left as it is
    block = block[running, :steps]
    first = paths.evaluations + 1
    thr = None if rule.stopping_threshold is None else rule.sign * rule.stopping_threshold
    div = None if rule.divergence_threshold is None else rule.sign * rule.divergence_threshold
    if rule.check_finite:
        hit = ~np.isfinite(block)
        safe = np.where(np.isfinite(block), block, np.inf)
    else:  # a NaN is no improvement; an infinity compares as it is
        hit = np.zeros(block.shape, dtype=bool)
        safe = np.where(np.isnan(block), np.inf, block)
    if thr is not None:
        hit |= block < thr
    if div is not None:
        hit |= block > div
    start_best, start_wait = paths.best[running], paths.wait[running]
    if rule.min_delta == 0.0:  # the best so far is a running minimum; the wait counts from its last drop
        before = np.minimum.accumulate(np.concatenate([start_best[:, None], safe[:, :-1]], axis=1), axis=1)
        index = np.arange(steps)
        last = np.maximum.accumulate(np.where(safe < before, index, -1 - start_wait[:, None]), axis=1)
        wait = index - last
        best = np.minimum(before[:, -1], safe[:, -1])
        end_wait = wait[:, -1]
    else:  # sequential: the best moves only on improvements larger than min_delta
        best = start_best.copy()
        w = start_wait.copy()
        wait = np.empty(block.shape, dtype=np.int64)
        for j in range(steps):
            improved = safe[:, j] + rule.min_delta < best
            best = np.where(improved, safe[:, j], best)
            w = np.where(improved, 0, w + 1)
            wait[:, j] = w
        end_wait = w
    if rule.patience is not None:
        hit |= wait >= max(rule.patience, 1)  # only a future without improvement stops (patience=0 as 1)
    stops = hit.any(axis=1)
    paths.stop_at[running[stops]] = np.maximum(first + np.argmax(hit[stops], axis=1), rule.hold)
    paths.best[running], paths.wait[running] = best, end_wait
    paths.evaluations += steps
    if rule.max_evaluations is not None and paths.evaluations >= rule.max_evaluations:
        paths.stop_at[paths.running] = float(rule.max_evaluations)


def simulate(rule: StopRule, state: RuleState, futures: np.ndarray) -> np.ndarray:
    """Evaluation number at which each future stops (``inf`` if none of its steps stops it).

    ``futures`` holds lower-is-better values (``sign x value``) of evaluations ``state.evaluations + 1``
    onward, one row per future. From a :attr:`RuleState.pending` state every future stops where the run is
    held to (:attr:`StopRule.hold`).
    """
    if state.pending:
        return np.full(futures.shape[0], float(rule.hold))
    paths = Paths.start(state, futures.shape[0])
    simulate_chunk(rule, paths, futures)
    return paths.stop_at
