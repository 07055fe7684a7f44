"""TensorBoard "Custom Scalars" layout: measured, projected (with its interval) and PRE energy on one chart.

The callback calls :func:`add_energy_layout` on rank 0 at fit start. TensorBoard is only touched through
the loggers the trainer already has; without a :class:`~lightning.pytorch.loggers.TensorBoardLogger` (or
without the tensorboard package) it does nothing.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING, Any

from lightning_energy import metric_names as M

if TYPE_CHECKING:
    import lightning.pytorch as pl

__all__ = ["CATEGORY", "add_energy_layout", "custom_scalars_layout"]

CATEGORY = "energy"
# Writers that already got the layout: TensorBoard's add_custom_scalars is meant to be called once per writer.
_DONE: weakref.WeakSet[Any] = weakref.WeakSet()


def custom_scalars_layout(prefix: str = "") -> dict[str, dict[str, list[Any]]]:
    """The layout for ``SummaryWriter.add_custom_scalars``, for the tags the callback logs.

    Args:
        prefix: the TensorBoardLogger's ``prefix``; Lightning then logs ``"<prefix>-energy/..."``.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string (the logger's prefix, '' for none); got {prefix!r}")

    def tag(name: str) -> str:
        """The exact tag (Margin charts need exact tags)."""
        return f"{prefix}-{name}" if prefix else name

    def lines(*names: str) -> list[str]:
        """Anchored regular expressions (Multiline charts match tags by regex)."""
        return [f"^{re.escape(tag(name))}$" for name in names]

    return {
        CATEGORY: {
            "run total kWh: measured so far, STEP projection, PRE estimate": [
                "Multiline",
                lines(M.TOTAL_KWH, M.PROJECTED_KWH, M.PRE_KWH),
            ],
            "STEP projected total kWh with its interval": [
                "Margin",
                [tag(M.PROJECTED_KWH), tag(M.PROJECTED_LOW_KWH), tag(M.PROJECTED_HIGH_KWH)],
            ],
            "measured kWh so far, by component": [
                "Multiline",
                lines(M.TOTAL_KWH, *M.CATEGORY_KWH.values()),
            ],
            "energy per epoch kWh": ["Multiline", lines(M.EPOCH_KWH)],
            "mean power per epoch W": ["Multiline", lines(M.EPOCH_POWER_W)],
            "CO2 kg: measured and projected": ["Multiline", lines(M.CO2_KG, M.PROJECTED_CO2_KG)],
        }
    }


def add_energy_layout(trainer: pl.Trainer) -> None:
    """Add :func:`custom_scalars_layout` to every TensorBoardLogger of ``trainer`` (once per writer)."""
    try:
        from lightning.pytorch.loggers import TensorBoardLogger
    except ImportError:  # pragma: no cover - lightning is a dependency
        return
    for logger in getattr(trainer, "loggers", None) or []:
        if not isinstance(logger, TensorBoardLogger):
            continue
        try:
            writer = logger.experiment  # imports tensorboard; fails when it is not installed
        except (ImportError, ModuleNotFoundError):
            return
        if writer is None or writer in _DONE or not hasattr(writer, "add_custom_scalars"):
            continue
        writer.add_custom_scalars(custom_scalars_layout(getattr(logger, "_prefix", "") or ""))
        _DONE.add(writer)


def try_add_energy_layout(trainer: pl.Trainer) -> str | None:
    """:func:`add_energy_layout`, returning a warning instead of raising (the chart is optional)."""
    try:
        add_energy_layout(trainer)
    except Exception as exc:  # TensorBoard's own errors vary by version; the chart is optional
        return f"could not add the TensorBoard energy chart: {exc}"
    return None
