"""Evaluation: greedy play on separate environments, unclipped returns, episodes counted.

Each evaluation resets the evaluation envs with the same seed, so points of
a learning curve are comparable. Every sub-env plays the same number of
episodes (its quota), so short episodes are not over-counted; an episode
ends on termination or truncation (a time limit), and a truncated episode
counts with the return it had.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn


@torch.no_grad()
def evaluate_policy(model: nn.Module, envs: gym.vector.VectorEnv, episodes: int, device: torch.device,
                    seed: int) -> dict[str, float]:
    """Play `model.greedy` for at least `episodes` episodes; metrics without split prefix."""
    quota = math.ceil(episodes / envs.num_envs)
    returns: list[list[float]] = [[] for _ in range(envs.num_envs)]
    running = np.zeros(envs.num_envs, dtype=np.float64)
    lengths = np.zeros(envs.num_envs, dtype=np.int64)
    episode_lengths: list[int] = []
    was_training = model.training
    model.eval()
    obs, _ = envs.reset(seed=seed)
    while any(len(r) < quota for r in returns):
        actions = model.greedy(torch.as_tensor(obs, device=device)).cpu().numpy()
        obs, reward, terminated, truncated, _ = envs.step(actions)
        running += reward
        lengths += 1
        for i in np.flatnonzero(terminated | truncated):
            if len(returns[i]) < quota:
                returns[i].append(float(running[i]))
                episode_lengths.append(int(lengths[i]))
            running[i], lengths[i] = 0.0, 0
    model.train(was_training)
    flat = np.array([r for per_env in returns for r in per_env])
    return {"return": float(flat.mean()), "return_std": float(flat.std()),
            "episodes": float(len(flat)), "episode_length": float(np.mean(episode_lengths))}
