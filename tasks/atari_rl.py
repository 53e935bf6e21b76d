"""Atari-style reinforcement learning: how fast an agent learns to play a game from pixels.

Environments
  smoke  MinAtar Breakout (`MinAtar/Breakout-v1`, Young & Tian 2019; PyPI `minatar`):
         10x10x4 boolean frames, 3 actions; a few thousand steps, every code path.
  quick  MinAtar Breakout, offline, CPU.
  full   Atari Breakout through the ALE (`ALE/Breakout-v5`, ROMs ship in `ale-py`) with the
         standard preprocessing: frame skip 4 with max-pooling, 84x84 grey, 4-frame stack,
         up to 30 no-op starts; for training only, a life loss ends the episode and rewards
         are clipped to their sign. Sticky actions are off (repeat_action_probability=0)
         to match the conditions of the reference scores below. Training and evaluation
         environments run in ale-py's own vector env (`suite.training.rl.ale_vector`, C++ threads),
         or with `--set task.vector_env=gymnasium` (and where ale-py has no vector env) as
         gymnasium's wrappers below in its vector env; the record's data_info.env.vector_env
         says which. Both give the same frames for the same seed and actions but for the no-op
         start counts and one no-op step after a life loss (tests/test_ale_vector.py).

Models (the recipe's `algo` picks the algorithm, `suite.training.rl`)
  ppo_cnn  (default) PPO, actor-critic on the MinAtar conv net / Nature CNN.
  dqn_cnn  Double DQN, Q-network on the same encoders.
  The encoder follows the environment: `MinAtarEncoder` (one 3x3 conv, as in Young & Tian 2019)
  for MinAtar's 10x10xC boolean frames, `NatureEncoder` (Mnih et al. 2015) for ALE's 4x84x84
  uint8 frame stacks.
  random_policy  hand-crafted: uniformly random actions (the floor).
  ball_tracker   hand-crafted: moves the paddle under the column the ball heads for, read from
                 MinAtar's state channels (skipped on ALE frames). Rules: evaluated once on the
                 task's evaluation episodes (suite/training/estimator.py), train time 0.

Measurement: mean greedy return over validation episodes on separate
environments (unclipped rewards, episodes counted, spread recorded), checked
every `eval_every` env steps of the profile; when the run stops, the test
episodes (seeds of their own, more of them) give the reported return;
time-to-target in seconds and env steps; throughput in env steps/s.

Targets
  Runs stop on the validation split; the test split (and held-out sets) only report.
  quick  val/return >= 4.5 over the validation episodes: set from the reference convergence of ppo_cnn
         (tasks/references/atari_rl.quick.ppo_cnn.json, docs/methodology.md).
  full   val/return >= 400 on Breakout (CleanRL ppo_atari; Nature DQN 401.2).
  speed  no target: throughput on synthetic data at the full profile's shapes.
How the recipes came to be: docs/recipe-history.md.
"""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from suite import (
    Budget, ConfigError, Model, ProfileSpec, RLTask, Recipe, SkipRun, Target, TaskOption, full_dataset,
    load_references, register_task, speed_profile,
)
from suite.training.rl import DQNConfig, PPOConfig, ale_vector
from suite.training.rl.envs import make
from suite.training.rl.networks import ActorCritic, QNetwork, layer_init

MINATAR = "MinAtar/Breakout-v1"
ALE = "ALE/Breakout-v5"
MINATAR_EVAL_STEPS = 5_000  # evaluation episode cap (a good agent could play on for ever)


class MinAtarEncoder(nn.Module):
    """(B, 10, 10, C) bool -> (B, hidden) features."""

    def __init__(self, channels: int, size: int = 10, *, conv: int = 16, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Conv2d(channels, conv, 3)), nn.ReLU(), nn.Flatten(),
            layer_init(nn.Linear(conv * (size - 2) ** 2, hidden)), nn.ReLU(),
        )
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # contiguous NCHW: the ReLU backward on channels-last strides (what a bare permute gives) is slow on CPU.
        return self.net(obs.permute(0, 3, 1, 2).contiguous().float())


class NatureEncoder(nn.Module):
    """(B, 4, 84, 84) uint8 -> (B, 512) features."""

    def __init__(self, channels: int = 4, *, hidden: int = 512):
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


class EpisodicLife(gym.Wrapper):
    """A life loss ends the training episode; the game itself resets only when it is over."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives, self.game_over = 0, True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        terminated = terminated or 0 < lives < self.lives
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:  # continue the same game from where the life was lost
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


def atari_env(env_id: str, evaluation: bool, noop_max: int = 30) -> gym.Env:
    env = make(env_id, frameskip=1, repeat_action_probability=0.0)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=4, screen_size=84)
    if not evaluation:
        env = gym.wrappers.TransformReward(EpisodicLife(env), lambda r: float(np.sign(r)))
    return gym.wrappers.FrameStackObservation(env, 4)


def minatar_env(env_id: str, evaluation: bool) -> gym.Env:
    env = make(env_id)
    return gym.wrappers.TimeLimit(env, MINATAR_EVAL_STEPS) if evaluation else env


# -- hand-crafted policies (played once by suite.training.estimator) ------------------------
class RandomPolicy(nn.Module):
    """Uniformly random actions (torch's global generator, seeded by the run): the floor of any agent."""

    def __init__(self, obs_space: gym.Space, action_space: gym.spaces.Discrete):
        super().__init__()
        self.actions = int(action_space.n)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.randint(self.actions, (obs.shape[0],))


class BallTracker(nn.Module):
    """MinAtar Breakout by hand: move the paddle under the column the ball goes to next.

    Reads the state channels (paddle 0, ball 1, trail 2: the ball's last cell) of the
    (batch, 10, 10, 4) frames; actions of the minimal set: 0 no-op, 1 left, 2 right.
    """

    PADDLE, BALL, TRAIL = 0, 1, 2

    def __init__(self, obs_space: gym.Space, action_space: gym.spaces.Discrete):
        super().__init__()
        if tuple(obs_space.shape) != (10, 10, 4) or int(action_space.n) != 3:
            raise SkipRun(f"ball_tracker reads MinAtar Breakout's state channels (10x10x4 frames, 3 actions); "
                          f"this environment has {tuple(obs_space.shape)} frames and {action_space.n} actions")

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        columns = obs.bool().any(dim=1)  # (batch, 10 columns, channels): which columns hold each object
        paddle = columns[:, :, self.PADDLE].float().argmax(1)
        ball = columns[:, :, self.BALL].float().argmax(1)
        trail = columns[:, :, self.TRAIL].float().argmax(1)
        seen = columns[:, :, self.BALL].any(1) & columns[:, :, self.TRAIL].any(1)
        goal = torch.where(seen, (2 * ball - trail).clamp(0, 9), paddle)  # one step ahead, walls aside
        return torch.where(goal < paddle, 1, torch.where(goal > paddle, 2, 0))


ENCODERS = {"smoke": MinAtarEncoder, "quick": MinAtarEncoder, "full": NatureEncoder, "speed": NatureEncoder}  # model.*
REFERENCES = Path(__file__).parent / "references"
QUICK_TARGET = Target("val/return", 4.5, True,
                      "reference convergence of ppo_cnn over 10+ seeds (tasks/references/, docs/methodology.md)")

SMOKE_PPO = PPOConfig(num_envs=4, num_steps=64, num_minibatches=2, update_epochs=2, eval_envs=4, eval_episodes=4,
                      torch_threads=1)
SMOKE_DQN = DQNConfig(num_envs=4, buffer_size=2_000, learning_starts=512, target_network_frequency=256,
                      exploration_fraction=0.5, eval_envs=4, eval_episodes=4, torch_threads=1)
# Many envs, short rollouts, 4 epochs over each: the target is reached in fewer env steps, which wins
# over cheaper updates. 64 envs: acting is per-op overhead, so one acting forward serves twice the env
# steps of 32. The update runs on every core (torch_threads None): its 512-sample minibatches are
# compute-bound. Acting runs on one: small forwards gain little from a second core, and multi-threaded
# acting collapses on a busy host. The races behind these choices: docs/recipe-history.md.
QUICK_PPO = PPOConfig(num_envs=64, num_steps=32, num_minibatches=4, update_epochs=4, lr=1e-3, clip_coef=0.2,
                      eval_envs=16, eval_episodes=64, test_episodes=128, act_threads=1)
QUICK_DQN = DQNConfig(num_envs=4, buffer_size=100_000, lr=3e-4, learning_starts=5_000, train_frequency=1,
                      target_network_frequency=1_000, end_e=0.05, exploration_fraction=0.2, eval_envs=16,
                      eval_episodes=64, test_episodes=128, torch_threads=1)
FULL_PPO = PPOConfig(asynchronous=True)
FULL_DQN = DQNConfig()


@register_task
class AtariRL(RLTask):
    name = "atari_rl"
    version = 2  # 2: validation episodes decide, test episodes (seeds of their own) report; cadence per profile
    models = {"ppo_cnn": Model(ActorCritic, keywords_of=ENCODERS), "dqn_cnn": Model(QNetwork, keywords_of=ENCODERS),
              "random_policy": Model(RandomPolicy, family="hand-crafted", estimator=True),
              "ball_tracker": Model(BallTracker, family="hand-crafted", estimator=True)}
    default_model = "ppo_cnn"
    options = (TaskOption("vector_env", str, "auto", "how the ALE profiles (full, speed) step their environments: "
                          "ale (ale-py's vector env), gymnasium (gymnasium's wrappers and vector env) or auto "
                          "(ale where ale-py has it)", choices=("auto", "ale", "gymnasium")),)
    metrics = {"return": True, "return_std": False, "episodes": True, "episode_length": True}
    profiles = {
        "smoke": ProfileSpec(
            expected_s=10, download_mb=0,
            dataset=MINATAR,
            target=Target("val/return", 50.0, True, "smoke check only: not expected in 2k steps"),
            budget=Budget(max_env_steps=2_048, max_time_s=60, eval_every=1_024),
            recipes={"ppo_cnn": Recipe(algo=SMOKE_PPO), "dqn_cnn": Recipe(algo=SMOKE_DQN)},
            eval_splits=("val", "test"),
        ),
        "quick": ProfileSpec(
            expected_s=12, download_mb=0,
            dataset=MINATAR,
            target=QUICK_TARGET,
            budget=Budget(max_env_steps=3_000_000, max_time_s=300, eval_every=4_096),
            recipes={"ppo_cnn": Recipe(algo=QUICK_PPO, cpu_bf16=True), "dqn_cnn": Recipe(algo=QUICK_DQN)},
            eval_splits=("val", "test"),
            references=load_references(REFERENCES, "atari_rl", "quick"),
        ),
        "full": ProfileSpec(
            expected_s=None, download_mb=0,
            dataset=ALE,
            target=Target("val/return", 400.0, True,
                          "CleanRL ppo_atari Breakout benchmark, 10M steps (docs.cleanrl.dev); "
                          "Nature DQN 401.2 (Mnih et al. 2015)"),
            budget=Budget(max_env_steps=10_000_000, max_time_s=4 * 3600, eval_every=500_000),
            # cuda_tf32: bench/gpu_precision.py on an H200 (docs/results-h200.md): fp32 1.22x bf16.
            recipes={"ppo_cnn": Recipe(algo=FULL_PPO, cuda_tf32=True), "dqn_cnn": Recipe(algo=FULL_DQN)},
            eval_splits=("val", "test"),
        ),
    }
    profiles["speed"] = speed_profile(profiles["full"])

    def make_vector_env(self, num_envs: int, evaluation: bool) -> gym.vector.VectorEnv | None:
        """ALE games in ale-py's own vector env (`suite.training.rl.ale_vector`) unless `task.vector_env`
        asks for gymnasium's wrappers or ale-py lacks it; None: the harness vectorises `make_env`."""
        env_id = full_dataset(self.spec.dataset)
        choice = self.option("vector_env")
        if not env_id.startswith("ALE/") or choice == "gymnasium":
            return None
        if not ale_vector.available():
            if choice == "ale":
                raise ConfigError("task.vector_env", choice, "this ale-py has no vector env (ale_py.vector_env, "
                                  "ale-py >= 0.11): upgrade ale-py or set task.vector_env=gymnasium")
            return None
        return ale_vector.make_ale_vector_env(env_id, num_envs, evaluation)

    def make_env(self, evaluation: bool) -> gym.Env:
        env_id = full_dataset(self.spec.dataset)  # speed: the full profile's environment
        return atari_env(env_id, evaluation) if env_id.startswith("ALE/") else minatar_env(env_id, evaluation)

    def build_agent(self, obs_space: gym.Space, action_space: gym.Space) -> nn.Module:
        shape = obs_space.shape
        if full_dataset(self.spec.dataset).startswith("ALE/"):  # speed: "synthetic:ALE/..."
            encoder = NatureEncoder(shape[0], **self.spec.recipe.model_kwargs)
        else:
            encoder = MinAtarEncoder(shape[2], shape[0], **self.spec.recipe.model_kwargs)
        return self.models[self.spec.model](encoder, action_space)
