"""bench/ppo_vs_sb3.py compares like with like: the SB3-like recipe's loss weights are SB3's, and in wall
mode both sides' returns come from one evaluation rule. SB3 is optional: what needs it skips without it."""
from __future__ import annotations

import inspect
import sys

import pytest
import torch
import torch.nn.functional as F

from suite.training.rl import common
from suite.training.rl.ppo import ppo_loss
from tests.helpers import load_script

SB3_VF_COEF = 0.5  # stable_baselines3.PPO's default: loss = ... + vf_coef * F.mse_loss(returns, values)


@pytest.fixture(scope="module")
def bench():
    return load_script("bench/ppo_vs_sb3.py", "ppo_vs_sb3_bench")


class ValueOnly(torch.nn.Module):
    """A uniform policy (zero logits) with the given value predictions."""

    def __init__(self, values: torch.Tensor):
        super().__init__()
        self.values = torch.nn.Parameter(values)

    def forward(self, obs):
        return torch.zeros(len(obs), 3), self.values


def test_the_sb3_like_recipe_weights_the_value_loss_as_sb3_does(bench):
    cfg = bench.SB3_LIKE
    assert cfg.ent_coef == 0.0  # SB3's default: no entropy term to separate out
    g = torch.Generator().manual_seed(0)
    values, returns = torch.randn(256, generator=g), torch.randn(256, generator=g)
    n = len(values)
    # Zero advantages: no policy term, so the loss is the value term alone.
    loss = ppo_loss(ValueOnly(values.clone()), cfg, torch.zeros(n, 1), torch.zeros(n, dtype=torch.long),
                    torch.full((n,), -torch.log(torch.tensor(3.0)).item()), torch.zeros(n), returns, values)
    torch.testing.assert_close(loss, SB3_VF_COEF * F.mse_loss(returns, values))


def test_sb3_s_default_value_weight_is_the_one_compared_against():
    sb3 = pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 is optional (pip install 'dlbench[sb3]')")
    assert inspect.signature(sb3.PPO.__init__).parameters["vf_coef"].default == SB3_VF_COEF


def recording(calls: list, val_return: float):
    """An `evaluate_policy` stand-in noting each call's rule: envs, episodes, seed, the env's wrappers."""
    def evaluate(agent, envs, episodes, device, seed):
        calls.append({"envs": envs.num_envs, "episodes": episodes, "seed": seed, "env": str(envs.envs[0])})
        return {"return": val_return, "return_std": 0.0, "episodes": float(episodes), "episode_length": 1.0}

    return evaluate


def the_rule(bench, seed: int, episodes: int) -> dict:
    """The equal-wall evaluation rule, as the module states it."""
    return {"envs": bench.EVAL_ENVS, "episodes": episodes, "seed": seed + common.EVAL_SEED_OFFSET}


@pytest.mark.parametrize("recipe", ["new", "sb3"])
def test_wall_mode_scores_dlbench_by_the_rule_sb3_is_scored_by(bench, recipe, monkeypatch):
    calls: list = []
    monkeypatch.setattr(common, "evaluate_policy", recording(calls, 2.5))
    rollout = bench.RECIPES[recipe].num_envs * bench.RECIPES[recipe].num_steps
    figures = bench.run_dlbench(rollout, 1e9, seed=3, recipe=recipe, eval_episodes=5)
    [val] = [c for c in calls if c["seed"] == 3 + common.EVAL_SEED_OFFSET]
    assert {k: val[k] for k in ("envs", "episodes", "seed")} == the_rule(bench, 3, 5)
    assert figures["return"] == 2.5  # the return reported is that evaluation's


def test_wall_mode_scores_sb3_by_the_same_rule_on_the_same_envs(bench, monkeypatch):
    pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 is optional (pip install 'dlbench[sb3]')")
    sb3_calls: list = []
    monkeypatch.setattr(bench, "evaluate_policy", recording(sb3_calls, 1.5))
    figures = bench.run_sb3(1024, 1e9, seed=3, threads=1, eval_episodes=5)
    assert figures["return"] == 1.5
    dlbench_calls: list = []
    monkeypatch.setattr(common, "evaluate_policy", recording(dlbench_calls, 2.5))
    bench.run_dlbench(1024, 1e9, seed=3, recipe="sb3", eval_episodes=5)
    [sb3] = sb3_calls
    assert {k: sb3[k] for k in ("envs", "episodes", "seed")} == the_rule(bench, 3, 5)
    [dlbench] = [c for c in dlbench_calls if c["seed"] == sb3["seed"]]
    assert dlbench == sb3  # the same wrappers too: the task's evaluation envs, 5,000-step cap


def test_without_sb3_the_bench_says_so_in_one_line_before_any_run(bench, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # what an import then finds: nothing
    monkeypatch.setattr(bench, "run_dlbench", lambda *a, **k: pytest.fail("a run started before the check"))
    monkeypatch.setattr("sys.argv", ["ppo_vs_sb3.py", "--reps", "1"])
    assert bench.script_exit_code(bench.main, "ppo_vs_sb3") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ppo_vs_sb3: error: the SB3 side needs Stable-Baselines3: pip install 'dlbench[sb3]' "
                   "(or --only dlbench)"], err
