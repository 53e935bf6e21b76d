"""Agent networks: an encoder for the frames, a policy/value or Q head on top.

`MinAtarEncoder` suits 10x10xC boolean MinAtar frames (one 3x3 conv, as in
Young & Tian 2019); `NatureEncoder` is the Nature-DQN CNN for 4x84x84 uint8
Atari frame stacks (Mnih et al. 2015). `encoder_for` picks one from the
observation space. Both heads offer `greedy(obs)`, the action the
evaluation routine plays.
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


class MinAtarEncoder(nn.Module):
    """(B, 10, 10, C) bool -> (B, hidden) features."""

    def __init__(self, channels: int, size: int = 10, conv: int = 16, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Conv2d(channels, conv, 3)), nn.ReLU(), nn.Flatten(),
            layer_init(nn.Linear(conv * (size - 2) ** 2, hidden)), nn.ReLU(),
        )
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.permute(0, 3, 1, 2).float())


class NatureEncoder(nn.Module):
    """(B, 4, 84, 84) uint8 -> (B, 512) features."""

    def __init__(self, channels: int = 4, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Conv2d(channels, 32, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(), nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, hidden)), nn.ReLU(),
        )
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float() / 255.0)


def encoder_for(obs_space: gym.Space, **kwargs) -> nn.Module:
    """The encoder that fits `obs_space`: MinAtar (H, W, C) frames or (4, 84, 84) stacks."""
    shape = getattr(obs_space, "shape", None) or ()
    if len(shape) == 3 and shape[0] == shape[1] and shape[0] <= 16:
        return MinAtarEncoder(shape[2], shape[0], **kwargs)
    if len(shape) == 3 and shape[1:] == (84, 84):
        return NatureEncoder(shape[0], **kwargs)
    raise ConfigError("observation_space", obs_space,
                      "no encoder for it: use MinAtar (10, 10, C) frames or Atari (4, 84, 84) frame stacks")


def discrete_actions(action_space: gym.Space, algo: str) -> int:
    """The number of actions of a Discrete space; ConfigError for any other space."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError("action_space", action_space,
                          f"{algo} needs a discrete action space: pick an environment with Discrete actions")
    return int(action_space.n)


class ActorCritic(nn.Module):
    """Shared encoder, a policy head (logits) and a value head: PPO's agent."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, **encoder_kwargs):
        super().__init__()
        self.encoder = encoder_for(obs_space, **encoder_kwargs)
        self.actor = layer_init(nn.Linear(self.encoder.out_dim, discrete_actions(action_space, "PPO")), std=0.01)
        self.critic = layer_init(nn.Linear(self.encoder.out_dim, 1), std=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        return self.actor(features), self.critic(features).squeeze(-1)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.encoder(obs)).argmax(-1)


class QNetwork(nn.Module):
    """Encoder and one Q-value per action: DQN's agent."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, **encoder_kwargs):
        super().__init__()
        self.encoder = encoder_for(obs_space, **encoder_kwargs)
        self.head = layer_init(nn.Linear(self.encoder.out_dim, discrete_actions(action_space, "DQN")), std=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(obs))

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs).argmax(-1)
