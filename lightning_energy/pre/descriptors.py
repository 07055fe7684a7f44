"""Descriptors of a training run: the model, the data, the GPU and the host (frozen, validated dataclasses).

Everything here is pure Python: no torch, no NVML. :mod:`lightning_energy.pre.describe` measures these
from a live Lightning run; :mod:`lightning_energy.pre.gaissa` builds them from the GAISSA tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from lightning_energy.errors import EstimationError

#: Lightning precision strings the estimator understands, normalised to these names.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
_PRECISION_ALIASES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed"}


def normalize_precision(precision: object) -> str:
    """Map a Lightning precision value (``32``, ``"16-mixed"``, ``"bf16"``, ...) to one of PRECISIONS."""
    text = str(precision).strip().lower()
    text = _PRECISION_ALIASES.get(text, text)
    if text not in PRECISIONS:
        raise EstimationError(f"precision must be one of {PRECISIONS} (or 32/16/bf16), got {precision!r}")
    return text


def _positive(name: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise EstimationError(f"{name} must be a finite number > 0, got {value!r}")


def _non_negative_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EstimationError(f"{name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class ModelDescriptor:
    """The model: forward FLOPs of one sample (2 FLOPs per multiply-add), size, input shape and precision."""

    forward_flops_per_sample: float
    input_shape: tuple[int, ...]
    precision: str = "32-true"
    parameter_count: int | None = None

    def __post_init__(self) -> None:
        _positive("forward_flops_per_sample", self.forward_flops_per_sample)
        shape = tuple(self.input_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in shape):
            raise EstimationError(
                f"input_shape must be a non-empty tuple of integers > 0, got {self.input_shape!r}"
            )
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "precision", normalize_precision(self.precision))
        if self.parameter_count is not None:
            _non_negative_int("parameter_count", self.parameter_count)

    @property
    def input_numel(self) -> int:
        """Number of input elements of one sample (e.g. 3 x 224 x 224)."""
        return math.prod(self.input_shape)


@dataclass(frozen=True)
class DataDescriptor:
    """The data of one epoch as seen by one device: batch size, samples and steps."""

    batch_size: int
    train_samples: int
    val_samples: int = 0
    steps_per_epoch: int | None = None
    val_steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        _non_negative_int("batch_size", self.batch_size)
        _non_negative_int("train_samples", self.train_samples)
        _non_negative_int("val_samples", self.val_samples)
        _positive("batch_size", self.batch_size)
        _positive("train_samples", self.train_samples)
        if self.steps_per_epoch is None:
            object.__setattr__(self, "steps_per_epoch", math.ceil(self.train_samples / self.batch_size))
        if self.val_steps_per_epoch is None:
            object.__setattr__(self, "val_steps_per_epoch", math.ceil(self.val_samples / self.batch_size))
        _non_negative_int("steps_per_epoch", self.steps_per_epoch)  # type: ignore[arg-type]
        _non_negative_int("val_steps_per_epoch", self.val_steps_per_epoch)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GpuDescriptor:
    """One GPU: datasheet figures (from the GPU table) or what NVML reports (``from_table=False``)."""

    name: str
    memory_gb: float
    tdp_w: float
    peak_fp32_tflops: float
    memory_bandwidth_gbs: float
    peak_tensor_tflops: float | None = None
    cuda_cores: int | None = None
    sm_count: int | None = None
    from_table: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise EstimationError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("memory_gb", "tdp_w", "peak_fp32_tflops", "memory_bandwidth_gbs"):
            _positive(field, getattr(self, field))
        if self.peak_tensor_tflops is not None:
            _positive("peak_tensor_tflops", self.peak_tensor_tflops)
        for field in ("cuda_cores", "sm_count"):
            value = getattr(self, field)
            if value is not None:
                _non_negative_int(field, value)


@dataclass(frozen=True)
class RunDescriptor:
    """Everything the estimator needs about a run: model, data, GPU and host RAM."""

    model: ModelDescriptor
    data: DataDescriptor
    gpu: GpuDescriptor
    host_ram_gb: float = 32.0

    def __post_init__(self) -> None:
        for field, kind in (("model", ModelDescriptor), ("data", DataDescriptor), ("gpu", GpuDescriptor)):
            if not isinstance(getattr(self, field), kind):
                raise EstimationError(
                    f"{field} must be a {kind.__name__}, got {type(getattr(self, field))!r}"
                )
        _positive("host_ram_gb", self.host_ram_gb)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RunDescriptor:
        """Rebuild a descriptor from :meth:`to_dict` output; raises EstimationError naming a missing field."""
        try:
            model = dict(data["model"])  # type: ignore[call-overload]
            model["input_shape"] = tuple(model["input_shape"])
            return cls(
                model=ModelDescriptor(**model),
                data=DataDescriptor(**dict(data["data"])),  # type: ignore[call-overload]
                gpu=GpuDescriptor(**dict(data["gpu"])),  # type: ignore[call-overload]
                host_ram_gb=float(data.get("host_ram_gb", 32.0)),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError) as exc:
            raise EstimationError(
                f"invalid run descriptor dict ({exc!r}); expected keys model, data, gpu"
            ) from exc


@dataclass(frozen=True)
class LabelledRun:
    """A run with its measured per-epoch energy and mean GPU power: a training example for the estimator."""

    descriptor: RunDescriptor
    epoch_energy_j: float
    power_w: float
    gpu_name: str
    architecture: str = "unknown"
    dataset: str = "unknown"

    def __post_init__(self) -> None:
        if not isinstance(self.descriptor, RunDescriptor):
            raise EstimationError(f"descriptor must be a RunDescriptor, got {type(self.descriptor)!r}")
        _positive("epoch_energy_j", self.epoch_energy_j)
        _positive("power_w", self.power_w)

    @property
    def epoch_seconds(self) -> float:
        """Epoch time implied by energy / power."""
        return self.epoch_energy_j / self.power_w
