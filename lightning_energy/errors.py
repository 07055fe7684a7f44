"""Exceptions of lightning_energy.

The tree::

    EnergyError                 base of everything this package raises on purpose
    ├── MeterError              a meter could not produce a reading (vendor errors are translated to this)
    │   └── MeterUnavailable    the hardware or library behind a meter is absent (no NVML, no GPU, ...)
    ├── ProjectionError         bad input to the STEP projector (also a ValueError)
    ├── StateError              a saved state (a checkpoint's) that cannot be read (also a ValueError)
    └── EstimationError         the PRE estimator cannot estimate (bad descriptor, missing column, ...)

Bad constructor arguments raise ``ValueError``/``TypeError`` naming the argument, the allowed values and
what was given.
"""

from __future__ import annotations


class EnergyError(Exception):
    """Base class of the exceptions raised by lightning_energy."""


class MeterError(EnergyError):
    """A meter could not produce a reading."""


class MeterUnavailable(MeterError):
    """The hardware or library behind a meter is not available on this machine."""


class ProjectionError(EnergyError, ValueError):
    """Invalid input to the STEP projector."""


class StateError(EnergyError, ValueError):
    """A saved state (from a checkpoint) that is damaged or that this version cannot read."""


class EstimationError(EnergyError, ValueError):
    """The PRE estimator cannot produce an estimate for this input."""
