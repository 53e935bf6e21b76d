"""Environments: gymnasium ids made with helpful errors, vectorised the same way for every algorithm.

Vector environments reset a finished sub-environment in the SAME step
(`AutoresetMode.SAME_STEP`): the observation returned is the new episode's
first one and the last one of the finished episode is in
`info["final_obs"]`, which PPO (bootstrapping truncated episodes) and DQN
(the replay transition's next state) both need.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import gymnasium as gym
import numpy as np

from suite.errors import ConfigError
from suite.taskapi.task import RLTask

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP


def register_families() -> None:
    """Make the MinAtar and ALE ids known to gymnasium (both are optional imports)."""
    try:
        import minatar.gym

        if "MinAtar/Breakout-v1" not in gym.registry:
            minatar.gym.register_envs()
    except ImportError:
        pass
    try:
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
        gym.register_envs(ale_py)
    except ImportError:
        pass


def make(env_id: str, **kwargs) -> gym.Env:
    """`gymnasium.make(env_id)` with a one-line ConfigError for an id that does not exist."""
    register_families()
    if env_id not in gym.registry:
        close = [k for k in gym.registry if env_id.split("/")[-1].split("-")[0].lower() in k.lower()][:5]
        raise ConfigError("env_id", env_id, f"not a registered gymnasium id (close: {close or 'none'}); "
                          "install the rl extra (pip install 'dlbench[rl]') or fix the name")
    return gym.make(env_id, disable_env_checker=True, **kwargs)


def make_vector_env(make_env: Callable[[bool], gym.Env], num_envs: int, evaluation: bool = False,
                    asynchronous: bool = False) -> gym.vector.VectorEnv:
    """`num_envs` copies of `make_env(evaluation)` in one vector env (Async = one process each).

    When `make_env` is a task's own method (the harness passes `task.make_env`) and that task
    builds its own vector env (`RLTask.make_vector_env`, e.g. ale-py's), that one is used.
    """
    if num_envs < 1:
        raise ConfigError("num_envs", num_envs, "must be >= 1")
    task = getattr(make_env, "__self__", None)
    own = task.make_vector_env(num_envs, evaluation) if isinstance(task, RLTask) else None
    if own is not None:
        return own
    fns = [partial(make_env, evaluation) for _ in range(num_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=SAME_STEP)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=SAME_STEP)


def torch_dtype(space: gym.spaces.Box):
    """The torch dtype matching an observation space's numpy dtype (buffers store observations as they come)."""
    import torch

    return torch.from_numpy(np.zeros(1, dtype=space.dtype)).dtype


def final_obs(next_obs: np.ndarray, infos: dict, ended: np.ndarray) -> np.ndarray:
    """The true last observations: `next_obs` with finished sub-envs' final obs put back."""
    if not ended.any():
        return next_obs
    out = next_obs.copy()
    for i in np.flatnonzero(ended):
        out[i] = infos["final_obs"][i]
    return out


def vector_env_name(envs: gym.vector.VectorEnv) -> str:
    """Which implementation steps `envs`: 'ale_py.AtariVectorEnv', 'gymnasium.AsyncVectorEnv', ..."""
    from suite.training.rl.ale_vector import NAME, ALEVectorEnv

    return NAME if isinstance(envs, ALEVectorEnv) else f"gymnasium.{type(envs.unwrapped).__name__}"


def env_info(env_id: str, envs: gym.vector.VectorEnv) -> dict[str, str]:
    """The record's data_info["env"]: the fingerprint and the vector env implementation that ran."""
    vector = vector_env_name(envs)
    return {"fingerprint": env_fingerprint(env_id, vector), "vector_env": vector}


def env_fingerprint(env_id: str, vector_env: str | None = None) -> str:
    """An RL task's "data" is its environment: the id and the versions of the packages that implement
    it, so runs on other game code never share a table cell (suite.results.cells keys on this). ale-py's own
    vector env is named too (its no-op starts and life losses differ slightly from gymnasium's
    wrappers, `suite.training.rl.ale_vector`); gymnasium's vector envs leave the fingerprint as it was."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [env_id]
    for package in ("gymnasium", "ale-py", "minatar"):
        try:
            parts.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    if vector_env and not vector_env.startswith("gymnasium."):
        parts.append(f"vector_env={vector_env}")
    return " ".join(parts)
