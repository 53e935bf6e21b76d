"""DQN with a replay buffer, a target network and a linear epsilon schedule (Mnih et al. 2015),
Double DQN targets by default (van Hasselt et al. 2016); after CleanRL's `dqn_atari.py`.

One iteration is one step of all `num_envs` environments; every
`train_frequency` iterations after `learning_starts` env steps, one gradient
step on a minibatch sampled from the buffer. Under bf16 (`ctx.precision`)
the network's forward passes run in autocast and the TD loss in float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from suite.running.context import RunContext, TrainResult
from suite.running.device import autocast, no_host_sync
from suite.measuring.flops import flops_of
from suite.errors import ConfigError
from suite.training.rl.common import AlgoConfig, RLRun, clipped_step, learner, warmed_update
from suite.training.rl.envs import final_obs, torch_dtype
from suite.training.rl.networks import discrete_actions
from suite.taskapi.task import RLTask


@dataclass(frozen=True)
class DQNConfig(AlgoConfig):
    """DQN hyper-parameters; defaults are CleanRL's Atari recipe, buffer 100k to fit in memory
    (shared fields: `AlgoConfig`)."""

    num_envs: int = 1
    buffer_size: int = 100_000
    lr: float = 1e-4
    batch_size: int = 32
    learning_starts: int = 80_000  # env steps of random play before learning
    train_frequency: int = 4  # iterations between gradient steps
    target_network_frequency: int = 1000  # env steps between target-network copies
    start_e: float = 1.0
    end_e: float = 0.01
    exploration_fraction: float = 0.10  # fraction of the budget over which epsilon decays
    double: bool = True  # Double DQN: the online net picks the next action, the target net values it
    max_grad_norm: float = 10.0
    # What `--set recipe.algo.KEY=VALUE` may change: the fields that change what DQN learns (threads,
    # process layout and the evaluation protocol change how fast or how it is measured, not what it learns).
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "lr", "gamma", "num_envs", "buffer_size", "batch_size", "learning_starts", "train_frequency",
        "target_network_frequency", "start_e", "end_e", "exploration_fraction", "double", "max_grad_norm")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("buffer_size", "batch_size", "train_frequency", "target_network_frequency"):
            self.check_positive(name)
        if not 0.0 <= self.end_e <= self.start_e <= 1.0:
            raise ConfigError("dqn.start_e/end_e", (self.start_e, self.end_e), "need 0 <= end_e <= start_e <= 1")

    def first_update(self) -> tuple[int, str, tuple[str, ...]]:
        return (self.learning_starts + self.num_envs * self.train_frequency,
                f"learning_starts {self.learning_starts} + one DQN update (num_envs {self.num_envs} x "
                f"train_frequency {self.train_frequency})", ("learning_starts", "num_envs", "train_frequency"))


class ReplayBuffer:
    """A circular buffer of transitions held as tensors (observations keep their own dtype)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, device: torch.device):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype, device=device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(capacity, dtype=torch.long, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.dones = torch.zeros(capacity, device=device)  # terminated only: truncation still bootstraps

    def add(self, obs, actions, rewards, next_obs, dones) -> None:
        """Append a batch of transitions (one per environment), overwriting the oldest."""
        n = len(actions)
        index = (self.pos + torch.arange(n)) % self.capacity
        for store, value in ((self.obs, obs), (self.next_obs, next_obs), (self.actions, actions),
                             (self.rewards, rewards), (self.dones, dones)):
            store[index.to(store.device)] = torch.as_tensor(value, device=store.device).to(store.dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        index = torch.randint(0, self.size, (batch_size,), generator=generator).to(self.obs.device, non_blocking=True)
        return self.at(index)

    def zero_batch(self, batch_size: int) -> dict[str, torch.Tensor]:
        """`batch_size` zero transitions, of the shapes and dtypes `sample` gives (to compile or capture on)."""
        one = self.at(torch.zeros(1, dtype=torch.long, device=self.obs.device))
        return {k: v.new_zeros((batch_size, *v.shape[1:])) for k, v in one.items()}

    def at(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The transitions at `index` (a 1-D tensor on the buffer's device), as `sample` returns them."""
        return {"obs": self.obs[index], "actions": self.actions[index], "rewards": self.rewards[index],
                "next_obs": self.next_obs[index], "dones": self.dones[index]}


def epsilon(cfg: DQNConfig, env_steps: int, total: int) -> float:
    """Linear decay from start_e to end_e over `exploration_fraction` of the budget."""
    span = max(1.0, cfg.exploration_fraction * total)
    return max(cfg.end_e, cfg.start_e + (cfg.end_e - cfg.start_e) * env_steps / span)


def td_loss(model: nn.Module, target: nn.Module, batch: dict[str, torch.Tensor], cfg: DQNConfig) -> torch.Tensor:
    with torch.no_grad():
        next_q = target(batch["next_obs"]).float()
        if cfg.double:
            best = model(batch["next_obs"]).argmax(-1, keepdim=True)
            next_value = next_q.gather(1, best).squeeze(1)
        else:
            next_value = next_q.max(-1).values
        td_target = batch["rewards"] + cfg.gamma * next_value * (1.0 - batch["dones"])
    q = model(batch["obs"]).float().gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
    return F.smooth_l1_loss(q, td_target)


def make_optimizer(model: nn.Module, cfg: DQNConfig, capturable: bool = False) -> torch.optim.Adam:
    """DQN's Adam (CleanRL's: default epsilon); `capturable` keeps its step count on the device, for a
    CUDA graph (`suite.training.graphs`)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, capturable=capturable)


def make_update_step(model: nn.Module, target: nn.Module, optimizer: torch.optim.Optimizer, cfg: DQNConfig,
                     device: torch.device, precision: str = "fp32", compiled: nn.Module | None = None
                     ) -> Callable[[dict], torch.Tensor]:
    """DQN's gradient step: a batch of transitions (`ReplayBuffer.sample`'s dict) -> its TD loss (detached).

    The forward passes run in autocast under bf16 (the TD loss itself in float32), the online network's
    through `compiled` where given (`common.learner`); gradients are clipped to `max_grad_norm`. The
    training loop and the speed profile (`suite.measuring.speed`) both use it.
    """
    network = compiled if compiled is not None else model
    return clipped_step(model, optimizer, cfg.max_grad_norm, device, precision,
                        lambda batch: td_loss(network, target, batch, cfg))


def flops_per_env_step(model: nn.Module, target: nn.Module, cfg: DQNConfig, buffer: ReplayBuffer,
                       total: int) -> tuple[float | None, str | None]:
    """Training FLOPs per env step: one acting forward, plus the TD update's share (one update of
    `batch_size` per `train_frequency x num_envs` env steps once `learning_starts` is passed),
    counted on `batch_size` zero observations of the buffer's shape."""
    n = cfg.batch_size
    obs = torch.zeros((n, *buffer.obs.shape[1:]), dtype=buffer.obs.dtype, device=buffer.obs.device)
    zeros = torch.zeros(n, device=obs.device)
    batch = {"obs": obs, "next_obs": obs, "actions": zeros.long(), "rewards": zeros, "dones": zeros}
    with torch.no_grad():
        act = flops_of(lambda: model(obs[:1]))
    learn = flops_of(lambda: td_loss(model, target, batch, cfg).backward())
    model.zero_grad(set_to_none=True)
    if act is None or learn is None:
        return None, None
    learning_share = max(0, total - cfg.learning_starts) / max(1, total)
    per_step = act + learn * learning_share / (cfg.train_frequency * cfg.num_envs)
    return per_step, (f"torch FlopCounterMode: one acting forward per env step + one TD update of {n} "
                      f"(forward + backward) per {cfg.train_frequency * cfg.num_envs} env steps after learning_starts")


def train_dqn(task: RLTask, ctx: RunContext) -> TrainResult:
    cfg: DQNConfig = task.spec.recipe.algo
    device = ctx.device
    run = RLRun(task, ctx, cfg.num_envs)  # checks the budget reaches a first update, makes the envs, timed
    envs = run.envs
    try:
        discrete_actions(envs.single_action_space, "DQN")
        model = task.build_agent(envs.single_observation_space, envs.single_action_space).to(device)
        target = task.build_agent(envs.single_observation_space, envs.single_action_space).to(device)
        target.load_state_dict(model.state_dict())
        run.attach(model)
        optimizer = make_optimizer(model, cfg, capturable=ctx.cuda_graphs)
        learn = make_update_step(model, target, optimizer, cfg, device, ctx.precision, learner(model, ctx))
        space = envs.single_observation_space
        buffer = ReplayBuffer(cfg.buffer_size, space.shape, torch_dtype(space), device)
        learn = warmed_update(run, learn, model, optimizer, buffer.zero_batch(cfg.batch_size))
        rng = np.random.default_rng(ctx.seed)
        with autocast(device, ctx.precision):  # counted as trained: the same ops
            run.result.flops_per_sample, run.result.flops_method = flops_per_env_step(model, target, cfg, buffer,
                                                                                      run.total)
        obs, _ = envs.reset(seed=ctx.seed)
        since_target, iteration = 0, 0
        run.start()
        while True:
            iteration += 1
            if rng.random() < epsilon(cfg, run.env_steps, run.total):
                actions = rng.integers(0, envs.single_action_space.n, size=cfg.num_envs)
            else:
                with torch.no_grad(), autocast(device, ctx.precision):
                    actions = model.greedy(torch.as_tensor(obs, device=device)).cpu().numpy()
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            buffer.add(obs, actions, rewards, final_obs(next_obs, infos, terminated | truncated), terminated)
            obs = next_obs
            loss = None
            if run.env_steps >= cfg.learning_starts and iteration % cfg.train_frequency == 0:
                with no_host_sync(ctx):  # the learner update never waits on the host
                    loss = learn(buffer.sample(cfg.batch_size, ctx.generator))
            since_target += cfg.num_envs
            if since_target >= cfg.target_network_frequency:
                target.load_state_dict(model.state_dict())
                since_target = 0
            if run.step(cfg.num_envs, loss):
                break
    finally:
        run.finish()
    return run.result
