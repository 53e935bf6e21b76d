"""Reinforcement learning in the harness: PPO and DQN for any `suite.taskapi.task.RLTask`.

The contract (`make_env`, `build_agent`) is the abstract members of
`RLTask`, checked at registration. `spec.recipe.algo` is a `PPOConfig` or
`DQNConfig` (both `suite.training.rl.common.AlgoConfig`): it picks the algorithm and
holds its hyper-parameters, the training / evaluation environment counts,
the evaluation episodes and `torch_threads`. `spec.budget.max_env_steps`
(overridden by --max-steps), `max_time_s` (train time) and the profile's
`eval_every` in env steps (default: a tenth of the budget). Metrics: return
(mean over episodes, unclipped, greedy), return_std, episodes,
episode_length, as `val/...` at every evaluation (the validation episodes,
which decide) and `test/...` once when the run stops (test episodes with
seeds of their own, the reported figure). The curve's `step` is env steps.
Under torchrun (world size > 1) an RL run is `skipped` before training, with
the reason: data-parallel PPO/DQN would change the algorithm (N x the
environments and batch), so its record would not compare with a one-process
run, and these small networks gain nothing from more GPUs. Many RL runs at
once is `--executor ray`'s job.
"""
from __future__ import annotations

import torch

from suite.running.context import RunContext, TrainResult
from suite.errors import ConfigError, SkipRun
from suite.training.rl.common import AlgoConfig, cpu_threads
from suite.training.rl.dqn import DQNConfig, train_dqn
from suite.training.rl.ppo import PPOConfig, train_ppo
from suite.taskapi.task import RLTask

__all__ = ["AlgoConfig", "DQNConfig", "PPOConfig", "cpu_threads", "train_rl"]


def train_rl(task: RLTask, ctx: RunContext) -> TrainResult:
    """Train the agent of `task` with the algorithm its recipe names; the runner's trainer for kind 'rl'."""
    if ctx.world_size > 1:
        # Every rank stops here, before any collective: none waits for another.
        raise SkipRun(f"{task.spec.task}: RL runs train in one process, not data-parallel (world size "
                      f"{ctx.world_size}): run it without torchrun; use --executor ray to spread many runs")
    algo = task.spec.recipe.algo
    if not isinstance(algo, (PPOConfig, DQNConfig)):
        raise ConfigError(f"{task.spec.task}.{task.spec.model}.recipe.algo", type(algo).__name__,
                      "set it to a suite.training.rl.PPOConfig or suite.training.rl.DQNConfig")
    train = train_ppo if isinstance(algo, PPOConfig) else train_dqn
    with cpu_threads(algo.torch_threads if ctx.device.type == "cpu" else None):
        # The record's host.torch_threads: what the learner runs on, not the count restored afterwards; set
        # before training, so an interrupted run's record says it too.
        ctx.result.torch_threads = torch.get_num_threads()
        return train(task, ctx)
