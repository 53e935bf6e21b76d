"""ALE's own vector environment (`ale_py.vector_env.AtariVectorEnv`, C++ threads, no Python per
sub-env) with the reference Atari preprocessing, stepped like the gymnasium vector envs of
`suite.training.rl.envs` (same-step autoreset, `info["final_obs"]`).

The reference conditions (`tasks/atari_rl.py`, after Mnih et al. 2015 and CleanRL's
`ppo_atari.py`): frame skip 4 with max-pooling of the last two frames, 84x84 grey, 4-frame
stack, up to 30 no-op starts, no sticky actions, no FIRE on reset, the minimal action set, a
time limit of 108,000 frames; for training only, a life loss ends the episode (the game goes
on) and rewards are clipped to their sign. ale-py does the emulation, pooling, resizing,
stacking, no-ops and clipping natively; `ALEVectorEnv` adds what it does differently:

- Life loss: ale-py's `episodic_life=True` restarts the whole game on a life loss, so the
  agent would never see a later life; `life_loss_info=True` ends the episode and lets the
  game go on, as the gymnasium path's `EpisodicLife` does. ale-py's `final_obs` is wrong in
  that case (a stale stack), but the game went on, so the last observation of the ended
  episode is the observation returned: the wrapper puts it back.
- Frame stack padding: ale-py pads a new episode's stack with black frames (and after a life
  loss keeps the previous life's frames); gymnasium's `FrameStackObservation` repeats the
  episode's first frame. The wrapper repeats it too, so both give the agent the same stacks.
- Rewards come as float64 (ale-py: int32), as gymnasium's vector envs give them.

Where the two still differ (tests/test_ale_vector.py checks the rest frame by frame):
the no-op start counts are drawn from different random streams (same seed, other numbers),
and after a life loss the gymnasium path plays one no-op step (4 frames) before the next
life's first observation, where ale-py starts it at once.
"""
from __future__ import annotations

import re

import gymnasium as gym
import numpy as np

from suite.errors import ConfigError

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP
NAME = "ale_py.AtariVectorEnv"


def available() -> bool:
    """Whether ale-py ships its vector environment (ale-py >= 0.11)."""
    try:
        import ale_py.vector_env as vector_env
    except ImportError:
        return False
    return hasattr(vector_env, "AtariVectorEnv")


def rom_name(env_id: str) -> str:
    """'ALE/Breakout-v5' -> 'breakout', 'ALE/MsPacman-v5' -> 'ms_pacman' (ale-py's ROM names)."""
    game = env_id.removeprefix("ALE/").split("-")[0]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


class ALEVectorEnv(gym.vector.VectorWrapper):
    """ale-py's vector env, stepped as the harness expects (see the module docstring).

    Observations (num_envs, 4, 84, 84) uint8, newest frame last; rewards float64;
    `info["final_obs"]` holds the true last observation of every sub-env that ended.
    """

    def __init__(self, env: gym.vector.VectorEnv, life_loss_ends_episode: bool):
        super().__init__(env)
        self.life_loss_ends_episode = life_loss_ends_episode
        self.stack = env.single_observation_space.shape[0]
        self.age = np.zeros(self.num_envs, dtype=np.int64)  # steps since the episode's first observation
        self.lives = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.age[:] = 0
        self.lives[:] = info["lives"]
        self.pad(obs, self.age)
        return obs, info

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int64))
        ended = terminated | truncated
        lives = info["lives"]
        if ended.any():
            final = info["final_obs"]
            if self.life_loss_ends_episode:
                went_on = terminated & (lives < self.lives)  # a life lost, the same game goes on
                final[went_on] = obs[went_on]
            self.pad(final, np.where(ended, self.age + 1, self.stack))
        self.lives[:] = lives
        self.age = np.where(ended, 0, self.age + 1)
        self.pad(obs, self.age)
        return obs, rewards.astype(np.float64), terminated, truncated, info

    def pad(self, obs: np.ndarray, age: np.ndarray) -> None:
        """In place: the frames before an episode's first one become copies of it, as in
        gymnasium's FrameStackObservation (padding_type="reset"). obs: (N, stack, H, W); age: (N,)."""
        for i in np.flatnonzero(age < self.stack - 1):
            first = self.stack - 1 - age[i]
            obs[i, :first] = obs[i, first]


def make_ale_vector_env(env_id: str, num_envs: int, evaluation: bool, noop_max: int = 30,
                        max_frames: int = 108_000, num_threads: int = 0) -> ALEVectorEnv:
    """`num_envs` copies of `env_id` ('ALE/<Game>-v5') in ale-py's vector env with the reference
    preprocessing; training (evaluation=False) adds life-loss episodes and clipped rewards.
    max_frames: the time limit in emulator frames (v5's 108,000); num_threads 0: one per core."""
    from ale_py.vector_env import AtariVectorEnv

    if num_envs < 1:
        raise ConfigError("num_envs", num_envs, "must be >= 1")
    if not env_id.startswith("ALE/"):
        raise ConfigError("env_id", env_id, "ale-py's vector env runs ALE games ('ALE/<Game>-v5') only")
    env = AtariVectorEnv(
        rom_name(env_id), num_envs, num_threads=num_threads, autoreset_mode=SAME_STEP,
        frameskip=4, maxpool=True, img_height=84, img_width=84, grayscale=True, stack_num=4,
        noop_max=noop_max, repeat_action_probability=0.0, full_action_space=False,
        max_num_frames_per_episode=max_frames, use_fire_reset=False,
        episodic_life=False, life_loss_info=not evaluation, reward_clipping=not evaluation,
    )
    return ALEVectorEnv(env, life_loss_ends_episode=not evaluation)
