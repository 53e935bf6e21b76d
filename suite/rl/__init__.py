"""Reinforcement learning in the harness: PPO and DQN for any task with `kind = "rl"`.

The contract of an RL task (besides the `Task` class attributes):
  make_env(evaluation: bool) -> gymnasium.Env
      one environment with its wrappers; `evaluation=True` asks for the
      evaluation variant (no reward clipping, no life-loss episodes, a time
      limit). The harness vectorises it, seeds it and steps it; use
      `suite.rl.envs.make(env_id)` for ids with a one-line error.
  build_model(obs_space, action_space) -> nn.Module
      the agent for `spec.model`: `networks.ActorCritic` for PPO (forward ->
      (logits, value)), `networks.QNetwork` for DQN (forward -> Q values);
      both have `greedy(obs)`.
  spec.recipe.algo
      a `PPOConfig` or `DQNConfig`: picks the algorithm and holds its
      hyper-parameters, the number of training / evaluation environments and
      evaluation episodes and `torch_threads` (CPU threads during the run).
      The environment count is overridden by a recipe variant (`dataclasses.replace(cfg, num_envs=...)`).
  spec.budget
      `max_env_steps` (overridden by --max-steps), `max_time_s`, `eval_every`
      in env steps (default: a tenth of the budget).
Under torchrun (world size > 1) an RL run is `skipped` before training, with
the reason: data-parallel PPO/DQN would change the algorithm (N x the
environments and batch), so its record would not compare with a one-process
run, and these small networks gain nothing from more GPUs. Many RL runs at
once is `--executor ray`'s job.
Metrics (prefixed `eval/`): return (mean over episodes, unclipped, greedy),
return_std, episodes, episode_length. The curve's `step` is env steps.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from suite.context import RunContext, TrainResult
from suite.errors import ConfigError, SkipRun
from suite.rl.dqn import DQNConfig, train_dqn
from suite.rl.ppo import PPOConfig, train_ppo
from suite.task import Task

__all__ = ["DQNConfig", "PPOConfig", "cpu_threads", "train_rl"]


def train_rl(task: Task, ctx: RunContext) -> TrainResult:
    """Train the agent of `task` with the algorithm its recipe names; the runner's trainer for kind 'rl'."""
    if ctx.world_size > 1:
        # Every rank stops here, before any collective: none waits for another.
        raise SkipRun(f"{task.spec.task}: RL runs train in one process, not data-parallel (world size "
                      f"{ctx.world_size}): run it without torchrun; use --executor ray to spread many runs")
    algo = task.spec.recipe.algo
    if not isinstance(algo, (PPOConfig, DQNConfig)):
        raise ConfigError(f"{task.spec.task}.{task.spec.model}.recipe.algo", type(algo).__name__,
                      "set it to a suite.rl.PPOConfig or suite.rl.DQNConfig")
    train = train_ppo if isinstance(algo, PPOConfig) else train_dqn
    with cpu_threads(algo.torch_threads if ctx.device.type == "cpu" else None):
        return train(task, ctx)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` torch CPU threads, then restore. Small agent networks stepped once
    per env step run fastest on one thread: more threads spin and wait on a busy machine."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
