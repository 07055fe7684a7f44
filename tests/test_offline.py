"""The package is offline and free of side effects: no network, no hardware at import, no logging set-up."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, so that nothing imported by the test session interferes."""
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_import_touches_no_hardware_and_does_not_import_codecarbon() -> None:
    # torch itself imports the pynvml module; what matters is that nothing calls into NVML
    code = (
        "import sys, types, logging\n"
        "calls = []\n"
        "class FakeNvml(types.ModuleType):\n"
        "    def __getattr__(self, name):\n"
        "        if name.startswith('nvml'):\n"
        "            return lambda *a, **k: calls.append(name)\n"
        "        raise AttributeError(name)\n"
        "sys.modules['pynvml'] = FakeNvml('pynvml')\n"
        "import lightning_energy\n"
        "from lightning_energy import EnergyCallback, StepProjector, PreEstimator, FakeMeter\n"
        "EnergyCallback(meter=FakeMeter({'gpu0': 1.0}))\n"
        "assert 'codecarbon' not in sys.modules\n"
        "assert calls == [], calls\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n"
        "print('ok')\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_pure_core_imports_neither_torch_nor_lightning() -> None:
    code = (
        "import sys\n"
        "import lightning_energy.step, lightning_energy.accounting\n"
        "bad = sorted(m for m in ('torch', 'lightning') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr


@pytest.mark.timeout(300)
def test_quickstart_opens_no_network_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import quickstart
    finally:
        sys.path.pop(0)
    root_handlers = list(logging.getLogger().handlers)
    report = quickstart.main(
        ["--epochs", "3", "--train-samples", "256", "--out", str(tmp_path), "--no-history", "--country", "FR"]
    )
    assert attempts == []
    assert logging.getLogger().handlers == root_handlers  # the package configures no logging
    printed = capsys.readouterr().out
    assert "measured " in printed and "projected " in printed and "Wh" in printed
    assert report.status == "complete"
    assert report.carbon is not None and report.carbon.intensity.country_iso3 == "FRA"
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert "energy_report.json" in written and "energy_epochs.csv" in written
    assert not [name for name in written if name.endswith(".lock")]
    assert json.loads(next(tmp_path.rglob("energy_report.json")).read_text())["totals"]["energy_j"] > 0
