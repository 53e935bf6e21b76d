"""PPO with the clipped objective and GAE (Schulman et al. 2017), after CleanRL's `ppo_atari.py`.

One iteration: `num_envs x num_steps` environment steps with the current
policy, advantages by GAE, then `update_epochs` passes over the rollout in
`num_minibatches` shuffled minibatches. Truncated episodes are bootstrapped
with the value of their last observation; terminated ones are not.
Under bf16 (`ctx.precision`) the network's forward passes, acting and
learning, run in autocast; the policy and value terms of the loss, the
rollout storage, GAE and the optimiser stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
from torch import nn

from suite.running.context import RunContext, TrainResult
from suite.running.device import autocast, no_host_sync
from suite.measuring.flops import flops_of
from suite.errors import ConfigError
from suite.training import graphs
from suite.training.rl.common import AlgoConfig, RLRun, clipped_step, cpu_threads, learner, warmed_update
from suite.training.rl.envs import final_obs, torch_dtype
from suite.training.rl.networks import discrete_actions
from suite.taskapi.task import RLTask
from suite.measuring.timing import PhaseTimer


@dataclass(frozen=True)
class PPOConfig(AlgoConfig):
    """PPO hyper-parameters; defaults are CleanRL's Atari recipe (shared fields: `AlgoConfig`)."""

    num_envs: int = 8
    num_steps: int = 128  # steps per environment per rollout
    lr: float = 2.5e-4
    anneal_lr: bool = True  # learning rate decays linearly to 0 over the budget
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    clip_coef: float = 0.1
    clip_vloss: bool = True
    norm_adv: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    # CPU threads while collecting a rollout (one forward of num_envs observations per env step; the
    # update runs on `torch_threads`; None: those too). Small forwards gain little from more threads,
    # and on a busy host each op of a multi-threaded region waits for a descheduled thread.
    act_threads: int | None = None
    # What `--set recipe.algo.KEY=VALUE` may change: the fields that change what PPO learns (threads,
    # process layout and the evaluation protocol change how fast or how it is measured, not what it learns).
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "lr", "anneal_lr", "gamma", "gae_lambda", "num_envs", "num_steps", "num_minibatches", "update_epochs",
        "clip_coef", "clip_vloss", "norm_adv", "ent_coef", "vf_coef", "max_grad_norm")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_threads("act_threads")
        for name in ("num_steps", "num_minibatches", "update_epochs"):
            self.check_positive(name)
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ConfigError("ppo.num_minibatches", self.num_minibatches,
                              f"must divide num_envs x num_steps = {self.num_envs * self.num_steps}")

    def first_update(self) -> tuple[int, str, tuple[str, ...]]:
        return (self.num_envs * self.num_steps,
                f"one PPO rollout (num_envs {self.num_envs} x num_steps {self.num_steps})", ("num_envs", "num_steps"))


def gae(rewards: torch.Tensor, values: torch.Tensor, ends: torch.Tensor, next_value: torch.Tensor,
        gamma: float, gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns.

    rewards, values, ends: [T, N]; ends[t] = 1 where the episode ended at step t
    (its reward already includes any truncation bootstrap); next_value: [N],
    the value of the observation after the last step. Returns (advantages, returns), [T, N].
    """
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        following = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        alive = 1.0 - ends[t]
        delta = rewards[t] + gamma * following * alive - values[t]
        last = delta + gamma * gae_lambda * alive * last
        advantages[t] = last
    return advantages, advantages + values


def policy_terms(logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of `actions` and the entropies of the categorical policies with these logits:
    `torch.distributions.Categorical`'s figures without building the distribution (a dozen small ops).
    In float32 whatever the logits' dtype: bf16 log-probabilities would make PPO's ratio noise."""
    logp = logits.float().log_softmax(-1)
    return logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1)


def sample_actions(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions drawn from the categorical policies (as `Categorical(logits=...).sample()` draws them:
    one `torch.multinomial` over the softmax) and their log-probabilities: one log-softmax serves both,
    and no entropy is computed (acting needs none; this runs once per env step)."""
    logp = logits.float().log_softmax(-1)
    actions = torch.multinomial(logp.exp(), 1).squeeze(-1)
    return actions, logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


MINIBATCH = ("obs", "actions", "old_logprobs", "advantages", "returns", "old_values")  # what ppo_loss takes


def ppo_loss(model: nn.Module, cfg: PPOConfig, obs, actions, old_logprobs, advantages, returns, old_values):
    """The clipped surrogate + value + entropy loss of one minibatch."""
    logits, values = model(obs)
    logprobs, entropy = policy_terms(logits, actions)
    values = values.float()
    ratio = (logprobs - old_logprobs).exp()
    if cfg.norm_adv:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
    v_loss = (values - returns) ** 2
    if cfg.clip_vloss:
        clipped = old_values + (values - old_values).clamp(-cfg.clip_coef, cfg.clip_coef)
        v_loss = torch.max(v_loss, (clipped - returns) ** 2)
    return pg_loss + cfg.vf_coef * 0.5 * v_loss.mean() - cfg.ent_coef * entropy.mean()


def make_optimizer(model: nn.Module, cfg: PPOConfig, device: torch.device,
                   capturable: bool = False) -> torch.optim.Adam:
    """PPO's Adam; fused (one kernel for all parameters, the same update) where torch has the kernel;
    `capturable` keeps its step count on the device, for a CUDA graph (`suite.training.graphs`)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-5, fused=device.type in ("cpu", "cuda"),
                            capturable=capturable)


def train_ppo(task: RLTask, ctx: RunContext) -> TrainResult:
    cfg: PPOConfig = task.spec.recipe.algo
    device = ctx.device
    rollout = cfg.num_envs * cfg.num_steps
    run = RLRun(task, ctx, rollout)  # checks the budget holds a rollout, makes the envs, timed
    envs = run.envs
    try:
        discrete_actions(envs.single_action_space, "PPO")
        model = task.build_agent(envs.single_observation_space, envs.single_action_space).to(device)
        run.attach(model)
        optimizer = make_optimizer(model, cfg, device, capturable=ctx.cuda_graphs)
        step = make_update_step(model, optimizer, cfg, device, ctx.precision, learner(model, ctx))
        iterations = run.total // rollout
        T, N = cfg.num_steps, cfg.num_envs
        space = envs.single_observation_space
        # Rollout storage, allocated once. What the envs give (observations, rewards, ends) is kept in
        # host numpy arrays written in place, one device copy per rollout; what the model gives
        # (actions, log-probabilities, values) stays in device tensors.
        obs_buf = np.zeros((T, N, *space.shape), dtype=space.dtype)
        rewards, ends = np.zeros((T, N), dtype=np.float32), np.zeros((T, N), dtype=np.float32)
        actions = torch.zeros((T, N), dtype=torch.long, device=device)
        logprobs, values = torch.zeros((T, N), device=device), torch.zeros((T, N), device=device)
        with autocast(device, ctx.precision):  # counted as trained: the same ops
            run.result.flops_per_sample, run.result.flops_method = flops_per_env_step(
                model, cfg, torch.zeros((1, *space.shape), dtype=torch_dtype(space), device=device), device)
        step = warmed_update(run, step, model, optimizer, zero_minibatch(space, rollout // cfg.num_minibatches, device))
        next_obs, _ = envs.reset(seed=ctx.seed)
        phases = PhaseTimer(device, ctx.phase_times)
        run.start()
        for iteration in range(iterations):
            phases.restart()
            if cfg.anneal_lr:  # in place where the learning rate is a tensor a CUDA graph reads
                graphs.set_lr(optimizer.param_groups[0], cfg.lr * (1.0 - iteration / iterations))
            # The rollout on `act_threads` (its small forwards), the update on the run's `torch_threads`.
            # One autocast region for the whole rollout: the weights do not change during it, so
            # autocast casts them to bf16 once per rollout instead of once per env step.
            with cpu_threads(cfg.act_threads if device.type == "cpu" else None), torch.no_grad(), \
                    autocast(device, ctx.precision):
                for t in range(T):
                    obs_buf[t] = next_obs
                    phases.lap("store")
                    logits, values[t] = model(torch.from_numpy(obs_buf[t]).to(device))
                    actions[t], logprobs[t] = sample_actions(logits)
                    phases.lap("act")
                    next_obs, reward, terminated, truncated, infos = envs.step(actions[t].cpu().numpy())
                    phases.lap("env")
                    rewards[t] = reward
                    if truncated.any():  # bootstrap what the time limit cut off
                        last = torch.as_tensor(final_obs(next_obs, infos, truncated), device=device)
                        bootstrap = model(last)[1].float().cpu().numpy()
                        rewards[t] += cfg.gamma * bootstrap * (truncated & ~terminated)
                    ends[t] = terminated | truncated
                    phases.lap("store")
                next_value = model(torch.from_numpy(next_obs).to(device))[1].float()
                phases.lap("act")
            advantages, returns = gae(torch.from_numpy(rewards).to(device), values,
                                      torch.from_numpy(ends).to(device), next_value, cfg.gamma, cfg.gae_lambda)
            phases.lap("gae")
            obs = torch.from_numpy(obs_buf).to(device)
            with no_host_sync(ctx):  # the learner update never waits on the host (acting does: envs are on the CPU)
                loss = update(model, optimizer, cfg, obs.flatten(0, 1), actions.flatten(),
                              logprobs.flatten(), advantages.flatten(), returns.flatten(), values.flatten(),
                              precision=ctx.precision, step=step)
            phases.lap("update")
            if run.step(rollout, loss):
                break
    finally:
        run.finish()
    return run.result


def zero_minibatch(space, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A minibatch of `size` zeros with the shapes and dtypes of the `MINIBATCH` tensors (to compile or capture on)."""
    zeros = torch.zeros(size, device=device)
    return {"obs": torch.zeros((size, *space.shape), dtype=torch_dtype(space), device=device),
            "actions": zeros.long(), "old_logprobs": zeros, "advantages": zeros.clone(), "returns": zeros.clone(),
            "old_values": zeros.clone()}


def flops_per_env_step(model: nn.Module, cfg: PPOConfig, obs: torch.Tensor,
                       device: torch.device) -> tuple[float | None, str | None]:
    """Training FLOPs per env step: one acting forward, plus `update_epochs` forward + backward passes
    (each rollout sample is trained on once per epoch), counted on a minibatch of `obs`-shaped zeros."""
    size = cfg.num_envs * cfg.num_steps // cfg.num_minibatches
    batch = torch.zeros((size, *obs.shape[1:]), dtype=obs.dtype, device=device)
    zeros = torch.zeros(size, device=device)
    with torch.no_grad():
        act = flops_of(lambda: model(batch))
    learn = flops_of(lambda: ppo_loss(model, cfg, batch, zeros.long(), zeros, zeros + 1, zeros, zeros).backward())
    model.zero_grad(set_to_none=True)
    if act is None or learn is None:
        return None, None
    return (act + cfg.update_epochs * learn) / size, (
        f"torch FlopCounterMode on a minibatch of {size}: one acting forward + {cfg.update_epochs} update "
        "epochs of forward + backward, per env step")


def make_update_step(model: nn.Module, optimizer: torch.optim.Optimizer, cfg: PPOConfig, device: torch.device,
                     precision: str = "fp32", compiled: nn.Module | None = None
                     ) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """PPO's gradient step: minibatch (a dict of the `MINIBATCH` tensors) -> its loss (detached, no sync).

    The loss's forward runs in autocast under bf16, through `compiled` where given (`common.learner`:
    `model` under torch.compile); gradients are clipped to `max_grad_norm`.
    `update` takes it over a rollout's minibatches, and the speed profile (`suite.measuring.speed`) times it.
    """
    network = compiled if compiled is not None else model
    return clipped_step(model, optimizer, cfg.max_grad_norm, device, precision,
                        lambda minibatch: ppo_loss(network, cfg, **minibatch))


def update(model: nn.Module, optimizer: torch.optim.Optimizer, cfg: PPOConfig, *batch: torch.Tensor,
           precision: str = "fp32", step: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None
           ) -> torch.Tensor:
    """`update_epochs` passes of `step` (default: `make_update_step`; the run's own, captured under
    `--cuda-graphs`) over shuffled minibatches of the rollout `batch` (the `MINIBATCH` tensors, in that
    order); returns the mean loss (a tensor, no sync)."""
    size = batch[0].shape[0]
    minibatch = size // cfg.num_minibatches
    step = step or make_update_step(model, optimizer, cfg, batch[0].device, precision)
    total = torch.zeros((), device=batch[0].device)
    for _ in range(cfg.update_epochs):
        order = torch.randperm(size, device=batch[0].device)
        for start in range(0, size, minibatch):
            index = order[start:start + minibatch]
            total += step({name: b[index] for name, b in zip(MINIBATCH, batch)})
    return total / (cfg.update_epochs * cfg.num_minibatches)
