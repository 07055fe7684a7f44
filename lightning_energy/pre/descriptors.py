"""Descriptors of a training run: the model, the data, the GPU and the host (frozen, validated dataclasses).

Everything here is pure Python: no torch, no NVML. :mod:`lightning_energy.pre.describe` measures these
from a live Lightning run; ``tools/gaissa.py`` builds them from the GAISSA tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lightning_energy._validate import is_number
from lightning_energy.errors import EstimationError

#: Lightning precision strings the estimator understands, normalised to these names.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
#: The optional memory-traffic fields of ModelDescriptor, one per op class.
TRAFFIC_FIELDS = (
    "matmul_bytes_per_sample",
    "elementwise_bytes_per_sample",
    "embedding_bytes_per_sample",
    "attention_bytes_per_sample",
)
_PRECISION_ALIASES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed"}
#: Board classes (``GpuDescriptor.board_class``): data-centre/server boards (SXM modules, passively cooled
#: PCIe cards built for a server's airflow) and consumer/workstation boards (fan-cooled cards). The power
#: curve of a data-centre board carries the class shift fitted on data-centre rows (docs/pre.md).
BoardClass = Literal["data-centre", "consumer"]
DATA_CENTRE: BoardClass = "data-centre"
CONSUMER: BoardClass = "consumer"
BOARD_CLASSES: tuple[BoardClass, ...] = (DATA_CENTRE, CONSUMER)
#: Name families of consumer/workstation boards and of data-centre boards (``infer_board_class``).
_CONSUMER_WORDS = frozenset({"geforce", "gtx", "rtx", "quadro", "titan"})
_DATA_CENTRE_NAME = re.compile(r"\b(tesla|sxm\d*|hbm\d*e?|[abhklmptv]\d{1,3}[sg]?|g[hb]\d{3})\b")


def normalize_precision(precision: object) -> str:
    """Map a Lightning precision value (``32``, ``"16-mixed"``, ``"bf16"``, ...) to one of PRECISIONS."""
    text = str(precision).strip().lower()
    text = _PRECISION_ALIASES.get(text, text)
    if text not in PRECISIONS:
        raise EstimationError(f"precision must be one of {PRECISIONS} (or 32/16/bf16), got {precision!r}")
    return text


def _positive(name: str, value: float) -> None:
    if not is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise EstimationError(f"{name} must be a finite number > 0, got {value!r}")


def _fraction(name: str, value: float | None) -> None:
    if value is not None and (not is_number(value) or not 0.0 <= float(value) <= 1.0):
        raise EstimationError(f"{name} must be a number in [0, 1] or None, got {value!r}")


def _non_negative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EstimationError(f"{name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class ModelDescriptor:
    """The model: forward FLOPs of one sample (2 FLOPs per multiply-add), size, input shape and precision.

    ``conv_flop_fraction``: share of the forward FLOPs in convolutions (the rest is matmul/attention), which
    places the model between the two workload families of the throughput table; None = inferred from the
    input shape (image-like inputs with >= 3 dimensions: 1.0, else 0.0). ``trainable_fraction``: share of
    the parameters that are trained (a frozen backbone skips most of the backward pass); None = 1.0.
    ``matmul_tf32``: whether FP32 matrix multiplications run on TF32 tensor cores
    (``torch.backends.cuda.matmul.allow_tf32``, set by ``torch.set_float32_matmul_precision("high")``);
    None = PyTorch's default, off. It matters only at ``32-true`` on GPUs with TF32 (Ampere and newer).

    Memory traffic (optional, counted by :func:`lightning_energy.pre.describe.count_traffic`): bytes the
    forward pass of one sample reads and writes in activations, counted at FP32, by op class:
    ``matmul_bytes_per_sample`` (convolutions and matrix products), ``elementwise_bytes_per_sample``
    (activations, normalisation, pooling, losses, copies), ``embedding_bytes_per_sample`` (lookups) and
    ``attention_bytes_per_sample`` (fused attention kernels). Parameter traffic (weights, gradients,
    optimizer state) comes from ``parameter_count``. None: not counted; the estimator infers the traffic
    from the FLOPs and widens the interval by that rule's error. ``forward_kernels``: the data-moving aten
    ops of one forward pass of a batch (about the GPU kernels it launches); a training step launches about
    three times as many, each costing the launch latency fitted on Lambda's workloads. None: not counted
    (only the per-step overhead applies).
    """

    forward_flops_per_sample: float
    input_shape: tuple[int, ...]
    precision: str = "32-true"
    parameter_count: int | None = None
    conv_flop_fraction: float | None = None
    trainable_fraction: float | None = None
    matmul_tf32: bool | None = None
    matmul_bytes_per_sample: float | None = None
    elementwise_bytes_per_sample: float | None = None
    embedding_bytes_per_sample: float | None = None
    attention_bytes_per_sample: float | None = None
    forward_kernels: int | None = None

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
        _fraction("conv_flop_fraction", self.conv_flop_fraction)
        _fraction("trainable_fraction", self.trainable_fraction)
        if self.matmul_tf32 is not None and not isinstance(self.matmul_tf32, bool):
            raise EstimationError(f"matmul_tf32 must be True, False or None, got {self.matmul_tf32!r}")
        if self.forward_kernels is not None:
            _non_negative_int("forward_kernels", self.forward_kernels)
        for name in TRAFFIC_FIELDS:
            value = getattr(self, name)
            if value is not None and (
                not is_number(value) or not math.isfinite(float(value)) or float(value) < 0
            ):
                raise EstimationError(f"{name} must be a finite number >= 0 or None, got {value!r}")

    @property
    def traffic_counted(self) -> bool:
        """True when the memory traffic was counted (all four ``*_bytes_per_sample`` fields given)."""
        return all(getattr(self, name) is not None for name in TRAFFIC_FIELDS)

    @property
    def forward_bytes_per_sample(self) -> float | None:
        """Total counted forward activation traffic of one sample (bytes at FP32), or None."""
        if not self.traffic_counted:
            return None
        return float(sum(float(getattr(self, name)) for name in TRAFFIC_FIELDS))

    @property
    def input_numel(self) -> int:
        """Number of input elements of one sample (e.g. 3 x 224 x 224, or the sequence length of tokens)."""
        return math.prod(self.input_shape)

    @property
    def conv_share(self) -> float:
        """``conv_flop_fraction``, or 1.0 for image-like inputs (>= 3 dimensions) and 0.0 otherwise."""
        if self.conv_flop_fraction is not None:
            return float(self.conv_flop_fraction)
        return 1.0 if len(self.input_shape) >= 3 else 0.0

    @property
    def trainable_share(self) -> float:
        """``trainable_fraction``, or 1.0 (every parameter trained)."""
        return 1.0 if self.trainable_fraction is None else float(self.trainable_fraction)


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
        _non_negative_int("steps_per_epoch", self.steps_per_epoch)
        _non_negative_int("val_steps_per_epoch", self.val_steps_per_epoch)


def infer_board_class(name: str) -> BoardClass:
    """The board class of a GPU known only by its name (not in the table, or a descriptor built without a
    class): ``DATA_CENTRE`` when the name holds a data-centre family (``Tesla``, ``SXM``, ``HBM``, or a bare
    model number such as A30, A100, H100, L40S, T4, GH200) and no consumer/workstation family (``GeForce``,
    ``GTX``, ``RTX``, ``Quadro``, ``Titan``); else ``CONSUMER``, the default (the curve fitted on consumer
    boards)."""
    text = re.sub(r"[^a-z0-9]+", " ", str(name).lower())
    if _CONSUMER_WORDS & set(text.split()):
        return CONSUMER
    return DATA_CENTRE if _DATA_CENTRE_NAME.search(text) else CONSUMER


@dataclass(frozen=True)
class GpuDescriptor:
    """One GPU: datasheet figures (from the GPU table) or what NVML reports (``from_table=False``).

    ``board_class``: ``DATA_CENTRE`` or ``CONSUMER`` (``BOARD_CLASSES``; the table sets it from the board's
    form factor); None: inferred from the name (``infer_board_class``), see :attr:`power_class`."""

    name: str
    memory_gb: float
    tdp_w: float
    peak_fp32_tflops: float
    memory_bandwidth_gbs: float
    peak_tensor_tflops: float | None = None
    cuda_cores: int | None = None
    sm_count: int | None = None
    from_table: bool = True
    architecture: str | None = None
    board_class: BoardClass | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise EstimationError(f"name must be a non-empty string, got {self.name!r}")
        if self.board_class is not None and self.board_class not in BOARD_CLASSES:
            raise EstimationError(
                f"board_class must be one of {BOARD_CLASSES} or None, got {self.board_class!r}"
            )
        for field in ("memory_gb", "tdp_w", "peak_fp32_tflops", "memory_bandwidth_gbs"):
            _positive(field, getattr(self, field))
        if self.peak_tensor_tflops is not None:
            _positive("peak_tensor_tflops", self.peak_tensor_tflops)
        for field in ("cuda_cores", "sm_count"):
            value = getattr(self, field)
            if value is not None:
                _non_negative_int(field, value)
        if self.architecture is not None and not isinstance(self.architecture, str):
            raise EstimationError(f"architecture must be a string or None, got {self.architecture!r}")

    @property
    def power_class(self) -> BoardClass:
        """``board_class``, or the class its name implies (``infer_board_class``)."""
        return self.board_class if self.board_class is not None else infer_board_class(self.name)


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
    def from_dict(cls, data: Mapping[str, Any]) -> RunDescriptor:
        """Rebuild a descriptor from :meth:`to_dict` output; raises EstimationError naming a missing field."""
        try:
            model = dict(data["model"])
            model["input_shape"] = tuple(model["input_shape"])
            return cls(
                model=ModelDescriptor(**model),
                data=DataDescriptor(**dict(data["data"])),
                gpu=GpuDescriptor(**dict(data["gpu"])),
                host_ram_gb=float(data.get("host_ram_gb", 32.0)),
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
