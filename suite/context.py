"""What the runner hands a trainer (RunContext) and what a trainer returns (TrainResult).

A trainer is a function `train(task, ctx) -> TrainResult`: the supervised
loop (`suite.loop.train_supervised`) and the RL algorithms (`suite.rl`)
share the runner's seeding, device, timing, memory and record through
these two types, and one eval-point routine (`EvalPoints`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from suite.task import Target


@dataclass
class RunContext:
    device: torch.device
    precision: str  # "bf16" | "fp32"
    compile: bool
    generator: torch.Generator  # seeded CPU generator for data order
    seed: int
    rank: int = 0
    world_size: int = 1
    max_time_s: float | None = None  # overrides the budget's cap when set
    max_steps: int | None = None  # overrides the budget's step / env-step count when set
    log: Callable[[str], None] = print
    # torch.cuda.set_sync_debug_mode inside train steps ("warn" | "error"; None: off). Set from
    # $DLBENCH_SYNC_DEBUG by the runner; tests/test_cuda.py uses it to prove steps never wait on the host.
    sync_debug: str | None = None
    # A dict: RL trainers add seconds per phase of an iteration to it (suite.timing.PhaseTimer; acting,
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
    time_to_target_s: float | None = None  # train time at the target (AlgoPerf rule)
    # Train + evaluation time at the target (MLPerf rule: "the time to evaluate the quality is
    # included"); warm-up and compilation are excluded as MLPerf's untimed model initialisation.
    time_to_target_with_eval_s: float | None = None
    steps_to_target: int | None = None  # optimizer steps, or env steps for RL
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
    speed: dict[str, Any] | None = None  # the speed profile's step times and counts (suite.speed)
    stop_reason: str = ""  # target | budget | time | diverged
    data_info: dict[str, Any] = field(default_factory=dict)


class EvalPoints:
    """The eval-point routine every loop shares (supervised, PPO, DQN), written once.

    Between eval points the loop hands each step's loss to `add` (summed on
    the device: no host sync on GPU; on CPU, where a sync is free, a
    non-finite loss is caught at once). At an eval point `train_loss` averages
    the losses since the last one (one sync) and marks the run diverged when
    that average is not finite; `record` appends the curve point and notes
    the first time the target is met; `stop_reason` says whether to stop.
    """

    def __init__(self, target: Target | None, result: TrainResult, device: torch.device):
        self.target, self.result = target, result
        self.loss_sum = torch.zeros((), device=device)
        self.loss_count = 0
        self.check_every_step = device.type == "cpu"  # a host sync is free on CPU, costly on GPU

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

    def record(self, step: int, train_time_s: float, metrics: dict[str, float], eval_time_s: float = 0.0,
               **extra: float) -> bool:
        """Append a curve point; return True the first time the target is met.

        `eval_time_s`: evaluation time so far, this eval point's included (the MLPerf-rule time).
        """
        point = {"step": step, "time_s": round(train_time_s, 4), **extra, **metrics}
        self.result.curve.append(point)
        self.result.final_metrics = dict(metrics)
        if self.target is not None and not self.result.reached_target and self.target.met(metrics):
            self.result.reached_target = True
            self.result.time_to_target_s = round(train_time_s, 4)
            self.result.time_to_target_with_eval_s = round(train_time_s + eval_time_s, 4)
            self.result.steps_to_target = step
            return True
        return False

    def stop_reason(self, out_of_time: bool, budget_spent: bool) -> str | None:
        """Why the run stops after this eval point (target first, then time, then budget), or None."""
        if self.result.reached_target:
            return "target"
        if out_of_time:
            return "time"
        if budget_spent:
            return "budget"
        return None
