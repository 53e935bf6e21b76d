"""The ALE path of the atari_rl task: preprocessed Breakout, 4x84x84 frame stacks, Nature CNN."""
from __future__ import annotations

import numpy as np
import torch

from suite.training.rl.networks import ActorCritic
from tasks.atari_rl import ALE, NatureEncoder, atari_env


def test_preprocessed_breakout_steps_with_4x84x84_stacks():
    train_env, eval_env = atari_env(ALE, evaluation=False), atari_env(ALE, evaluation=True)
    obs, _ = train_env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    rewards = []
    for _ in range(200):
        obs, reward, terminated, truncated, _ = train_env.step(train_env.action_space.sample())
        rewards.append(reward)
        if terminated or truncated:
            obs, _ = train_env.reset()
    assert obs.shape == (4, 84, 84)
    assert set(rewards) <= {-1.0, 0.0, 1.0}  # training rewards are clipped to their sign
    agent = ActorCritic(NatureEncoder(4), train_env.action_space)
    logits, value = agent(torch.as_tensor(np.stack([obs, eval_env.reset(seed=1)[0]])))
    assert logits.shape == (2, train_env.action_space.n) and value.shape == (2,)
    train_env.close()
    eval_env.close()
