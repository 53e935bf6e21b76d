"""Agent heads: a policy/value or Q head on top of an encoder the task provides.

The task's `build_agent` picks the encoder for its observations (an
`nn.Module` with an `out_dim` attribute: features per observation) and puts
one of these heads on it. Both heads offer `greedy(obs)`, the action the
evaluation routine plays. Under bf16 autocast the encoder runs in bf16 and the
heads in float32 (`fp32_head`).
"""
from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from suite.errors import ConfigError


def layer_init(layer: nn.Module, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights, constant bias: the CleanRL / baselines initialisation."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def discrete_actions(action_space: gym.Space, algo: str) -> int:
    """The number of actions of a Discrete space; ConfigError for any other space."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError("action_space", action_space,
                          f"{algo} needs a discrete action space: pick an environment with Discrete actions")
    return int(action_space.n)


def fp32_head(head: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """`head(features)` in float32, also inside bf16 autocast.

    A head's outputs are what PPO and DQN compare across forwards: log-probability ratios between
    acting and learning, values inside GAE, Q-values inside TD targets. Rounded to bf16 (8
    significant bits: steps of 0.03 at a value of 5) that noise swamps small advantages: with bf16
    heads, PPO in bf16 needed 150k, 900k and 950k env steps to atari_rl's quick target on seeds
    0-2, with float32 heads 100k, 100k and 551k (fp32 throughout: 251k, 151k, 451k; the atari_rl
    docstring). The heads are a few hundred multiply-adds per observation: float32 costs nothing.
    """
    with torch.autocast(features.device.type, enabled=False):
        return head(features.float())


class ActorCritic(nn.Module):
    """Shared encoder, a policy head (logits) and a value head: PPO's agent."""

    def __init__(self, encoder: nn.Module, action_space: gym.Space):
        super().__init__()
        self.encoder = encoder
        self.actor = layer_init(nn.Linear(self.encoder.out_dim, discrete_actions(action_space, "PPO")), std=0.01)
        self.critic = layer_init(nn.Linear(self.encoder.out_dim, 1), std=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        return fp32_head(self.actor, features), fp32_head(self.critic, features).squeeze(-1)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return fp32_head(self.actor, self.encoder(obs)).argmax(-1)


class QNetwork(nn.Module):
    """Encoder and one Q-value per action: DQN's agent."""

    def __init__(self, encoder: nn.Module, action_space: gym.Space):
        super().__init__()
        self.encoder = encoder
        self.head = layer_init(nn.Linear(self.encoder.out_dim, discrete_actions(action_space, "DQN")), std=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return fp32_head(self.head, self.encoder(obs))

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs).argmax(-1)
