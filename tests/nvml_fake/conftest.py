"""The real ``pynvml`` (nvidia-ml-py) against a fake ``libnvidia-ml.so.1`` compiled from ``fake_nvml.c``.

How the binding finds the library: on Linux, ``pynvml._LoadNvmlLibrary`` does ``CDLL("libnvidia-ml.so.1")``
at the first ``nvmlInit``. A name without a slash is resolved by the dynamic loader, which first looks among
the libraries already loaded into the process for one with that soname. So:

* in this process, the fixture loads the fake by absolute path (its soname is ``libnvidia-ml.so.1``) before
  the binding's first ``nvmlInit``; the binding then gets the fake, unpatched;
* in a subprocess, ``LD_LIBRARY_PATH`` pointing at the build folder does the same, exactly as for the driver.

The in-process tests skip where a real NVIDIA driver is installed (the fake would shadow it for the rest of
the test session); the subprocess test runs everywhere a C compiler exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

NO_DRIVER_SCRIPT = "init_error DRIVER_NOT_LOADED\n"


class FakeNvmlLibrary:
    """The compiled fake and its control functions (see the header of fake_nvml.c)."""

    def __init__(self, path: Path, scripts_dir: Path) -> None:
        self.path = path
        self.scripts_dir = scripts_dir
        self._lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        self._lib.fake_nvml_load.argtypes = [ctypes.c_char_p]
        self._lib.fake_nvml_set.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
        self._lib.fake_nvml_calls.argtypes = [ctypes.c_char_p]
        self._lib.fake_nvml_calls.restype = ctypes.c_long
        self._lib.fake_nvml_uninitialized_calls.restype = ctypes.c_long
        self._scripts = 0

    def write_script(self, text: str) -> Path:
        self._scripts += 1
        path = self.scripts_dir / f"script{self._scripts}.txt"
        path.write_text(text, encoding="utf-8")
        return path

    def script(self, text: str) -> None:
        """Replace the fake's devices and behaviour (and reset its call counters)."""
        status = self._lib.fake_nvml_load(str(self.write_script(text)).encode())
        assert status == 0, f"fake NVML rejected the script:\n{text}"

    def set(self, index: int, key: str, spec: str) -> None:
        """Replace one sequence (``energy``, ``power``, ``instant``) of GPU ``index``."""
        assert self._lib.fake_nvml_set(index, key.encode(), spec.encode()) == 0, (index, key, spec)

    def refcount(self) -> int:
        return int(self._lib.fake_nvml_refcount())

    def calls(self, function: str) -> int:
        return int(self._lib.fake_nvml_calls(function.encode()))

    def uninitialized_calls(self) -> int:
        return int(self._lib.fake_nvml_uninitialized_calls())


def _real_driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or ctypes.util.find_library("nvidia-ml") is not None


def _loaded_nvml_libraries() -> list[str]:
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return sorted({line.split()[-1] for line in maps.splitlines() if "libnvidia-ml" in line})


@pytest.fixture(scope="session")
def fake_nvml_session(fake_nvml_build: Path) -> Iterator[FakeNvmlLibrary]:
    """The fake loaded into this process, ahead of the real binding's ``CDLL("libnvidia-ml.so.1")``."""
    if _real_driver_present():
        pytest.skip(
            "a real NVIDIA driver is installed: the in-process fake would shadow it (subprocess test runs)"
        )
    loaded = [path for path in _loaded_nvml_libraries() if path != str(fake_nvml_build)]
    if loaded:
        pytest.skip(f"another libnvidia-ml is already loaded in this process: {loaded}")
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    # CodeCarbon calls nvmlInit when imported and never shuts down; let it do so now, before the fake is
    # loaded (as on a machine without a driver), so it cannot unbalance the fake's reference count.
    with contextlib.suppress(ImportError):
        import codecarbon.core.gpu_nvidia  # noqa: F401
    fake = FakeNvmlLibrary(fake_nvml_build, fake_nvml_build.parent)
    fake.script("gpu uuid=GPU-00000000-0000-0000-0000-000000000000\n")
    pynvml.nvmlInit()  # the binding loads its library now: it must be the fake
    try:
        assert pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(0)).startswith("GPU-0000")
    finally:
        pynvml.nvmlShutdown()
    assert fake.refcount() == 0
    yield fake
    fake.script(NO_DRIVER_SCRIPT)  # later tests in this session see "no driver", as before


@pytest.fixture
def fake_nvml(
    fake_nvml_session: FakeNvmlLibrary, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeNvmlLibrary]:
    """Per test: the real pynvml in sys.modules, no CUDA env, and NVML init/shutdown balanced at the end."""
    import pynvml

    monkeypatch.setitem(sys.modules, "pynvml", pynvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    fake_nvml_session.script(NO_DRIVER_SCRIPT)
    assert fake_nvml_session.refcount() == 0, "a previous test left NVML initialised"
    yield fake_nvml_session
    assert fake_nvml_session.refcount() == 0, "NVML init/shutdown unbalanced: a meter leaked an nvmlInit"
    assert fake_nvml_session.uninitialized_calls() == 0, "an NVML function was called after nvmlShutdown"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


class FakeClock:
    def __init__(self, t_s: float = 0.0) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s
