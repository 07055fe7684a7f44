"""What the GPU visit runs, how long each part should take, and the time budget that skips what would not end.

Pure (no torch, no Lightning, no NVML): ``visit.py`` runs the plan, the tests check it with a fake clock, and
``python benchmarks/gpu/visit.py --plan`` prints it.

The estimate of a stage comes from its settings and a few per-machine constants (:class:`Timing`): a
recording is a probe fit (``probe_s`` of epochs) plus the recording's fit, ``epochs`` x ``epoch_s`` x
``margin`` of training; every ``trainer.fit`` also costs ``fit_s`` (model build, Trainer, PRE's FLOP count,
teardown). :data:`H100` holds guesses for an H100/H200 (there has been no GPU to time them on yet), on the
pessimistic side; the command's own ``--budget-s`` is what keeps it inside the machine's 10-minute limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: The planned epoch at which ``finetune`` unfreezes its backbone (a step up in power and epoch time).
FINETUNE_UNFREEZE_EPOCH = 4


@dataclass(frozen=True)
class Timing:
    """Per-machine constants of the estimate, in seconds."""

    start_s: float  # interpreter, torch, Lightning, CUDA context
    check_s: float  # the NVML check (capped at a minute on a GPU)
    fit_s: float  # fixed cost of one trainer.fit
    probe_s: float  # the probe's two short epochs
    epoch_s: float  # target length of one training epoch
    margin: float  # epochs last longer than the probe says (boundary reads, the callback, clocks)

    def __post_init__(self) -> None:
        for name in ("start_s", "check_s", "fit_s", "probe_s", "epoch_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.margin >= 1:
            raise ValueError(f"margin must be >= 1, got {self.margin!r}")


#: An H100/H200 (guesses, see the module doc).
H100 = Timing(start_s=15.0, check_s=40.0, fit_s=5.0, probe_s=6.0, epoch_s=5.0, margin=1.15)
#: The CPU dry run: tiny models, epochs of a few steps.
DRY_RUN = Timing(start_s=5.0, check_s=5.0, fit_s=1.5, probe_s=0.5, epoch_s=0.05, margin=1.15)


@dataclass(frozen=True)
class Stage:
    """One part of the visit, after the NVML check: a recording or the overhead runs of a workload."""

    name: str  # also the trace's file stem for a recording
    kind: str  # "record" or "overhead"
    workload: str
    epochs: int  # per fit
    fits: int = 1  # fits after the probe (overhead: without, with, with, without)
    unfreeze_epoch: int | None = None

    def estimate_s(self, timing: Timing) -> float:
        """Seconds this stage should take: the probe fit, then ``fits`` fits of ``epochs`` epochs."""
        probe = timing.fit_s + timing.probe_s
        return probe + self.fits * (timing.fit_s + self.epochs * timing.epoch_s * timing.margin)


#: The visit, most valuable first (a budget cut drops the end). Ten epochs give STEP six to declare in
#: (it needs min(10, 60 % of the planned epochs)) and four to be checked on; the planned step needs twelve.
STAGES: tuple[Stage, ...] = (
    Stage("resnet50", "record", "resnet50", epochs=10),
    Stage("transformer_bf16", "record", "transformer_bf16", epochs=10),
    Stage("mobilenet_v2", "record", "mobilenet_v2", epochs=10),
    Stage("finetune", "record", "finetune", epochs=12, unfreeze_epoch=FINETUNE_UNFREEZE_EPOCH),
    Stage("overhead_mlp", "overhead", "mlp", epochs=2, fits=4),
)


def total_estimate_s(timing: Timing, stages: tuple[Stage, ...] = STAGES) -> float:
    """The whole visit: start, NVML check and every stage."""
    return timing.start_s + timing.check_s + sum(stage.estimate_s(timing) for stage in stages)


def plan_table(timing: Timing, stages: tuple[Stage, ...] = STAGES) -> str:
    """The plan as a Markdown table with each stage's estimate and the running total."""
    lines = ["| stage | what | epochs x fits | estimate s | ends by s |", "|---|---|---|---|---|"]
    running = timing.start_s + timing.check_s
    lines.append(f"| start + nvml_check | interpreter, CUDA, NVML check | | {running:.0f} | {running:.0f} |")
    for stage in stages:
        estimate = stage.estimate_s(timing)
        running += estimate
        fits = f"{stage.epochs} x {stage.fits}" + (
            " (+ probe)" if stage.kind == "record" else " (+ probe, ABBA)"
        )
        lines.append(
            f"| {stage.name} | {stage.kind} {stage.workload} | {fits} | {estimate:.0f} | {running:.0f} |"
        )
    return "\n".join(lines)


class Budget:
    """Whether a stage of a given estimate would end within ``budget_s`` of ``started`` (``clock``'s time)."""

    def __init__(self, budget_s: float, *, clock: Callable[[], float], started: float | None = None) -> None:
        if not budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s!r}")
        self.budget_s = budget_s
        self._clock = clock
        self.started = clock() if started is None else started

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self.started

    def fits(self, estimate_s: float) -> bool:
        return self.elapsed_s + estimate_s <= self.budget_s

    def why_not(self, estimate_s: float) -> str:
        """The line naming why a stage of ``estimate_s`` is skipped."""
        return (
            f"skipped (time budget): needs about {estimate_s:.0f} s, {self.elapsed_s:.0f} s of "
            f"--budget-s {self.budget_s:g} used"
        )
