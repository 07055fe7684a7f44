"""The pure metering core: boundaries, rank scaling, the window budget and the bar schedule, no Trainer."""

from __future__ import annotations

import dataclasses

import pytest

from lightning_energy.budget import Budget
from lightning_energy.errors import MeterError
from lightning_energy.metering import (
    LONG_EPOCH_S,
    MAX_QUIET_BATCHES,
    NOT_METERED_START,
    SLOW_READ_FACTOR,
    WINDOW_TIME_SHARE,
    Boundary,
    Due,
    Metering,
    Reading,
    energy_between,
    settled,
    take_reading,
    take_reading_nowait,
)


def reading(time_s: float, gpu_j: float, cpu_j: float = 0.0) -> Reading:
    return Reading(time_s, {"gpu0": gpu_j, "cpu": cpu_j})


def metering(window_batches: int | None = None, world_size: int = 1, refresh_s: float = 2.0) -> Metering:
    return Metering(window_batches=window_batches, refresh_s=refresh_s, world_size=world_size, now=0.0)


def test_readings_and_boundaries_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading(0.0, 1.0).time_s = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Boundary(reading(0.0, 1.0)).epoch = 3  # type: ignore[misc]


def test_take_reading_turns_any_meter_failure_into_a_missing_reading() -> None:
    assert take_reading(lambda: {"gpu0": 5.0}, 1.0) == Reading(1.0, {"gpu0": 5.0})

    def broken() -> dict[str, float]:
        raise RuntimeError("bus error")

    def failed() -> dict[str, float]:
        raise MeterError("counter unsupported")

    assert take_reading(broken, 2.0) == Reading(2.0, None, "meter raised RuntimeError: bus error")
    assert take_reading(failed, 2.0).problem == "counter unsupported"
    assert take_reading(lambda: {"gpu0": float("nan")}, 3.0).missing


def test_energy_between_is_none_when_a_reading_is_missing_or_counters_go_back() -> None:
    assert energy_between(reading(0, 10, 1), reading(1, 15, 3)) == pytest.approx(7.0)
    assert energy_between(Reading(0.0, None, "x"), reading(1, 15)) is None
    assert energy_between(reading(0, 10), reading(1, 5)) is None


def test_an_epoch_sums_categories_and_keeps_its_duration_and_batches() -> None:
    m = metering()
    m.start_epoch(0, reading(10.0, 100.0, 20.0))
    for t in (11.0, 12.0, 13.0):
        m.batch_end(t, unit=None)
    end = reading(14.0, 160.0, 30.0)
    sums = m.epoch_sums(0, end)
    expected = {"gpu": 60.0, "cpu": 10.0, "ram": 0.0, "other": 0.0, "missing": 0.0, "duration_s": 4.0}
    # the fit so far (no fit start was read here: unknown) rides along for a checkpoint
    assert sums == {**expected, "ranks": 1.0, "fit_j": 0.0, "fit_unknown": 1.0}
    record = m.epoch_record(0, end, sums)
    assert (record.energy_j, record.duration_s, record.batches, record.missing) == (70.0, 4.0, 3, False)


def test_an_epoch_summed_over_ranks_divides_the_duration_and_names_failed_ranks() -> None:
    m = metering(world_size=2)
    m.start_epoch(0, reading(0.0, 0.0))
    end = reading(4.0, 50.0)
    local = m.epoch_sums(0, end)
    summed = {k: 2 * v for k, v in local.items()}
    record = m.epoch_record(0, end, summed)
    assert (record.energy_j, record.duration_s) == (100.0, 4.0)
    failed = {**summed, "missing": 1.0}
    record = m.epoch_record(0, end, failed)
    assert record.energy_j is None and record.reason == "the meter failed on 1 of 2 ranks"


def test_an_epoch_whose_start_was_not_metered_is_missing() -> None:
    m = metering()
    m.start_epoch(3, reading(0.0, 0.0))
    end = reading(1.0, 5.0)
    assert m.epoch_problem(4, end) == NOT_METERED_START
    assert m.epoch_sums(4, end)["missing"] == 1.0
    assert m.epoch_record(4, end, m.epoch_sums(4, end)).reason == NOT_METERED_START


def test_counters_that_go_back_make_the_epoch_missing_with_the_reason() -> None:
    m = metering()
    m.start_epoch(0, reading(0.0, 50.0))
    end = reading(1.0, 10.0)
    record = m.epoch_record(0, end, m.epoch_sums(0, end))
    assert record.missing and record.reason


def test_windows_close_every_unit_batches_and_scale_to_all_ranks() -> None:
    m = metering(world_size=4)
    m.start_fit(reading(0.0, 0.0))
    m.start_epoch(0, reading(1.0, 0.0))
    assert m.batch_end(1.1, unit=3) is Due.NOTHING
    assert m.batch_end(1.2, unit=3) is Due.NOTHING
    assert m.batch_end(1.3, unit=3) is Due.WINDOW
    window = m.close_window(0, reading(1.5, 10.0))
    # this rank's 10 J scaled by the world size until an epoch has been measured
    assert (window.batches, window.energy_j, window.epoch) == (3, 40.0, 0)
    assert window.duration_s == pytest.approx(0.5) and window.time_s == pytest.approx(1.5)
    assert m.first_window_in_epoch(window)
    assert m.batch_end(1.6, unit=3) is Due.NOTHING
    assert m.window_batches_run == 1


def test_the_measured_epoch_sets_the_rank_ratio_for_later_windows() -> None:
    m = metering(window_batches=2, world_size=2)
    m.start_epoch(0, reading(0.0, 0.0))
    end = reading(40.0, 10.0)
    record = m.epoch_record(0, end, {**m.epoch_sums(0, end), "gpu": 30.0, "ranks": 2.0, "duration_s": 80.0})
    m.finish_epoch(record, end, unit=2)
    assert m.rank_ratio == pytest.approx(3.0)
    m.start_epoch(1, reading(41.0, 10.0))
    m.batch_end(41.5, unit=2)
    assert m.batch_end(42.0, unit=2) is Due.WINDOW
    assert m.close_window(1, reading(42.0, 12.0)).energy_j == pytest.approx(6.0)


def test_windows_stop_after_a_short_epoch_and_continue_after_a_long_one() -> None:
    for duration_s, on in ((LONG_EPOCH_S - 1, False), (LONG_EPOCH_S, True)):
        m = metering()
        m.start_epoch(0, reading(0.0, 0.0))
        end = reading(duration_s, 10.0)
        m.finish_epoch(m.epoch_record(0, end, m.epoch_sums(0, end)), end, unit=5)
        assert m.windows_on is on
        m.start_epoch(1, reading(duration_s, 10.0))
        dues = {m.batch_end(duration_s + 0.001 * i, unit=1) for i in range(3)}
        assert (Due.WINDOW in dues) is on


def test_windows_off_never_close_one() -> None:
    m = metering(window_batches=0)
    m.start_epoch(0, reading(0.0, 0.0))
    assert all(m.batch_end(0.001 * i, unit=1) is not Due.WINDOW for i in range(1, 10))
    end = reading(1.0, 5.0)
    assert m.finish_epoch(m.epoch_record(0, end, m.epoch_sums(0, end)), end, unit=1) is None


def test_windows_wait_when_they_have_cost_more_than_their_time_share() -> None:
    m = metering()
    m.start_fit(reading(0.0, 0.0))
    m.start_epoch(0, reading(0.0, 0.0))
    assert m.batch_end(0.001, unit=1) is Due.WINDOW  # the fit's first window: its cost is not known yet
    m.close_window(0, reading(0.001, 1.0))
    m.add_window_cost(0.002)  # it cost 2 ms: the next may close once the fit is 2 ms / share old
    affordable_s = 0.002 / WINDOW_TIME_SHARE
    assert m.batch_end(0.5 * affordable_s, unit=1) is not Due.WINDOW
    assert m.window_batches_run == 1  # the batch is kept for the next window
    assert m.batch_end(affordable_s, unit=1) is Due.WINDOW
    assert m.close_window(0, reading(affordable_s, 5.0)).batches == 2


def test_windows_cost_at_most_their_share_of_any_fit_plus_one_window() -> None:
    for window_s, batch_s in ((0.001, 0.001), (0.02, 0.001), (0.001, 0.5)):
        m = metering()
        m.start_fit(reading(0.0, 0.0))
        m.start_epoch(0, reading(0.0, 0.0))
        now, closed = 0.0, 0
        for _ in range(20_000):
            now += batch_s
            if m.window_due:
                m.close_window(0, reading(now, now))
                m.add_window_cost(window_s)
                now += window_s
                closed += 1
            m.batch_end(now, unit=5)
        assert closed >= 1
        assert m.window_cost_s <= WINDOW_TIME_SHARE * now + window_s
        if batch_s * 5 >= window_s / WINDOW_TIME_SHARE:  # windows affordable at their size: all close
            assert closed == 20_000 // 5 - 1  # the last full one closes at the epoch end


def test_the_last_window_closes_at_the_epoch_end() -> None:
    m = metering()
    m.start_epoch(0, reading(0.0, 0.0))
    for i in range(5):
        if m.window_due:  # the next batch's start closes a full window
            m.close_window(0, reading(0.1 * i, 3.0))
        m.batch_end(0.1 * (i + 1), unit=3)
    end = reading(1.0, 8.0)
    last = m.finish_epoch(m.epoch_record(0, end, m.epoch_sums(0, end)), end, unit=3)
    assert last is not None and (last.batches, last.energy_j) == (2, 5.0)
    # the next epoch's start opens the next window: nothing is left over
    assert m.window_batches_run == 0 and m.window.reading.missing


def test_a_full_window_closes_lazily_so_validation_after_its_last_batch_lands_in_it() -> None:
    # #24 item 1 and epochs of unknown length: a window full at a batch's end closes at the next batch's
    # start, or at the epoch's end when that batch was the epoch's last (known in advance or not)
    m = metering()
    m.start_epoch(0, reading(0.0, 0.0))
    assert m.batch_end(0.1, unit=2) is not Due.WINDOW and not m.window_due
    assert m.batch_end(0.2, unit=2) is Due.WINDOW and m.window_due
    first = m.close_window(0, reading(0.3, 30.0))  # 2 x 10 J train + 10 J of a mid-epoch validation
    assert (first.batches, first.energy_j) == (2, 30.0) and not m.window_due
    assert m.batch_end(0.4, unit=2) is not Due.WINDOW
    assert m.batch_end(0.5, unit=2) is Due.WINDOW  # the epoch's last batch: no next batch start
    end = reading(1.0, 70.0)  # 2 x 10 J train + 2 x 10 J validation after the last batch
    last = m.finish_epoch(m.epoch_record(0, end, m.epoch_sums(0, end)), end, unit=2)
    assert last is not None and (last.batches, last.energy_j) == (2, 40.0)
    assert not m.window_due


def test_a_window_is_logged_at_the_global_step_read_at_its_last_batchs_start() -> None:
    # #24 item 6: Lightning logs a batch's metrics at the global step read at that batch's start; a window
    # logged at the step after its last batch would put a smaller total after a larger one
    m = metering()
    m.start_epoch(1, reading(0.0, 0.0), step=8)
    for time_s, start_step in ((0.1, 8), (0.2, 9)):
        m.batch_start(start_step)
        due = m.batch_end(time_s, unit=2)
    assert due is Due.WINDOW
    assert m.close_window(1, reading(0.2, 20.0)).step == 9
    for time_s, start_step in ((0.3, 10), (0.4, 10)):  # accumulating gradients: no optimizer step at 0.3
        m.batch_start(start_step)
        m.batch_end(time_s, unit=2)
    assert m.close_window(1, reading(0.4, 40.0)).step == 10
    m.batch_start(11)
    m.batch_end(0.5, unit=2)
    end = reading(1.0, 50.0)
    last = m.finish_epoch(m.epoch_record(1, end, m.epoch_sums(1, end)), end, unit=2, end_step=12)
    assert last is not None and last.step == 11


def run_batches(m: Metering, count: int, batch_s: float, unit: int | None, t0: float = 0.0) -> list[tuple]:
    """Drive ``m`` as the callback does: a batch is only counted while ``batches < quiet_below``; returns
    (batch number, what was due) for every checked batch, closing each due window at the next start."""
    checked = []
    for i in range(1, count + 1):
        if m.watching():
            if m.window_due:
                m.close_window(0, reading(t0 + (i - 1) * batch_s, float(i)))
            m.batch_start(i - 1)
        if m.batches < m.quiet_below:
            m.batches += 1
            continue
        due = m.batch_end(t0 + i * batch_s, unit)
        if due is Due.REFRESH:
            m.schedule_refresh(t0 + i * batch_s, read_s=0.0)
        checked.append((i, due))
    return checked


def test_the_hot_path_checks_few_batches_yet_refreshes_and_closes_windows_on_time() -> None:
    m = metering(refresh_s=2.0)
    m.start_fit(reading(0.0, 0.0))
    m.start_epoch(0, reading(0.0, 0.0), budget=Budget(batches_per_epoch=10_000))
    checked = run_batches(m, 10_000, 0.001, unit=500)  # 10 s of 1 ms batches, a window every 500
    windows = [i for i, due in checked if due is Due.WINDOW]
    assert windows == list(range(500, 10_001, 500))  # exactly at each window's last batch
    refreshes = [i for i, due in checked if due is Due.REFRESH]
    assert refreshes and all(i % 500 for i in refreshes)
    # every 2 s (2000 batches), never early, at most a few batches late
    assert all(0 <= i - 2000 * (n + 1) <= 3 * (n + 1) for n, i in enumerate(refreshes))
    assert len(checked) < 10_000 / MAX_QUIET_BATCHES + 60
    assert checked[-1][0] == 10_000  # the epoch's planned last batch: its start step is read
    assert m.batches == 10_000


def test_a_slower_batch_time_still_refreshes_the_bar_on_time() -> None:
    m = metering(refresh_s=2.0)
    m.start_epoch(0, reading(0.0, 0.0))
    fast = run_batches(m, 1000, 0.001, unit=None)  # 1 s: the schedule learns 1 ms batches
    slow = run_batches(m, 200, 0.01, unit=None, t0=1.0)  # then batches take 10 times as long
    refresh = next(i for i, due in slow if due is Due.REFRESH)
    assert not any(due is Due.REFRESH for _, due in fast)
    # due at 2 s: late by at most the batches the hot path may skip, at the new batch time
    assert 2.0 <= 1.0 + refresh * 0.01 <= 2.0 + MAX_QUIET_BATCHES * 0.01


def test_an_epoch_stopped_early_logs_its_last_window_at_the_step_of_its_end() -> None:
    m = metering()
    m.start_fit(reading(0.0, 0.0))
    m.start_epoch(0, reading(0.0, 0.0), step=0, budget=Budget(batches_per_epoch=1000))
    run_batches(m, 300, 0.001, unit=200)  # stopped after 300 of 1000 batches: the last one not watched
    end = reading(1.0, 50.0)
    last = m.finish_epoch(m.epoch_record(0, end, m.epoch_sums(0, end)), end, unit=200, end_step=300)
    assert last is not None and (last.batches, last.step) == (100, 300)


def test_a_missing_epoch_still_closes_its_last_window() -> None:
    """The bug fixed here: a missing epoch returned before its last window was closed."""
    m = metering(world_size=2)
    m.start_epoch(0, reading(0.0, 0.0))
    for i in range(4):
        m.batch_end(0.1 * (i + 1), unit=10)
    end = reading(1.0, 8.0)
    summed = {**m.epoch_sums(0, end), "missing": 1.0, "ranks": 2.0}  # another rank failed
    record = m.epoch_record(0, end, summed)
    assert record.missing
    last = m.finish_epoch(record, end, unit=10)
    assert last is not None and last.batches == 4
    assert last.energy_j == pytest.approx(16.0)  # this rank's 8 J times the world size
    assert m.rank_ratio == 2.0  # a missing epoch does not change the ratio


def test_a_missing_epoch_without_readings_counts_its_last_window_as_unmeasured() -> None:
    m = metering()
    m.start_epoch(0, Reading(0.0, None, "meter down"))
    m.batch_end(0.5, unit=10)
    end = Reading(1.0, None, "meter down")
    record = m.epoch_record(0, end, m.epoch_sums(0, end))
    last = m.finish_epoch(record, end, unit=10)
    assert record.reason == "meter down"
    assert last is not None and last.batches == 1 and last.energy_j is None


def test_the_bar_refreshes_after_refresh_s_and_reads_a_slow_meter_less_often() -> None:
    m = metering(refresh_s=2.0)
    m.start_epoch(0, reading(10.0, 0.0))
    assert m.batch_end(11.0, unit=None) is Due.NOTHING
    assert m.batch_end(12.0, unit=None) is Due.REFRESH
    m.schedule_refresh(12.0, read_s=0.001)
    assert m.next_refresh_at == pytest.approx(14.0)
    m.schedule_refresh(12.0, read_s=0.5)  # a slow meter: 20 times its read time
    assert m.next_refresh_at == pytest.approx(12.0 + SLOW_READ_FACTOR * 0.5)
    assert not m.refresh_due(13.0)


def test_live_total_adds_this_epochs_scaled_energy_to_the_measured_epochs() -> None:
    m = metering(world_size=2)
    m.start_epoch(1, reading(0.0, 100.0))
    assert m.live_total_j(50.0, reading(1.0, 110.0)) == pytest.approx(70.0)
    assert m.live_total_j(None, reading(1.0, 110.0)) == pytest.approx(20.0)
    assert m.live_total_j(50.0, Reading(1.0, None, "x")) is None


def test_extrapolation_scales_the_energy_so_far_to_the_planned_batches() -> None:
    m = metering()
    m.start_epoch(1, reading(0.0, 0.0))
    for i in range(5):
        m.batch_end(0.1 * i, unit=None)
    planned = Budget(max_epochs=3, batches_per_epoch=10)
    assert m.extrapolated_j(30.0, epochs_done=1, budget=planned) == pytest.approx(60.0)
    assert m.extrapolated_j(30.0, epochs_done=1, budget=Budget(batches_per_epoch=10)) == 30.0
    assert m.extrapolated_j(None, epochs_done=1, budget=planned) is None


def test_fit_energy_is_this_ranks_energy_since_the_fit_start() -> None:
    m = metering()
    m.start_fit(reading(0.0, 5.0, 1.0))
    assert m.fit_energy_j(reading(9.0, 25.0, 2.0)) == pytest.approx(21.0)
    assert m.fit_energy_j(Reading(9.0, None, "x")) is None


def test_a_rank_with_nothing_to_meter_adds_zero_and_the_epoch_stays_measured() -> None:
    from lightning_energy.meter_session import MeterSession

    warned: list[str] = []
    session = MeterSession.open(None, [], meter_host=False, warn=lambda cause, msg: warned.append(msg))
    assert session.nothing_to_meter and warned == []
    idle, host = metering(world_size=2), metering(world_size=2)
    idle.start_fit(session.read(), metered_ranks=1)
    idle.start_epoch(0, session.read())
    idle_sums = idle.epoch_sums(0, session.read())
    assert idle_sums["missing"] == 0.0 and sum(idle_sums[c] for c in ("gpu", "cpu", "ram", "other")) == 0.0
    host.start_fit(Reading(0.0, {"cpu": 0.0}), metered_ranks=1)
    host.start_epoch(0, Reading(0.0, {"cpu": 0.0}))
    end = Reading(2.0, {"cpu": 30.0})
    summed = {k: v + idle_sums[k] for k, v in host.epoch_sums(0, end).items()}
    record = host.epoch_record(0, end, summed)
    assert (record.energy_j, record.missing, record.components_j["cpu"]) == (30.0, False, 30.0)
    # the first epoch's windows scale by the one rank that meters, not by the world size
    assert host.scaled_j(Reading(0.0, {"cpu": 0.0}), Reading(1.0, {"cpu": 10.0})) == 10.0
    session.close()
    assert session.read().joules == {}


# --------------------------------------------------------------- an epoch start read without waiting
def opening(time_s: float, gpu_j: float | None = None) -> Reading:
    """An epoch's start read while the host meter (``cpu``, ``ram``) is still opening."""
    joules = {} if gpu_j is None else {"gpu0": gpu_j}
    return Reading(time_s, joules, pending=frozenset({"cpu", "ram"}))


def test_take_reading_nowait_keeps_what_was_read_and_names_what_is_pending() -> None:
    assert take_reading_nowait(lambda: ({"gpu0": 5.0}, frozenset({"cpu"})), 1.0) == Reading(
        1.0, {"gpu0": 5.0}, pending=frozenset({"cpu"})
    )
    assert take_reading_nowait(lambda: ({}, frozenset({"cpu"})), 1.0) == Reading(
        1.0, {}, pending=frozenset({"cpu"})
    )
    assert take_reading_nowait(lambda: ({"gpu0": 5.0}, frozenset()), 1.0) == Reading(1.0, {"gpu0": 5.0})
    assert (
        take_reading_nowait(lambda: ({}, frozenset()), 1.0).problem == "meter.read() returned no components"
    )

    def broken() -> tuple[dict[str, float], frozenset[str]]:
        raise MeterError("bus error")

    assert take_reading_nowait(broken, 2.0) == Reading(2.0, None, "bus error")


def test_a_pending_component_is_settled_by_constant_power_from_the_baseline() -> None:
    base = Reading(0.0, {"cpu": 0.0, "ram": 0.0})
    later = Reading(4.0, {"cpu": 40.0, "ram": 8.0})
    start = settled(opening(1.0), base, later)
    assert start == Reading(1.0, {"cpu": 10.0, "ram": 2.0})  # a quarter of the way: a quarter of the joules
    with_gpu = settled(opening(1.0, gpu_j=7.0), base, later)
    assert with_gpu.joules == {"gpu0": 7.0, "cpu": 10.0, "ram": 2.0}  # what was read is kept as read
    assert settled(opening(1.0), base, Reading(4.0, None, "x")) == opening(1.0)  # nothing to settle from
    dropped = settled(
        opening(1.0, gpu_j=7.0),
        Reading(0.0, {"gpu0": 0.0, "cpu": 0.0, "ram": 0.0}),
        Reading(4.0, {"gpu0": 9.0}),
    )
    assert dropped == Reading(1.0, {"gpu0": 7.0})  # the host meter failed to open: left out, as later


def test_an_epoch_started_while_the_meter_opens_is_measured_from_the_settled_start() -> None:
    m = metering()
    m.start_fit(Reading(0.0, {"cpu": 0.0, "ram": 0.0}))  # the zero baseline
    m.start_epoch(0, opening(1.0))
    for t in (2.0, 3.0):
        m.batch_end(t, unit=None)
    end = Reading(5.0, {"cpu": 50.0, "ram": 5.0})  # 10 W + 1 W since the baseline
    sums = m.epoch_sums(0, end)
    assert (sums["cpu"], sums["ram"], sums["missing"]) == (pytest.approx(40.0), pytest.approx(4.0), 0.0)
    record = m.epoch_record(0, end, sums)
    assert record.energy_j == pytest.approx(44.0) and not record.missing
    assert m.fit_energy_j(end) == pytest.approx(55.0)  # the fit from its baseline, untouched


def test_the_first_window_settles_the_epoch_start_too() -> None:
    m = metering()
    m.start_fit(Reading(0.0, {"gpu0": 0.0, "cpu": 0.0}))
    m.start_epoch(0, Reading(2.0, {"gpu0": 3.0}, pending=frozenset({"cpu"})))
    for t in (3.0, 4.0):
        m.batch_end(t, unit=2)
    assert m.window_due
    window = m.close_window(0, Reading(4.0, {"gpu0": 13.0, "cpu": 20.0}))
    assert window.energy_j == pytest.approx(10.0 + 10.0)  # gpu 13 - 3, cpu 20 - 20 x 2 / 4
    assert m.epoch_start.reading == Reading(2.0, {"gpu0": 3.0, "cpu": 10.0})
    end = Reading(6.0, {"gpu0": 23.0, "cpu": 30.0})
    assert m.epoch_record(0, end, m.epoch_sums(0, end)).energy_j == pytest.approx(20.0 + 20.0)


def test_the_live_total_settles_the_start_and_a_missing_end_leaves_the_epoch_missing() -> None:
    m = metering()
    m.start_fit(Reading(0.0, {"cpu": 0.0}))
    m.start_epoch(0, Reading(1.0, {}, pending=frozenset({"cpu"})))
    assert m.live_total_j(None, Reading(2.0, {"cpu": 20.0})) == pytest.approx(10.0)
    m = metering()
    m.start_fit(Reading(0.0, {"cpu": 0.0}))
    m.start_epoch(0, Reading(1.0, {}, pending=frozenset({"cpu"})))
    end = Reading(2.0, None, "meter raised OSError: gone")
    record = m.epoch_record(0, end, m.epoch_sums(0, end))
    assert record.missing and record.reason == "meter raised OSError: gone"


def test_a_full_window_over_its_share_is_not_checked_at_every_batch() -> None:
    m = metering(refresh_s=1000.0)  # no bar refresh in sight: only the window schedules checks
    m.start_fit(reading(0.0, 0.0))
    m.start_epoch(0, reading(0.0, 0.0))
    now, checks = 0.0, 0
    for _ in range(4):  # the first window: 4 batches of 1 ms
        now += 0.001
        checks += 1
        m.batch_end(now, unit=4)
    assert m.window_due
    m.close_window(0, reading(now, 1.0))
    m.add_window_cost(0.001)  # affordable again once the fit is 2 s old: about 2000 batches from now
    for _ in range(3000):
        now += 0.001
        if m.window_due:
            break
        if m.batches < m.quiet_below:  # what the callback's hot path does
            m.batches += 1
        else:
            checks += 1
            m.batch_end(now, unit=4)
    assert m.window_due and now == pytest.approx(0.001 / WINDOW_TIME_SHARE, abs=0.07)
    assert checks < 4 + 2000 / MAX_QUIET_BATCHES + 5  # at most every 64 batches, not every batch
