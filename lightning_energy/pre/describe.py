"""Measure descriptors from a live Lightning run and estimate it (the only module here that uses torch).

torch is imported lazily inside the functions, so importing :mod:`lightning_energy.pre` stays cheap.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lightning_energy.errors import EstimationError
from lightning_energy.hardware import GpuInfo
from lightning_energy.pre.descriptors import DataDescriptor, ModelDescriptor, RunDescriptor
from lightning_energy.pre.fit import PreSummary, check_total_epochs
from lightning_energy.pre.gpus import gpu_from_nvml
from lightning_energy.pre.history import RunHistory
from lightning_energy.pre.model import PreEstimator
from lightning_energy.units import sig

log = logging.getLogger(__name__)


# the estimate of a whole fit, once a type of its own, is PreSummary (one type per concept): the old name
FitEstimate = PreSummary


def format_epochs(epochs: float) -> str:
    """``90`` for a whole number of epochs, else 3 significant figures (``2.50``)."""
    return str(int(epochs)) if float(epochs).is_integer() else sig(float(epochs))


@contextmanager
def preserved_state(module: Any) -> Iterator[None]:
    """Save and restore the python/numpy/torch/CUDA RNG states and every submodule's training flag."""
    import numpy as np
    import torch

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = (
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    )
    modes = [(m, m.training) for m in module.modules()]
    try:
        yield
    finally:
        for m, training in modes:
            m.train(training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _first_tensor(batch: Any) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        for value in batch.values():
            return _first_tensor(value)
    if isinstance(batch, (list, tuple)) and batch:
        return _first_tensor(batch[0])
    raise EstimationError(f"batch must contain a tensor (tensor, sequence or mapping), got {type(batch)!r}")


@contextmanager
def _attention_fast_path(enabled: bool) -> Iterator[None]:
    """Switch PyTorch's fused inference path of ``nn.MultiheadAttention``/``TransformerEncoderLayer`` (its
    single fused kernel is invisible to FlopCounterMode, which would count a transformer as 0 FLOPs)."""
    import torch

    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    previous = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(previous)


def _attention_formulas() -> dict[Any, Any]:
    """FLOP formulas for attention kernels FlopCounterMode does not know (the CPU flash kernel of SDPA)."""
    import torch
    from torch.utils.flop_counter import sdpa_flop_count

    def sdpa(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return int(sdpa_flop_count(query, key, value))

    formulas = {}
    names = (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_fused_attention_overrideable",
    )
    for name in names:
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            formulas[op] = sdpa
    return formulas


@dataclass(frozen=True)
class FlopBreakdown:
    """Forward FLOPs of one call: total and the part in convolutions (the rest: mm/bmm/attention)."""

    total: float
    conv: float

    @property
    def conv_fraction(self) -> float:
        return self.conv / self.total


def count_forward_flop_breakdown(module: Any, inputs: Any) -> FlopBreakdown:
    """Forward FLOPs of ``module(inputs)`` (2 per multiply-add) by FlopCounterMode, split by operator.

    Runs under no_grad, in eval mode, with RNG and training flags restored. ``inputs`` is a tensor or a
    tuple of positional arguments.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    args = inputs if isinstance(inputs, tuple) else (inputs,)
    with preserved_state(module), torch.no_grad(), _attention_fast_path(False):
        module.eval()
        counter = FlopCounterMode(display=False, custom_mapping=_attention_formulas())
        with counter:
            module(*args)
    return _breakdown(counter)


def _breakdown(counter: Any) -> FlopBreakdown:
    total = float(counter.get_total_flops())
    if total <= 0:
        raise EstimationError("forward_flops_per_sample: FlopCounterMode counted 0 FLOPs for this model")
    per_op = counter.get_flop_counts().get("Global", {})
    conv = float(sum(v for op, v in per_op.items() if "convolution" in str(op)))
    return FlopBreakdown(total, min(conv, total))


#: Op classes of the memory-traffic count (ModelDescriptor's ``*_bytes_per_sample`` fields).
TRAFFIC_CLASSES = ("matmul", "elementwise", "embedding", "attention")
_MATMUL_OPS = ("convolution", "mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "_conv")
_ATTENTION_OPS = ("scaled_dot_product", "flash_attention", "efficient_attention", "cudnn_attention")
_EMBEDDING_OPS = ("embedding", "index_select", "_embedding_bag", "gather", "index.Tensor")
#: Ops that move no data (views and splits into views), besides those torch marks ``is_view``.
_NO_TRAFFIC_OPS = ("split", "unbind", "chunk", "lift_fresh", "_to_copy")


def traffic_class(op_name: str) -> str | None:
    """The op class of an aten op name (``aten.addmm.default`` -> ``matmul``), None for data-free ops."""
    name = op_name.removeprefix("aten.")
    base = name.split(".")[0]
    if any(base.startswith(prefix) for prefix in _NO_TRAFFIC_OPS):
        return None
    if any(key in base for key in _ATTENTION_OPS):
        return "attention"
    if any(base == key or base.startswith(key + "_") or base.startswith(key) for key in _EMBEDDING_OPS):
        return "embedding"
    if base in _MATMUL_OPS or "convolution" in base:
        return "matmul"
    return "elementwise"


@dataclass(frozen=True)
class TrafficCount:
    """Bytes read and written by the ops of one call, by op class: activations (``activation_bytes``) and
    parameters and buffers (``parameter_bytes``; the module's own tensors and views of them)."""

    activation_bytes: Mapping[str, float]
    parameter_bytes: Mapping[str, float]
    kernels: int = 0  # data-moving ops counted (about the GPU kernels launched)

    def per_sample(self, batch: int) -> dict[str, float]:
        """Activation bytes per sample by class (parameter traffic is per step, not per sample)."""
        return {name: self.activation_bytes.get(name, 0.0) / batch for name in TRAFFIC_CLASSES}


@dataclass
class _Tally:
    """What the traffic mode adds up while ops run (made a TrafficCount afterwards)."""

    activation: dict[str, float]
    parameter: dict[str, float]
    kernels: int = 0

    def result(self) -> TrafficCount:
        return TrafficCount(dict(self.activation), dict(self.parameter), self.kernels)


def _traffic_mode(module: Any) -> tuple[Any, _Tally]:
    """A TorchDispatchMode that adds each op's traffic to the returned tally (see count_traffic)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    weights: dict[int, Any] = {id(t): t for t in (*module.parameters(), *module.buffers())}
    tally = _Tally(dict.fromkeys(TRAFFIC_CLASSES, 0.0), dict.fromkeys(TRAFFIC_CLASSES, 0.0))
    activation, parameter = tally.activation, tally.parameter

    def tensors(value: Any) -> list[Any]:
        if isinstance(value, torch.Tensor):
            return [value]
        if isinstance(value, (list, tuple)):
            return [t for item in value for t in tensors(item)]
        return []

    def size(t: Any) -> float:  # FP32-equivalent: 4 bytes per floating-point element, whatever the dtype
        return float(t.numel() * (4 if t.is_floating_point() else t.element_size()))

    class _Traffic(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            ins = tensors(list(args)) + tensors(list((kwargs or {}).values()))
            op_class = None if getattr(func, "is_view", False) else traffic_class(str(func))
            if op_class is None:
                if any(id(t) in weights for t in ins):
                    for t in tensors(out):
                        weights[id(t)] = t
                return out
            written = sum(size(t) for t in tensors(out))
            for t in ins:
                if id(t) in weights:  # a lookup reads only the rows it returns
                    parameter[op_class] += min(size(t), written) if op_class == "embedding" else size(t)
                else:
                    activation[op_class] += size(t)
            activation[op_class] += written
            tally.kernels += 1
            return out

    return _Traffic(), tally


def count_traffic(module: Any, inputs: Any, *, backward: bool = False) -> TrafficCount:
    """Bytes each aten op of ``module(inputs)`` reads and writes (its tensor arguments and results), by op
    class, under a TorchDispatchMode (works on meta tensors: no data, no GPU).

    Bytes are FP32-equivalent (4 per floating-point element whatever its dtype, so that 16-bit models are
    counted as the roofline table expects). Views (``view``, ``t``, ``permute``, ``split``...) move no data
    and are not counted. A tensor argument that is one of the module's parameters or buffers, or a view of
    one, counts as parameter traffic. Without ``backward`` the forward runs under no_grad in eval mode (RNG
    and training flags restored); with it, the forward runs in train mode and ``sum(output).backward()`` is
    counted too.
    """
    import torch

    args = inputs if isinstance(inputs, tuple) else (inputs,)
    mode, tally = _traffic_mode(module)
    with preserved_state(module), _attention_fast_path(False):
        if backward:
            module.train()
            with mode:
                output = _first_tensor(module(*args))
                output.float().sum().backward()
        else:
            module.eval()
            with torch.no_grad(), mode:
                module(*args)
    return tally.result()


def count_forward(module: Any, inputs: Any) -> tuple[FlopBreakdown, TrafficCount]:
    """FLOPs (as :func:`count_forward_flop_breakdown`) and traffic (as :func:`count_traffic`) of one forward
    pass of ``module(inputs)``: both counters on the same pass."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    args = inputs if isinstance(inputs, tuple) else (inputs,)
    mode, tally = _traffic_mode(module)
    with preserved_state(module), torch.no_grad(), _attention_fast_path(False):
        module.eval()
        counter = FlopCounterMode(display=False, custom_mapping=_attention_formulas())
        with counter, mode:
            module(*args)
    return _breakdown(counter), tally.result()


def count_forward_flops(module: Any, inputs: Any) -> float:
    """Total forward FLOPs of ``module(inputs)`` (see :func:`count_forward_flop_breakdown`)."""
    return count_forward_flop_breakdown(module, inputs).total


def describe_model(module: Any, example_input: Any, *, precision: object = "32-true") -> ModelDescriptor:
    """ModelDescriptor from one batch of input (first dimension = batch); TF32 as torch is set now."""
    import torch

    first = _first_tensor(example_input)
    if first.dim() < 1 or first.shape[0] < 1:
        raise EstimationError(
            f"example_input must have a batch dimension >= 1, got shape {tuple(first.shape)}"
        )
    batch = int(first.shape[0])
    flops, counted = count_forward(module, example_input)
    traffic = counted.per_sample(batch)
    params = sum(int(p.numel()) for p in module.parameters())
    trained = sum(int(p.numel()) for p in module.parameters() if p.requires_grad)
    shape = tuple(int(s) for s in first.shape[1:]) or (1,)
    return ModelDescriptor(
        flops.total / batch,
        shape,
        precision=str(precision),
        parameter_count=params,
        conv_flop_fraction=flops.conv_fraction,
        trainable_fraction=trained / params if params else None,
        matmul_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
        matmul_bytes_per_sample=traffic["matmul"],
        elementwise_bytes_per_sample=traffic["elementwise"],
        embedding_bytes_per_sample=traffic["embedding"],
        attention_bytes_per_sample=traffic["attention"],
        forward_kernels=counted.kernels,
    )


def host_ram_gb() -> float:
    """Total physical memory of the host in GB."""
    try:
        import psutil

        return float(psutil.virtual_memory().total) / 1e9
    except ImportError:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 1e9


def _train_loader(trainer: Any) -> Any:
    """The training loader Lightning set up (public from ``on_train_start`` on)."""
    loader = getattr(trainer, "train_dataloader", None)
    if loader is None:
        raise EstimationError(
            "trainer has no train dataloader to describe (describe the fit from on_train_start)"
        )
    return loader


def _val_loader(trainer: Any) -> Any | None:
    loaders = getattr(trainer, "val_dataloaders", None)
    if isinstance(loaders, list | tuple):
        return loaders[0] if loaders else None
    return loaders


def _limited(batches: int, limit: int | float) -> int:
    if isinstance(limit, int):
        return min(batches, limit)
    return int(batches * limit)


def _size(loader: Any, attribute: str) -> int:
    try:
        return len(getattr(loader, attribute))
    except TypeError as exc:
        raise EstimationError(
            f"the train dataloader's {attribute} has no len(); cannot count samples"
        ) from exc


def describe_data(trainer: Any, loader: Any, example_batch_size: int) -> DataDescriptor:
    """DataDescriptor of one device's share of an epoch."""
    world = max(int(getattr(trainer, "world_size", 1)), 1)
    batch_size = int(getattr(loader, "batch_size", None) or example_batch_size)
    train_total = math.ceil(_size(loader, "dataset") / world)
    steps = max(_limited(math.ceil(train_total / batch_size), trainer.limit_train_batches), 1)
    train_samples = max(min(steps * batch_size, train_total), 1)
    val = _val_loader(trainer)
    val_samples, val_steps = 0, 0
    if val is not None and getattr(trainer, "limit_val_batches", 1.0) != 0:
        val_batch = int(getattr(val, "batch_size", None) or batch_size)
        val_total = math.ceil(len(val.dataset) / world)
        val_steps = _limited(math.ceil(val_total / val_batch), trainer.limit_val_batches)
        val_samples = min(val_steps * val_batch, val_total)
    return DataDescriptor(batch_size, train_samples, val_samples, steps, val_steps)


def describe_fit(trainer: Any, pl_module: Any, gpu_info: GpuInfo | Mapping[str, object]) -> RunDescriptor:
    """RunDescriptor of the fit about to start: one real batch from the train dataloader."""
    import torch

    loader = _train_loader(trainer)
    with preserved_state(pl_module):
        batch = next(iter(loader))
    device = getattr(pl_module, "device", torch.device("cpu"))
    first = _first_tensor(batch).to(device)
    model = describe_model(pl_module, first, precision=getattr(trainer, "precision", "32-true"))
    data = describe_data(trainer, loader, int(first.shape[0]))
    return RunDescriptor(model=model, data=data, gpu=gpu_from_nvml(gpu_info), host_ram_gb=host_ram_gb())


def estimate_for_fit(
    trainer: Any,
    pl_module: Any,
    *,
    gpu_info: GpuInfo | Mapping[str, object],
    total_epochs: float,
    estimator: PreEstimator | None = None,
    history: RunHistory | None = None,
) -> PreSummary:
    """Descriptors and estimate of the fit about to train (called by EnergyCallback.on_train_start).

    The model's forward runs on the first tensor of one batch (``pl_module(x)``; token inputs keep their
    integer dtype). Raises EstimationError (or whatever the user's code raises); the caller catches
    everything so that training goes on.
    """
    check_total_epochs(total_epochs)
    descriptor = describe_fit(trainer, pl_module, gpu_info)
    model = estimator if estimator is not None else PreEstimator.default()
    if history is not None:
        model = model.calibrated(history)
    devices = max(int(getattr(trainer, "world_size", 1)), 1)
    return PreSummary.of_fit(descriptor, model.predict(descriptor), total_epochs, devices)
