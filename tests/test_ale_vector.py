"""ale-py's vector env against gymnasium's wrapper stack (same observations, rewards, episode ends),
and the atari_rl full profile training on it for a few hundred env steps."""
from __future__ import annotations

import dataclasses
from functools import partial

import gymnasium as gym
import numpy as np
import pytest

from suite.training.rl import PPOConfig, DQNConfig, train_rl
from suite.training.rl import ale_vector
from suite.training.rl.envs import SAME_STEP, make_vector_env
from suite.taskapi.spec import Recipe
from tasks.atari_rl import ALE, AtariRL, atari_env
from tests.test_rl import context

pytestmark = pytest.mark.skipif(not ale_vector.available(), reason="this ale-py has no vector env")


def both(evaluation: bool, num_envs: int = 2, seed: int = 3):
    """gymnasium's stack and ale-py's vector env, reset with the same seed; no-op starts off
    (their counts come from different random streams)."""
    gym_envs = gym.vector.SyncVectorEnv([partial(atari_env, ALE, evaluation, 0) for _ in range(num_envs)],
                                        autoreset_mode=SAME_STEP)
    ale_envs = ale_vector.make_ale_vector_env(ALE, num_envs, evaluation, noop_max=0, num_threads=1)
    gym_obs, _ = gym_envs.reset(seed=seed)
    ale_obs, _ = ale_envs.reset(seed=seed)
    return gym_envs, ale_envs, gym_obs, ale_obs


def test_evaluation_games_match_gymnasium_frame_by_frame_across_game_overs():
    gym_envs, ale_envs, gym_obs, ale_obs = both(evaluation=True)
    assert ale_obs.shape == gym_obs.shape == (2, 4, 84, 84) and ale_obs.dtype == np.uint8
    np.testing.assert_array_equal(ale_obs, gym_obs)  # the stack repeats the first frame, as gymnasium's does
    actions = np.random.default_rng(0).integers(0, 4, (250, 2))
    game_overs, total = 0, 0.0
    for t, action in enumerate(actions):
        gym_obs, gym_reward, gym_term, gym_trunc, gym_info = gym_envs.step(action)
        ale_obs, ale_reward, ale_term, ale_trunc, ale_info = ale_envs.step(action)
        np.testing.assert_array_equal(ale_obs, gym_obs, err_msg=f"step {t}")
        np.testing.assert_array_equal(ale_reward, gym_reward)
        np.testing.assert_array_equal(ale_term, gym_term)
        np.testing.assert_array_equal(ale_trunc, gym_trunc)
        for i in np.flatnonzero(gym_term):
            np.testing.assert_array_equal(ale_info["final_obs"][i], gym_info["final_obs"][i])
        game_overs += int(gym_term.sum())
        total += float(gym_reward.sum())
    assert game_overs >= 2 and total > 0  # both envs played a whole game and scored, then reset
    assert ale_reward.dtype == np.float64
    gym_envs.close()
    ale_envs.close()


def test_training_life_loss_ends_the_episode_and_the_game_goes_on():
    gym_envs, ale_envs, gym_obs, ale_obs = both(evaluation=False)
    np.testing.assert_array_equal(ale_obs, gym_obs)
    actions = np.random.default_rng(0).integers(0, 4, (300, 2))
    first_life = np.ones(2, dtype=bool)  # until its first life loss, each env must match gymnasium exactly
    ale_rewards = []
    for t, action in enumerate(actions):
        gym_obs, gym_reward, gym_term, _, gym_info = gym_envs.step(action)
        ale_obs, ale_reward, ale_term, _, ale_info = ale_envs.step(action)
        for i in np.flatnonzero(first_life):
            assert ale_term[i] == gym_term[i] and ale_reward[i] == gym_reward[i], f"env {i}, step {t}"
            if not ale_term[i]:
                np.testing.assert_array_equal(ale_obs[i], gym_obs[i], err_msg=f"env {i}, step {t}")
                continue
            # the life's last observation is ale-py's own, put back in final_obs, and gymnasium's
            np.testing.assert_array_equal(ale_info["final_obs"][i], gym_info["final_obs"][i])
            assert 0 < ale_info["lives"][i] < 5  # a life lost, not a new game
            # the next life starts at once from the last frame (gymnasium plays one no-op step first)
            assert all(np.array_equal(frame, ale_info["final_obs"][i][-1]) for frame in ale_obs[i])
            first_life[i] = False
        ale_rewards.extend(ale_reward.tolist())
    assert not first_life.any()
    assert set(ale_rewards) <= {0.0, 1.0} and 1.0 in ale_rewards  # clipped (Breakout never scores < 0)
    gym_envs.close()
    ale_envs.close()


def full_task(recipe: PPOConfig | DQNConfig, vector_env: str) -> AtariRL:
    model = "ppo_cnn" if isinstance(recipe, PPOConfig) else "dqn_cnn"
    spec = AtariRL.spec_for("full", model, 0, {"vector_env": vector_env})
    return AtariRL(dataclasses.replace(spec, recipe=Recipe(algo=recipe)), "/nonexistent")


@pytest.mark.parametrize("recipe", [
    PPOConfig(num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1, eval_envs=2, eval_episodes=2,
              torch_threads=1),
    DQNConfig(num_envs=2, buffer_size=512, learning_starts=64, batch_size=8, target_network_frequency=64,
              eval_envs=2, eval_episodes=2, torch_threads=1),
], ids=["ppo", "dqn"])
def test_full_profile_trains_on_ale_vector_env(recipe, monkeypatch):
    # An untrained greedy agent may never serve the ball: a 2,000-frame time limit ends its games.
    built = []
    make = ale_vector.make_ale_vector_env

    def short_games(env_id, num_envs, evaluation):
        built.append(evaluation)
        return make(env_id, num_envs, evaluation, max_frames=2_000)

    monkeypatch.setattr(ale_vector, "make_ale_vector_env", short_games)
    result = train_rl(full_task(recipe, "auto"), context(0, max_steps=256))
    assert result.status == "ok" and result.samples == 256
    assert built == [False, True]  # training and evaluation envs both came from ale-py
    assert result.data_info["env"]["vector_env"] == "ale_py.AtariVectorEnv"
    assert "vector_env=ale_py.AtariVectorEnv" in result.data_info["env"]["fingerprint"]
    assert np.isfinite(result.final_metrics["val/return"])


def test_vector_env_option_falls_back_to_gymnasium():
    task = full_task(PPOConfig(), "gymnasium")
    assert task.make_vector_env(2, evaluation=False) is None  # the harness vectorises make_env
    envs = make_vector_env(task.make_env, 1, evaluation=True)
    assert isinstance(envs, gym.vector.SyncVectorEnv)
    envs.close()


def test_without_ale_vector_env_auto_falls_back_and_ale_is_a_config_error(monkeypatch):
    from suite.errors import ConfigError

    monkeypatch.setattr(ale_vector, "available", lambda: False)
    assert full_task(PPOConfig(), "auto").make_vector_env(2, evaluation=False) is None
    with pytest.raises(ConfigError, match="task.vector_env='ale': this ale-py has no vector env"):
        full_task(PPOConfig(), "ale").make_vector_env(2, evaluation=False)


def test_vector_env_option_rejects_unknown_values():
    from suite.errors import ConfigError

    with pytest.raises(ConfigError, match="task.vector_env.*wants one of auto, ale, gymnasium"):
        AtariRL.spec_for("full", "ppo_cnn", 0, {"vector_env": "envpool"})
