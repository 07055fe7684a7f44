"""Exceptions of lightning_energy.

The tree::

    EnergyError                 base of everything this package raises on purpose
    ├── MeterError              a meter could not produce a reading (vendor errors are translated to this)
    │   └── MeterUnavailable    the hardware or library behind a meter is absent (no NVML, no GPU, ...)
    ├── ProjectionError         bad input to the STEP projector (also a ValueError)
    ├── StateError              a saved state (a checkpoint's) that cannot be read (also a ValueError)
    │   └── RunStateError       the run's own checkpointed state
    ├── EstimationError         the PRE estimator cannot estimate (bad descriptor, missing column, ...)
    ├── CarbonDataError         CodeCarbon's per-country data cannot be found or read
    ├── TraceFormatError        a trace file is not a valid trace (also a ValueError)
    └── ReportError             a report cannot be found, read or understood

Each is also importable from the module that raises it (``run``, ``carbon``, ``meters.trace``,
``report_model``), where it lived before.

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


class CarbonDataError(EnergyError):
    """CodeCarbon's per-country data cannot be found or read."""


class TraceFormatError(EnergyError, ValueError):
    """A trace file is not a valid lightning_energy trace."""


class RunStateError(StateError):
    """Saved run state (from a checkpoint) that this version cannot read, or that is damaged."""


class ReportError(EnergyError):
    """A report cannot be found, read or understood. The message says which file and what to do."""
