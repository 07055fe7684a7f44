"""Several meters as one: GPU + host, for instance."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from lightning_energy.errors import MeterError
from lightning_energy.meters.base import EnergyMeter, MarkEvent, MeterLabel, as_meter

__all__ = ["CompositeMeter"]


class CompositeMeter(EnergyMeter):
    """Merges the component readings, labels and hardware of its meters.

    Args:
        meters: the meters, as a sequence (named by class name, numbered when repeated) or a mapping
            name -> meter. Component names must not collide.

    Raises:
        ValueError: no meters, or two meters declare the same component in their labels.
    """

    def __init__(self, meters: Sequence[object] | Mapping[str, object]) -> None:
        raw = dict(meters) if isinstance(meters, Mapping) else _name_meters(meters)
        if not raw:
            raise ValueError("meters must hold at least one meter, got none")
        named: dict[str, EnergyMeter] = {}
        for name, meter in raw.items():
            try:
                named[name] = as_meter(meter)
            except TypeError as err:
                raise TypeError(f"meters[{name!r}]: {err}") from err
        self.meters: dict[str, EnergyMeter] = named
        owners: dict[str, str] = {}
        for name, meter in named.items():
            for component in meter.labels:
                if component in owners:
                    raise ValueError(
                        f"meters: component {component!r} is reported by both "
                        f"{owners[component]!r} and {name!r}"
                    )
                owners[component] = name
        self._closed = False

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        merged: dict[str, MeterLabel] = {}
        for meter in self.meters.values():
            merged.update(meter.labels)
        return merged

    @property
    def hardware(self) -> Mapping[str, object]:
        merged: dict[str, object] = {}
        for name, meter in self.meters.items():
            for key, value in meter.hardware.items():
                merged[key if key not in merged else f"{name}.{key}"] = value
        return merged

    @property
    def problems(self) -> list[str]:
        return [f"{name}: {problem}" for name, meter in self.meters.items() for problem in meter.problems]

    def read(self) -> Mapping[str, float]:
        """Merged cumulative joules. A failing meter raises MeterError naming it."""
        return self._merged({name: meter.read for name, meter in self.meters.items()})

    def read_nowait(self) -> tuple[Mapping[str, float], frozenset[str]]:
        """:meth:`read` of the meters that are open; the components of those still opening, by name."""
        opening: set[str] = set()

        def reader(meter: EnergyMeter) -> Callable[[], Mapping[str, float]]:
            def read() -> Mapping[str, float]:
                joules, still_opening = meter.read_nowait()
                opening.update(still_opening)
                return joules

            return read

        merged = self._merged({name: reader(meter) for name, meter in self.meters.items()})
        return merged, frozenset(opening)

    @staticmethod
    def _merged(reads: Mapping[str, Callable[[], Mapping[str, float]]]) -> dict[str, float]:
        merged: dict[str, float] = {}
        owners: dict[str, str] = {}
        for name, read in reads.items():
            try:
                reading = read()
            except Exception as err:
                raise MeterError(f"meter {name!r} failed: {err}") from err
            for component, joules in reading.items():
                if component in owners:
                    raise MeterError(
                        f"component {component!r} is reported by both {owners[component]!r} and {name!r}"
                    )
                owners[component] = name
                merged[component] = joules
        return merged

    def mark(self, event: MarkEvent, epoch: int) -> None:
        for meter in self.meters.values():
            meter.mark(event, epoch)

    def synchronize(self) -> None:
        for meter in self.meters.values():
            meter.synchronize()

    def power_samples(self) -> list[tuple[float, float]]:
        """The power samples of the meters (in practice only the GPU meter samples), drained.

        When several meters sample power, their samples are concatenated, not summed: keep one sampling meter
        per composite if the samples are to be integrated.
        """
        samples: list[tuple[float, float]] = []
        for meter in self.meters.values():
            samples.extend(meter.power_samples())
        return samples

    def close(self) -> None:
        """Close every meter, even if some fail; then raise MeterError naming the failed ones. Idempotent."""
        if self._closed:
            return
        self._closed = True
        failures: list[str] = []
        for name, meter in self.meters.items():
            try:
                meter.close()
            except Exception as err:
                failures.append(f"{name!r}: {err}")
        if failures:
            raise MeterError(f"closing meters failed: {'; '.join(failures)}")


def _name_meters(meters: Sequence[object]) -> dict[str, object]:
    named: dict[str, object] = {}
    for meter in meters:
        base = type(meter).__name__
        name, n = base, 1
        while name in named:
            n += 1
            name = f"{base}{n}"
        named[name] = meter
    return named
