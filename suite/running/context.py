"""What the runner hands a trainer (RunContext) and what a trainer returns (TrainResult).

A trainer is a function `train(task, ctx) -> TrainResult`: the supervised
loop (`suite.training.loop.train_supervised`) and the RL algorithms (`suite.training.rl`)
share the runner's seeding, device, timing, memory and record through
these two types, and one eval-point routine (`EvalPoints`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from suite.taskapi.spec import Target


@dataclass
class RunContext:
    device: torch.device
    precision: str  # "bf16" | "fp32"
    compile: bool
    generator: torch.Generator  # seeded CPU generator for data order
    seed: int
    # Capture each training step in a CUDA graph (suite.training.graphs); the runner allows it on CUDA only.
    cuda_graphs: bool = False
    rank: int = 0
    world_size: int = 1
    max_time_s: float | None = None  # overrides the budget's cap when set
    max_steps: int | None = None  # overrides the budget's step / env-step count when set
    # False: train the whole budget even after the target is met (studies: quality at a fixed budget);
    # time-to-target is still noted the first time the target is met.
    stop_at_target: bool = True
    log: Callable[[str], None] = print
    # torch.cuda.set_sync_debug_mode inside train steps ("warn" | "error"; None: off). Set from
    # $DLBENCH_SYNC_DEBUG by the runner; tests/test_cuda.py uses it to prove steps never wait on the host.
    sync_debug: str | None = None
    # A dict: RL trainers add seconds per phase of an iteration to it (suite.measuring.timing.PhaseTimer; acting,
    # storage, GAE, update); bench/ppo_vs_sb3.py's profile. None: no timers.
    phase_times: dict[str, float] | None = None
    # The trainer fills this in as it goes, so a run cut short (Ctrl-C, a crash)
    # still leaves its partial figures for the record.
    result: "TrainResult" = field(default_factory=lambda: TrainResult())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return (self.rank, self.world_size)


@dataclass
class TrainResult:
    status: str = "ok"  # ok | diverged
    error: str | None = None
    reached_target: bool = False
    # Four clocks at the evaluation that first met the target (docs/methodology.md names each rule):
    time_to_target_s: float | None = None  # train segments only
    time_to_target_with_eval_s: float | None = None  # train + evaluation segments
    submission_time_to_target_s: float | None = None  # train + warm-up/compilation (AlgoPerf's submission time)
    wall_to_target_s: float | None = None  # first touch of the data to the end of that evaluation, never paused
    steps_to_target: int | None = None  # optimizer steps, or env steps for RL
    energy_to_target_j: float | None = None  # joules of the train segments to that evaluation (suite.measuring.energy)
    seconds_per_step: float | None = None  # train time per unit of `steps_to_target`
    eval_cadence: dict[str, Any] | None = None  # {"every": N, "unit": "samples" | "env_steps"}
    best: dict[str, Any] | None = None  # trained to the budget: the best evaluation and the test figures there
    data_s: float = 0.0
    train_time_s: float = 0.0
    warmup_s: float = 0.0
    eval_time_s: float = 0.0
    steps: int = 0
    samples: int = 0
    # {"value": float, "unit": "samples/s", "extra": {"tokens/s": float, ...}}
    throughput: dict[str, Any] | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    params: int | None = None
    flops_per_sample: float | None = None
    flops_method: str | None = None  # how flops_per_sample was counted
    speed: dict[str, Any] | None = None  # the speed profile's step times and counts (suite.measuring.speed)
    stop_reason: str = ""  # target | budget | time | diverged
    data_info: dict[str, Any] = field(default_factory=dict)
    # CPU threads torch trained on, where the trainer set its own (an RL recipe's torch_threads); None: the
    # process's count, which the record's host.torch_threads then reads
    torch_threads: int | None = None


class EvalPoints:
    """The eval-point routine every loop shares (supervised, PPO, DQN), written once.

    Between eval points the loop hands each step's loss to `add` (summed on
    the device: no host sync on GPU; on CPU, where a sync is free, a
    non-finite loss is caught at once). At an eval point `train_loss` averages
    the losses since the last one (one sync) and marks the run diverged when
    that average is not finite; `record` appends the curve point and notes
    the first time the target is met, with every clock read from the run's
    `SegmentClock`; `stop_reason` says whether to stop. `track_best` keeps
    the best point on the target metric (training to the budget).
    """

    def __init__(self, target: Target | None, result: TrainResult, device: torch.device,
                 stop_at_target: bool = True):
        self.target, self.result = target, result
        self.stop_at_target = stop_at_target
        self.loss_sum = torch.zeros((), device=device)
        self.loss_count = 0
        self.check_every_step = device.type == "cpu"  # a host sync is free on CPU, costly on GPU
        self.best_value: float | None = None

    def add(self, loss: torch.Tensor) -> bool:
        """Add one step's loss; True when it is known to be non-finite already (CPU only)."""
        loss = loss.detach()
        self.loss_sum += loss
        self.loss_count += 1
        return self.check_every_step and not math.isfinite(loss.item())

    def train_loss(self, diverged: bool, where: str) -> float | None:
        """Mean loss since the last eval point (and reset); None, with the run marked diverged, when not finite.

        `where` completes the error, e.g. "at step 12" or "after 4096 env steps".
        """
        mean = (self.loss_sum / max(1, self.loss_count)).item()
        self.loss_sum.zero_()
        self.loss_count = 0
        if diverged or not math.isfinite(mean):
            self.result.status, self.result.stop_reason = "diverged", "diverged"
            self.result.error = f"non-finite training loss {where}"
            return None
        return mean

    def record(self, step: int, clock: Any, metrics: dict[str, float], **extra: float) -> bool:
        """Append a curve point; return True the first time the target is met.

        `clock` is the run's `suite.measuring.timing.SegmentClock`, read after this evaluation's segment closed:
        train, evaluation and warm-up totals, and the wall time since the first touch of the data.
        """
        train_s, eval_s = clock.total("train"), clock.total("eval")
        point = {"step": step, "time_s": round(train_s, 4), **extra, **metrics}
        self.result.curve.append(point)
        self.result.final_metrics = dict(metrics)
        if self.target is not None and not self.result.reached_target and self.target.met(metrics):
            r = self.result
            r.reached_target = True
            r.time_to_target_s = round(train_s, 4)
            r.time_to_target_with_eval_s = round(train_s + eval_s, 4)
            r.submission_time_to_target_s = round(train_s + clock.total("warmup"), 4)
            r.wall_to_target_s = round(clock.elapsed(), 4)
            r.steps_to_target = step
            meter = getattr(clock, "energy", None)
            r.energy_to_target_j = meter.segment("train") if meter is not None else None
            return True
        return False

    def improved(self, metrics: dict[str, float]) -> bool:
        """True when this point is the best so far on the target metric (the first point always is)."""
        if self.target is None:
            return False
        value = metrics.get(self.target.metric)
        if value is None or value != value:
            return False
        better = self.best_value is None or (value > self.best_value if self.target.higher_is_better
                                             else value < self.best_value)
        if better:
            self.best_value = value
        return better

    def stop_reason(self, out_of_time: bool, budget_spent: bool) -> str | None:
        """Why the run stops after this eval point (target first, then time, then budget), or None."""
        if self.result.reached_target and self.stop_at_target:
            return "target"
        if out_of_time:
            return "time"
        if budget_spent:
            return "budget"
        return None
