"""What every RL run shares (`suite.training.rl.common.RLRun`): the clock from the first touch of the
environments, and the weights kept at the best validation point when training to the budget."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from suite.running.context import RunContext
from suite.taskapi.spec import Target
from suite.training.rl import common, train_rl
from tasks.atari_rl import AtariRL

MODELS = ["ppo_cnn", "dqn_cnn"]


def context(stop_at_target: bool = True) -> RunContext:
    torch.manual_seed(0)
    np.random.seed(0)
    return RunContext(device=torch.device("cpu"), precision="fp32", compile=False,
                      generator=torch.Generator().manual_seed(0), seed=0, log=lambda _m: None,
                      stop_at_target=stop_at_target)


def weights_of(agent: torch.nn.Module) -> float:
    """A fingerprint of the agent's weights (what an evaluation played with)."""
    return float(sum(p.detach().double().abs().sum() for p in agent.parameters()))


@pytest.mark.parametrize("model", MODELS)
def test_training_to_the_budget_plays_the_test_episodes_on_the_best_validation_weights(model, monkeypatch):
    # Validation returns scripted so that the first of the smoke profile's two points is the best; every
    # evaluation also notes the weights it played with.
    val_returns = iter([3.0, 1.0])

    def scripted(agent, envs, episodes, device, seed):
        test = seed == common.TEST_SEED_OFFSET  # the run's seed is 0
        return {"return": 0.0 if test else next(val_returns), "return_std": 0.0, "episodes": float(episodes),
                "episode_length": 1.0, "weights": weights_of(agent)}

    monkeypatch.setattr(common, "evaluate_policy", scripted)
    result = train_rl(AtariRL(AtariRL.spec_for("smoke", model, 0), "/nonexistent"), context(stop_at_target=False))
    assert result.status == "ok" and result.stop_reason == "budget"
    first, last = result.curve
    assert first["val/weights"] != last["val/weights"]  # the agent trained between the two points
    assert result.best is not None and result.best["step"] == first["step"]
    assert result.best["metrics"]["val/return"] == 3.0
    assert result.best["metrics"]["test/weights"] == first["val/weights"]  # test episodes on the best weights
    assert result.final_metrics["test/weights"] == last["val/weights"]  # and on the final weights, as reported


def test_a_run_that_stops_at_its_target_keeps_no_best_copy():
    result = train_rl(AtariRL(AtariRL.spec_for("smoke", "ppo_cnn", 0), "/nonexistent"), context())
    assert result.status == "ok" and result.best is None


DELAY = 0.05  # seconds to make one environment


class SlowEnvs(AtariRL):
    """atari_rl whose environments take `DELAY` seconds each to make."""

    name = "slow_envs_rl_test"

    def make_env(self, evaluation):
        time.sleep(DELAY)
        return super().make_env(evaluation)


@pytest.mark.parametrize("model", MODELS)
def test_making_the_training_and_evaluation_envs_is_data_time_on_the_wall_clock(model):
    # Target met at the first evaluation (returns are >= 0), so the record has a wall_to_target_s.
    spec = AtariRL.spec_for("smoke", model, 0)
    spec = dataclasses.replace(spec, target=Target("val/return", 0.0, True, "met at the first evaluation"))
    algo = spec.recipe.algo
    result = train_rl(SlowEnvs(spec, "/nonexistent"), context())
    assert result.reached_target
    made = (algo.num_envs + algo.eval_envs) * DELAY
    assert result.data_s >= made
    assert result.wall_to_target_s >= made + result.time_to_target_with_eval_s
