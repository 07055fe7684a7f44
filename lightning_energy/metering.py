"""The metering state machine of one rank: readings in, typed epochs and windows out (no torch, no Lightning).

The callback reads the meter at Lightning's boundaries and hands each timestamped :class:`Reading` here.
:class:`Metering` keeps the boundaries (fit start, epoch start, window start), turns two readings into
energy, scales this rank's in-epoch energy to all ranks, decides when an in-epoch window closes (its
batch count and its time budget) and when the progress bar refreshes. It never reads a clock or a meter
itself: every call is given the time, so every rule here is tested without a ``Trainer``.

Rank rules: an epoch is summed over ranks by the callback (:meth:`Metering.epoch_sums` gives this rank's
contribution, :meth:`Metering.epoch_record` reads the sum back); a window is this rank's energy times the
last measured epoch's all-rank/this-rank ratio (the world size until one was measured).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lightning_energy.accounting import (
    CATEGORIES,
    EnergyLedger,
    EpochRecord,
    by_category,
    check_reading,
    reading_delta,
)
from lightning_energy.budget import Budget
from lightning_energy.errors import MeterError

# windows may cost at most this share of the fit's time so far, the fit's first window aside (its cost is
# not known before it closes): a window closes only once the windows before it are paid for at this share
# (the progress bar's refresh is not counted here: refresh_s bounds it)
WINDOW_TIME_SHARE = 0.0005
# after the first epoch, windows only when epochs are this long: shorter ones project often enough
LONG_EPOCH_S = 30.0
# a slow meter is read for the live bar no more often than this many times its read time
SLOW_READ_FACTOR = 20.0
# the hot path checks at least every this many batches (a batch time that jumps is noticed this late at most)
MAX_QUIET_BATCHES = 64

NOT_METERED_START = "the epoch's start was not metered (resumed from a mid-epoch checkpoint)"


@dataclass(frozen=True)
class Reading:
    """One read of this rank's meter at ``time_s`` (monotonic seconds): cumulative joules per component,
    or ``None`` with the ``problem`` that made it missing. ``pending``: components not read because their
    meter was still opening in the background (an epoch's start read without waiting: :func:`settled`)."""

    time_s: float
    joules: Mapping[str, float] | None = None
    problem: str | None = None
    pending: frozenset[str] = frozenset()

    @property
    def missing(self) -> bool:
        return self.joules is None


@dataclass(frozen=True)
class Boundary:
    """The start of a span (the fit, an epoch or a window): its reading and the epoch it belongs to
    (``None``: none, e.g. after an epoch's end until the next epoch's start)."""

    reading: Reading
    epoch: int | None = None


@dataclass(frozen=True)
class Window:
    """A closed in-epoch window: ``energy_j`` on all ranks (``None``: not measured) over ``duration_s``;
    ``time_s`` is seconds since the fit started; ``step`` is the global step read at the start of its last
    batch, the step Lightning logs that batch's metrics at (so logged totals never go back)."""

    epoch: int
    step: int
    batches: int
    energy_j: float | None
    duration_s: float
    time_s: float


class Due(enum.Enum):
    """What a training batch's end asks of the callback."""

    NOTHING = "nothing"
    WINDOW = "window"  # a window is full: it closes at the next batch's start or at the epoch's end
    REFRESH = "refresh"  # refresh the progress bar (read the meter)


def take_reading(read: Callable[[], Mapping[str, float]], time_s: float) -> Reading:
    """Call ``read`` and check its result; any failure makes the reading missing, never an exception."""
    try:
        return Reading(time_s, check_reading(read()))
    except Exception as exc:  # any meter failure makes this reading missing, never training
        return _failed(exc, time_s)


def take_reading_nowait(
    read_nowait: Callable[[], tuple[Mapping[str, float], frozenset[str]]], time_s: float
) -> Reading:
    """:func:`take_reading` of a meter's ``read_nowait()``: the components it read at once, and those whose
    meter is still opening as the reading's ``pending`` (the read ones may then be none)."""
    try:
        joules, pending = read_nowait()
        checked = check_reading(joules) if joules or not pending else {}
        return Reading(time_s, checked, pending=frozenset(pending))
    except Exception as exc:  # as take_reading
        return _failed(exc, time_s)


def _failed(exc: Exception, time_s: float) -> Reading:
    if isinstance(exc, MeterError):
        return Reading(time_s, None, str(exc))
    return Reading(time_s, None, f"meter raised {type(exc).__name__}: {exc}")


def settled(start: Reading, base: Reading, later: Reading) -> Reading:
    """``start`` with its ``pending`` components filled in by constant power between ``base`` (an earlier
    reading that has them: the fit's first, the meter's zero baseline) and ``later`` (the first reading that
    has them again): ``base + (later - base) x (start - base time) / (later - base time)`` -- the
    assumption the background-opened meter itself makes over its first interval. A pending component
    that ``later`` lacks (its meter failed to open and is dropped) is left out, as it is from ``later``;
    ``start`` is returned as it is while ``later`` or ``base`` cannot settle it (missing, or no later)."""
    if not start.pending or start.joules is None or later.joules is None or base.joules is None:
        return start
    span_s = later.time_s - base.time_s
    if span_s <= 0:
        return start
    share = min(max((start.time_s - base.time_s) / span_s, 0.0), 1.0)
    joules = dict(start.joules)
    for name in start.pending:
        if name in later.joules and name in base.joules:
            joules[name] = base.joules[name] + (later.joules[name] - base.joules[name]) * share
    return Reading(start.time_s, joules, start.problem)


def energy_between(start: Reading, end: Reading) -> float | None:
    """Joules between two readings of one meter, all components; ``None`` when either is missing or the
    counters went backwards."""
    if start.joules is None or end.joules is None:
        return None
    try:
        return sum(reading_delta(start.joules, end.joules).values())
    except MeterError:
        return None


class Metering:
    """One rank's boundaries, window budget, rank scaling and progress-bar schedule for one fit.

    Args:
        window_batches: the user's setting (``0``: windows off, ``None``: automatic).
        refresh_s: the most often, in seconds, that the progress bar refreshes during an epoch.
        world_size: the number of ranks (the rank ratio until an epoch has been measured).
        now: the fit's start time (monotonic seconds).
    """

    def __init__(self, window_batches: int | None, refresh_s: float, world_size: int, now: float) -> None:
        self.window_batches = window_batches
        self.refresh_s = refresh_s
        self.fit_start = Boundary(Reading(now))
        self.epoch_start = Boundary(Reading(now))
        self.window = Boundary(Reading(now))
        self.batches = 0  # training batches run in the current epoch
        self.window_opened_at = 0  # ``batches`` when the current window opened
        self.window_due = False  # the open window is full: close it at the next batch start or epoch end
        self.batch_start_step = 0  # the global step read at the start of the last checked batch
        self.window_cost_s = 0.0  # time spent closing windows in this fit
        self.windows_on = window_batches != 0  # the first epoch always; later ones when they are long
        self.next_refresh_at = 0.0
        # the hot path: a batch that ends while ``batches < quiet_below`` is only counted (no clock read,
        # no check); the schedule below converts the next window and bar refresh into batch counts
        self.quiet_below = 0
        self.epoch_batches: int | None = None  # the epoch's planned length, when known
        self._unit: int | None = None  # batches per window, as last given to batch_end
        self._pace = (0, now)  # (batches, time) at the last check that measured the batch time
        self._batch_s = 0.0  # the batch time measured at that check (0: not yet)
        self._step_batch = 0  # ``batches`` when ``batch_start_step`` was read
        self.rank_ratio = float(world_size)  # all-rank energy / this rank's, from the last measured epoch

    # ------------------------------------------------------------------------------------------ the fit
    def start_fit(self, reading: Reading, metered_ranks: int | None = None) -> None:
        """The fit starts at ``reading``; ``metered_ranks`` (the ranks with something to meter) is the rank
        ratio until an epoch has been measured, when known (default: the world size)."""
        self.fit_start = Boundary(reading)
        if metered_ranks is not None:
            self.rank_ratio = float(max(metered_ranks, 1))

    def since_fit_start(self, now: float) -> float:
        return now - self.fit_start.reading.time_s

    def fit_energy_j(self, end: Reading) -> float | None:
        """This rank's energy over the whole fit; ``None`` when it was not measured."""
        return energy_between(self.fit_start.reading, end)

    def fit_sums(self, end: Reading) -> dict[str, float]:
        """This rank's energy since the fit started, by name, to be summed over ranks."""
        fit_j = self.fit_energy_j(end)
        return {"fit_j": fit_j or 0.0, "fit_unknown": float(fit_j is None)}

    @staticmethod
    def summed_fit_j(summed: Mapping[str, float]) -> float | None:
        """The fit's energy on all ranks from :meth:`fit_sums` summed over ranks (``None``: some rank could
        not measure it)."""
        return None if summed["fit_unknown"] else summed["fit_j"]

    # ------------------------------------------------------------------------------------------ epochs
    def start_epoch(self, epoch: int, reading: Reading, step: int = 0, budget: Budget | None = None) -> None:
        """The epoch starts at ``reading``, at global step ``step``, of ``budget.batches_per_epoch``
        batches (``None``: unknown)."""
        self.epoch_start = Boundary(reading, epoch)
        self.window = Boundary(reading, epoch)
        self.batches = self.window_opened_at = self.quiet_below = 0  # the first batch is checked
        self.window_due = False
        self.batch_start_step = step
        self.epoch_batches = None if budget is None else budget.batches_per_epoch
        self.next_refresh_at = reading.time_s + self.refresh_s
        self._pace, self._batch_s, self._step_batch = (0, reading.time_s), 0.0, 0

    def settle(self, later: Reading) -> None:
        """Fill in the epoch's start reading (and its first window's) where it was taken without waiting
        for a meter still opening (``pending`` components), from ``later``: :func:`settled`. Called by
        every method given a later reading; does nothing once settled."""
        start = self.epoch_start.reading
        if not start.pending:
            return
        done = settled(start, self.fit_start.reading, later)
        if done is start:
            return
        self.epoch_start = Boundary(done, self.epoch_start.epoch)
        if self.window.reading is start:
            self.window = Boundary(done, self.window.epoch)

    def epoch_sums(self, epoch: int, end: Reading) -> dict[str, float]:
        """This rank's epoch, by name, to be summed over ranks (categories, missing, duration, ranks, and
        the fit so far: :meth:`fit_sums`)."""
        self.settle(end)
        categories = dict.fromkeys(CATEGORIES, 0.0)
        problem = self.epoch_problem(epoch, end)
        start = self.epoch_start.reading.joules
        if problem is None and start is not None and end.joules is not None:
            categories = by_category(reading_delta(start, end.joules))
        duration_s = end.time_s - self.epoch_start.reading.time_s
        sums = {**categories, "missing": float(problem is not None), "duration_s": duration_s, "ranks": 1.0}
        return {**sums, **self.fit_sums(end)}  # the fit so far too: what a checkpoint now carries on

    def epoch_problem(self, epoch: int, end: Reading) -> str | None:
        """Why this rank cannot measure ``epoch`` ending at ``end``; ``None`` when it can."""
        self.settle(end)
        start = self.epoch_start
        if start.epoch != epoch:
            return NOT_METERED_START
        problem = start.reading.problem or end.problem
        if problem is None and start.reading.joules is not None and end.joules is not None:
            try:
                reading_delta(start.reading.joules, end.joules)
            except MeterError as exc:
                return str(exc)
        return problem

    def epoch_record(self, epoch: int, end: Reading, summed: Mapping[str, float]) -> EpochRecord:
        """The epoch on all ranks from ``summed`` (:meth:`epoch_sums` summed over ranks)."""
        ranks = max(summed["ranks"], 1.0)
        duration_s = summed["duration_s"] / ranks
        if summed["missing"] > 0:
            reason = self.epoch_problem(epoch, end) or (
                f"the meter failed on {int(summed['missing'])} of {int(ranks)} ranks"
            )
            return EpochRecord(epoch, duration_s, None, {}, reason, self.batches)
        components = {c: summed[c] for c in CATEGORIES}
        return EpochRecord(epoch, duration_s, sum(components.values()), components, None, self.batches)

    def finish_epoch(
        self, record: EpochRecord, end: Reading, unit: int | None, end_step: int | None = None
    ) -> Window | None:
        """Close the epoch: its last window (up to ``end``, validation included; also when the epoch is
        missing), the new rank ratio and whether the next epoch has windows. ``end_step``: the global step
        at the epoch's end, the last window's step when the epoch stopped before its planned last batch
        (whose start step was then not read)."""
        last = self.remainder_window(record.epoch, end, unit, end_step)
        local_j = energy_between(self.epoch_start.reading, end)
        if record.energy_j is not None and local_j:
            self.rank_ratio = record.energy_j / local_j
        self.windows_on = self.window_batches != 0 and record.duration_s >= LONG_EPOCH_S
        self.window = Boundary(Reading(end.time_s))  # the next epoch's start reading opens the next window
        self.window_opened_at, self.window_due = self.batches, False
        return last

    # ------------------------------------------------------------------------------------------ windows
    def scaled_j(self, start: Reading, end: Reading) -> float | None:
        """This rank's energy between two readings, scaled to all ranks."""
        local_j = energy_between(start, end)
        return None if local_j is None else local_j * self.rank_ratio

    @property
    def window_batches_run(self) -> int:
        """Training batches run since the current window opened."""
        return self.batches - self.window_opened_at

    def watching(self) -> bool:
        """Whether the coming batch's start matters: a full window closes there, or its end is checked (its
        start step is then read with :meth:`batch_start`). The callback inlines this test in its hot path."""
        return self.window_due or self.batches >= self.quiet_below

    def batch_start(self, step: int) -> None:
        """A training batch starts at global step ``step`` (read only when :meth:`watching`)."""
        self.batch_start_step, self._step_batch = step, self.batches

    def batch_end(self, now: float, unit: int | None) -> Due:
        """Count one training batch and check it; say whether the bar refreshes now or the open window is
        full (:data:`Due.WINDOW`). A full window is closed lazily, at the next batch's start
        (:meth:`close_window`) or at the epoch's end (:meth:`finish_epoch`), so that a validation run after
        its last batch -- mid-epoch or at the epoch's end, of a known length or not -- lands in it.

        A batch ending while ``batches < quiet_below`` (counted before it) cannot be due: the callback then
        only counts it (``batches += 1``) and does not call this method."""
        self.batches += 1
        self._unit = unit
        due = Due.NOTHING
        if self.window_due:  # not closed since (no batch start came): it grows, it is still due
            due = Due.WINDOW
        elif unit and self.windows_on and self.window_batches_run >= unit and self.window_affordable(now):
            self.window_due = True
            due = Due.WINDOW
        if due is Due.NOTHING and now >= self.next_refresh_at:
            due = Due.REFRESH
        self._plan(now)
        return due

    def _plan(self, now: float) -> None:
        """The next batch to check (``quiet_below``): the open window's last batch, the epoch's planned last
        batch (its start step is read for the epoch's last window), and about half the time left until the
        next bar refresh at the batch time measured since the last check (so a batch time that doubles still
        refreshes on time), at most :data:`MAX_QUIET_BATCHES` ahead; every batch while a window is due. A
        full window over its time share is checked again about when it will be affordable at that batch
        time (so it grows by whole batches, not by a check per batch)."""
        done, since = self.batches - self._pace[0], now - self._pace[1]
        if done > 0 and since > 0:
            self._pace, self._batch_s = (self.batches, now), since / done
        ahead = 1
        if self._batch_s and not self.window_due:
            ahead = max(1, min(MAX_QUIET_BATCHES, int(0.5 * (self.next_refresh_at - now) / self._batch_s)))
            if self._unit and self.windows_on:
                left = self._unit - self.window_batches_run
                if left <= 0:  # full but not affordable yet: the batches until it is
                    wait_s = self.window_cost_s / WINDOW_TIME_SHARE - self.since_fit_start(now)
                    left = int(wait_s / self._batch_s)
                ahead = min(ahead, max(1, left))
            if self.epoch_batches:
                ahead = min(ahead, max(1, self.epoch_batches - self.batches))
        self.quiet_below = self.batches + ahead - 1

    def close_window(self, epoch: int, end: Reading) -> Window:
        """The window that :meth:`batch_end` said is due, closed at ``end`` (the next batch's start); the
        next one opens there."""
        self.settle(end)
        window = self._window(epoch, self.window, end, self.window_batches_run)
        self.window, self.window_opened_at, self.window_due = Boundary(end, epoch), self.batches, False
        self._plan(end.time_s)
        return window

    def remainder_window(
        self, epoch: int, end: Reading, unit: int | None, end_step: int | None = None
    ) -> Window | None:
        """The epoch's last window up to ``end`` (full and due, or partial); ``None`` when there is none
        (no windows, no batch since the last one, or no window opened in this epoch)."""
        self.settle(end)
        batches = self.window_batches_run
        if not unit or self.window_batches == 0 or batches <= 0 or self.window.epoch != epoch:
            return None
        if end_step is not None and self._step_batch != self.batches - 1:  # the last batch was not watched
            self.batch_start_step = end_step
        return self._window(epoch, self.window, end, batches)

    def _window(self, epoch: int, start: Boundary, end: Reading, batches: int) -> Window:
        return Window(
            epoch=epoch,
            step=self.batch_start_step,
            batches=batches,
            energy_j=self.scaled_j(start.reading, end),
            duration_s=end.time_s - start.reading.time_s,
            time_s=self.since_fit_start(end.time_s),
        )

    def window_affordable(self, now: float) -> bool:
        """Whether a window may close at ``now``: the windows closed so far cost at most
        :data:`WINDOW_TIME_SHARE` of the fit's time (the first one always may). So their cost stays within
        that share of any fit plus one window's cost, whatever the meter's or the projector's speed; a
        window that may not close yet grows until it may (STEP counts its batches as its work)."""
        return self.window_cost_s <= WINDOW_TIME_SHARE * self.since_fit_start(now)

    def add_window_cost(self, seconds: float) -> None:
        """Count the time spent closing a window (the meter read, the projector update, the loggers)."""
        self.window_cost_s += seconds

    def first_window_in_epoch(self, window: Window) -> bool:
        return self.batches <= window.batches

    # ------------------------------------------------------------------------------------ progress bar
    def refresh_due(self, now: float) -> bool:
        return now >= self.next_refresh_at

    def schedule_refresh(self, done_at: float, read_s: float) -> None:
        """The next bar refresh: ``refresh_s`` after this one ended, and a slow meter read less often."""
        self.next_refresh_at = done_at + max(self.refresh_s, SLOW_READ_FACTOR * read_s)
        self._plan(done_at)

    def live_total_j(self, measured_total_j: float | None, reading: Reading) -> float | None:
        """Energy of the run so far: measured epochs plus this rank's in-epoch energy scaled to all ranks."""
        self.settle(reading)
        in_epoch_j = self.scaled_j(self.epoch_start.reading, reading)
        if in_epoch_j is None:
            return None
        return (measured_total_j or 0.0) + in_epoch_j

    def extrapolated_j(self, live_j: float | None, *, epochs_done: int, budget: Budget) -> float | None:
        """Energy so far scaled to the planned batches: only to pick the bar's unit before any projection."""
        total = budget.total_batches
        done = epochs_done * (budget.batches_per_epoch or 0) + self.batches
        if live_j is None or not total or done <= 0:
            return live_j
        return live_j * total / done

    def live_figures(
        self, reading: Reading, ledger: EnergyLedger, budget: Budget
    ) -> tuple[float | None, float | None]:
        """The live total (:meth:`live_total_j`) and its extrapolation (:meth:`extrapolated_j`)."""
        live_j = self.live_total_j(ledger.measured_total_j, reading)
        return live_j, self.extrapolated_j(live_j, epochs_done=len(ledger.records), budget=budget)


def missing_epoch_message(record: EpochRecord) -> str:
    return (
        f"epoch {record.epoch}: energy not measured ({record.reason}); it is marked missing, "
        "later ones are listed in the report"
    )
