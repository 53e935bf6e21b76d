"""What every RL algorithm's loop shares: budget, clock, eval cadence, curve, stopping.

An algorithm builds an `RLRun`, calls `run.step(env_steps, loss)` after
each iteration (a PPO rollout + update, a DQN vector step) and stops when it
returns True; `run.finish()` (in a `finally`, so Ctrl-C keeps the partial
figures) fills in the TrainResult. Train time excludes
evaluation; throughput is environment steps per second of train time.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from suite.context import EvalTracker, RunContext, TrainResult
from suite.errors import ConfigError
from suite.rl.envs import make_vector_env
from suite.rl.evaluation import evaluate_policy
from suite.task import Task
from suite.timing import SegmentClock

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never share seeds with training ones


class RLRun:
    def __init__(self, task: Task, ctx: RunContext, model: nn.Module, steps_per_iteration: int,
                 min_env_steps: int, what: str):
        budget = task.spec.budget
        if budget.max_env_steps is None and ctx.max_steps is None:
            raise ConfigError(f"{task.spec.task}.budget", budget, "an RL task needs budget max_env_steps")
        self.total = ctx.max_steps or budget.max_env_steps
        if self.total < min_env_steps:
            raise ConfigError("budget.max_env_steps", self.total,
                              f"smaller than {what} ({min_env_steps} env steps): raise it or shrink the recipe")
        self.task, self.ctx, self.model = task, ctx, model
        self.steps_per_iteration = steps_per_iteration
        self.algo = task.spec.recipe.algo
        self.eval_every = max(steps_per_iteration, budget.eval_every or self.total // 10)
        self.max_time_s = ctx.max_time_s or budget.max_time_s
        self.eval_envs = make_vector_env(task.make_env, self.algo.eval_envs, evaluation=True,
                                         asynchronous=self.algo.asynchronous)
        self.result = ctx.result
        self.result.params = sum(p.numel() for p in model.parameters())
        self.tracker = EvalTracker(task.spec.target, self.result)
        self.clock = SegmentClock(ctx.device)
        self.env_steps, self.iterations = 0, 0
        self.next_eval = self.eval_every
        self.loss_sum = torch.zeros((), device=ctx.device)
        self.loss_count = 0
        self.check_every_step = ctx.device.type == "cpu"  # a host sync is free on CPU only
        ctx.log(f"  {self.total} env steps, eval every {self.eval_every}, cap {self.max_time_s:.0f}s")

    def start(self) -> None:
        self.clock.start("train")

    def step(self, env_steps: int, loss: torch.Tensor | None = None) -> bool:
        """Count an iteration; evaluate when due. True when the run must stop."""
        self.env_steps += env_steps
        self.iterations += 1
        diverged = False
        if loss is not None:
            self.loss_sum += loss.detach()
            self.loss_count += 1
            diverged = self.check_every_step and not math.isfinite(loss.item())
        out_of_time = self.clock.total("train") > self.max_time_s
        done = self.env_steps + self.steps_per_iteration > self.total  # another iteration would overrun
        if not (diverged or out_of_time or done or self.env_steps >= self.next_eval):
            return False
        self.clock.stop()
        train_loss = (self.loss_sum / max(1, self.loss_count)).item()
        self.loss_sum.zero_()
        self.loss_count = 0
        if diverged or not math.isfinite(train_loss):
            self.result.status, self.result.stop_reason = "diverged", "diverged"
            self.result.error = f"non-finite training loss after {self.env_steps} env steps"
            return True
        self.evaluate(train_loss)
        while self.next_eval <= self.env_steps:
            self.next_eval += self.eval_every
        stop = ("target" if self.result.reached_target else "time" if out_of_time
                else "budget" if done else None)
        if stop:
            self.result.stop_reason = stop
            return True
        self.clock.start("train")
        return False

    def evaluate(self, train_loss: float) -> None:
        self.clock.start("eval")
        raw = evaluate_policy(self.model, self.eval_envs, self.algo.eval_episodes, self.ctx.device,
                              seed=self.ctx.seed + EVAL_SEED_OFFSET)
        self.clock.stop()
        metrics = {f"eval/{k}": v for k, v in raw.items()}
        train_time = self.clock.total("train")
        self.tracker.record(self.env_steps, train_time, metrics, eval_time_s=self.clock.total("eval"),
                            iterations=self.iterations,
                            **{"train/loss": train_loss})
        self.ctx.log(f"  {self.env_steps:>9} env steps {train_time:8.1f}s  loss {train_loss:.4f}  "
                     f"return {raw['return']:.2f} ± {raw['return_std']:.2f} ({raw['episodes']:.0f} episodes)")

    def finish(self) -> TrainResult:
        """Close the clock and fill in the figures; also called when a run is cut short."""
        self.clock.stop()
        self.eval_envs.close()
        r = self.result
        r.train_time_s = round(self.clock.total("train"), 4)
        r.eval_time_s = round(self.clock.total("eval"), 4)
        r.steps, r.samples = self.iterations, self.env_steps
        r.throughput = {"value": round(self.env_steps / max(r.train_time_s, 1e-9), 2), "unit": "env_steps/s"}
        return r
