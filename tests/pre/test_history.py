from __future__ import annotations

import os
import stat
import threading
import warnings
from pathlib import Path

import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import PreEstimator, RunHistory, calibrated_estimator

from .synthetic import synthetic_descriptors


def _record(path: Path, runs: int = 1) -> None:
    d = synthetic_descriptors(("T4",))[0]
    for _ in range(runs):
        RunHistory(path).append(d, epoch_energy_j=500.0, power_w=50.0, epoch_seconds=10.0, epochs=2)


def test_history_round_trip_and_concurrent_appends(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    descriptors = synthetic_descriptors(("T4",))[:8]

    def worker(k: int) -> None:
        history = RunHistory(path)
        for d in descriptors:
            history.append(d, epoch_energy_j=100.0 + k, power_w=50.0, epoch_seconds=2.0, epochs=3)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = RunHistory(path).runs()
    assert len(runs) == 32 and len(RunHistory(path)) == 32
    assert {r.descriptor for r in runs} == set(descriptors)
    assert runs[0].epochs == 3 and runs[0].epoch_seconds == pytest.approx(runs[0].epoch_energy_j / 50.0)
    assert not list(tmp_path.glob("*.lock"))
    with pytest.raises(EstimationError, match="power_w must be"):
        RunHistory(path).append(descriptors[0], epoch_energy_j=1.0, power_w=0.0, epoch_seconds=1.0, epochs=1)


def test_reading_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.sqlite"
    assert RunHistory(path).runs() == [] and len(RunHistory(path)) == 0
    assert not (tmp_path / "sub").exists()
    with pytest.raises(EstimationError, match="path must be"):
        RunHistory(123)  # type: ignore[arg-type]


def test_default_history_path_is_in_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lightning_energy.pre.history import default_history_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_history_path().name == "history.sqlite"
    assert "lightning_energy" in str(default_history_path())


def test_calibrated_estimator_uses_the_history(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    _record(path, runs=2)
    d = synthetic_descriptors(("T4",))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibrated = calibrated_estimator(path)
    assert calibrated.predict(d).calibration_runs == 2
    assert calibrated_estimator(False).predict(d) == PreEstimator.default().predict(d)
    with pytest.raises(TypeError, match="history_path"):
        calibrated_estimator(123)  # type: ignore[arg-type]


def test_corrupt_history_falls_back_with_one_warning_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    content = b"this is not a database" * 100
    path.write_bytes(content)
    d = synthetic_descriptors(("T4",))[0]
    with pytest.warns(UserWarning, match="cannot be used") as caught:
        estimator = calibrated_estimator(path)
    assert len(caught) == 1
    assert estimator.predict(d) == PreEstimator.default().predict(d)
    with pytest.raises(EstimationError, match="cannot be written"):
        RunHistory(path).append(d, epoch_energy_j=5.0, power_w=5.0, epoch_seconds=1.0, epochs=1)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.sqlite"]  # no journal or WAL file either


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_read_only_history_directory(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    _record(folder / "h.sqlite")
    empty = tmp_path / "ro_empty"
    empty.mkdir()
    d = synthetic_descriptors(("T4",))[0]
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    empty.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator = calibrated_estimator(folder / "h.sqlite")
        assert len(caught) <= 1  # a readable history is used; otherwise one warning and no calibration
        assert estimator.predict(d).calibration_runs in (0, 1)
        assert estimator.predict(d).epoch_energy_j > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no history yet in a read-only place: nothing to say
            assert calibrated_estimator(empty / "h.sqlite").predict(d) == PreEstimator.default().predict(d)
        with pytest.raises(EstimationError, match="cannot be written"):
            RunHistory(empty / "h.sqlite").append(
                d, epoch_energy_j=5.0, power_w=5.0, epoch_seconds=1.0, epochs=1
            )
    finally:
        folder.chmod(stat.S_IRWXU)
        empty.chmod(stat.S_IRWXU)


def test_unopenable_history_falls_back_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a read-only or unreadable place gives SQLite (also as root, where permissions do not apply)."""
    import sqlite3

    path = tmp_path / "h.sqlite"
    _record(path)
    before = path.read_bytes()

    def refuse(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("lightning_energy.pre.history.sqlite3.connect", refuse)
    d = synthetic_descriptors(("T4",))[0]
    with pytest.warns(UserWarning, match="unable to open database file") as caught:
        estimator = calibrated_estimator(path)
    assert len(caught) == 1 and estimator.predict(d) == PreEstimator.default().predict(d)
    with pytest.raises(EstimationError, match="cannot be written"):
        RunHistory(path).append(d, epoch_energy_j=5.0, power_w=5.0, epoch_seconds=1.0, epochs=1)
    assert path.read_bytes() == before
