"""One step per trainer: the speed profile times the very step function each trainer trains with.

A spy stands in for each trainer's step factory (`suite.training.loop.make_train_step`, the PPO and DQN
`make_update_step`); a training run and a speed run must both build their step through it and
take every optimizer step through the step it returned.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from suite.measuring import speed
from suite.taskapi import registry
from suite.training import loop
from suite.running.config import SuiteOptions
from suite.training.rl import dqn, ppo
from suite.running.runner import run_one


class Spy:
    """Wraps a step factory: counts the steps built, the calls of those steps, and keeps what they were built with."""

    def __init__(self, factory):
        self.factory, self.built, self.calls, self.args = factory, 0, 0, []

    def __call__(self, *args, **kwargs):
        self.built += 1
        self.args.append(args)
        step = self.factory(*args, **kwargs)

        def counted(batch):
            self.calls += 1
            return step(batch)

        return counted


@pytest.fixture
def few_speed_steps(monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cpu", speed.Steps(pool=2, warmup=1, measured=2, env_steps=5))


def options(tmp_path, profile: str) -> SuiteOptions:
    return SuiteOptions(profile=profile, device="cpu", results=tmp_path / profile, max_steps=3 if profile == "smoke"
                        else None)


def test_speed_uses_the_loops_own_step_function():
    assert speed.make_train_step is loop.make_train_step


@pytest.mark.parametrize("profile", ["smoke", "speed"])
def test_supervised_runs_and_speed_train_through_make_train_step_in_the_recipes_layout(
        profile, tmp_path, monkeypatch, few_speed_steps):
    cls = registry.load_tasks()["image_classification"]
    spec = cls.profiles[profile]
    # A CPU recipe that asks for channels_last: both the loop and the speed profile must honour it.
    recipe = dataclasses.replace(spec.recipes.get("cnn"), cpu_channels_last=True)
    monkeypatch.setitem(cls.profiles, profile, dataclasses.replace(spec, recipes={**spec.recipes, "cnn": recipe}))
    spy = Spy(loop.make_train_step)
    monkeypatch.setattr(loop, "make_train_step", spy)
    monkeypatch.setattr(speed, "make_train_step", spy)

    record = run_one(cls, "cnn", 0, options(tmp_path, profile), log=lambda _m: None)

    assert record["status"] == "ok", record["error"]
    assert spy.built == 1
    warmup = record["speed"]["warmup_steps"] if profile == "speed" else loop.WARMUP_STEPS
    assert spy.calls == record["steps"] + warmup
    _task, model, _train_model, _optimizer, _recipe, _ctx = spy.args[0]
    convs = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                         for p in convs), "the model is not in the recipe's channels_last layout"


@pytest.mark.parametrize("model, module", [("ppo_cnn", ppo), ("dqn_cnn", dqn)])
@pytest.mark.parametrize("profile", ["smoke", "speed"])
def test_rl_runs_and_speed_train_through_the_algorithms_update_step(model, module, profile, tmp_path, monkeypatch,
                                                                     few_speed_steps):
    spy = Spy(module.make_update_step)
    monkeypatch.setattr(module, "make_update_step", spy)
    opts = dataclasses.replace(options(tmp_path, profile), max_steps=None)

    record = run_one(registry.load_tasks()["atari_rl"], model, 0, opts, log=lambda _m: None)

    assert record["status"] == "ok", record["error"]
    if profile == "speed":
        assert spy.built == 1 and spy.calls == record["speed"]["warmup_steps"] + record["steps"]
    elif module is ppo:  # one step per minibatch of every update epoch, the step built once per run
        cfg = record["config"]["recipe"]["algo"]
        rollouts = record["samples"] // (cfg["num_envs"] * cfg["num_steps"])
        assert spy.built == 1 and rollouts >= 1
        assert spy.calls == rollouts * cfg["update_epochs"] * cfg["num_minibatches"]
    else:
        assert spy.built == 1 and spy.calls >= 1
