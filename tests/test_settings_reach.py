"""Every `--set` key a model accepts changes what its run computes; a key its trainer does not read is refused.

Parametrised over the registry (every entry-point task x model x accepted key, smoke profile, CPU):
the key, set to another value, changes the resolved recipe or model keywords, and a short run of
the model's own trainer ends with other parameters (weights, fitted coefficients, or the weights its
evaluation reads: `recipe.ema_decay`) than the run without it. Nothing here names a key a task must have: a new key in a trainer's declaration or a
model's signature is covered by being declared.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from suite.taskapi import registry, variants
from suite.running.context import RunContext
from suite.running.device import seed_everything
from suite.errors import ConfigError
from suite.taskapi.models import is_estimator
from suite.running.runner import trainer_for
from suite.taskapi.spec import Recipe

TASKS = registry.entry_point_tasks()
PROFILE = "smoke"
# Env steps of a short RL run: two PPO rollouts of the smoke recipe, and DQN past its learning start.
RL_STEPS = {"PPOConfig": 512, "DQNConfig": 1024}
# Values for keys whose default has no generic "other" value (strings, None), or where halving is too mild.
OTHER = {"recipe.optimizer": {"adamw": "sgd", "sgd": "adamw"}, "model.activation": {"relu": "tanh"},
         "model.pooling": {"cls": "mean"}, "model.dropout": {None: "0.5"}, "model.layers": {None: "1"},
         "model.max_iter": 2, "recipe.algo.end_e": 0.5}
# Keys that reach nothing in the smoke recipe (strict: each fails the test once it does reach something).
KNOWN = {("speech_recognition", "ctc_bigru", "model.dropout"):
         "the GRU's dropout acts between its layers, and the smoke recipe has one layer"}


def cases() -> list:
    out = []
    for name, cls in sorted(TASKS.items()):
        for model in cls.models:
            for key in variants.valid_keys(cls, model, PROFILE):
                if key == "model.KWARG":  # a factory that takes **kwargs: no keyword to try
                    continue
                why = KNOWN.get((name, model, key))
                marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
                out.append(pytest.param(name, model, key, marks=marks, id=f"{name}-{model}-{key}"))
    return out


def current(cls, model: str, key: str):
    """The value `key` has in the smoke recipe of `model` (or its factory's default)."""
    recipe = cls.profiles[PROFILE].recipes.get(model, Recipe())
    if key.startswith("recipe.algo."):
        return getattr(recipe.algo, key.removeprefix("recipe.algo."))
    if key.startswith("recipe."):
        return getattr(recipe, key.removeprefix("recipe."))
    if key == "data.fraction":
        return 1.0
    field = key.removeprefix("model.")
    return recipe.model_kwargs.get(field, variants.model_defaults(cls, model, PROFILE)[field])


def other_value(cls, model: str, key: str) -> str:
    """Another valid value for `key`, as command-line text."""
    value = current(cls, model, key)
    table = OTHER.get(key, {})
    if not isinstance(table, dict) or value in table:
        return str(table[value] if isinstance(table, dict) else table)
    if key == "data.fraction":
        return "0.5"
    if key == "recipe.batch_size":  # smaller than the smoke split too, or every batch is the whole split
        return str(max(1, min(value, len(task_of(cls, model, {}).load("train"))) // 2))
    if isinstance(value, bool):
        return str(not value).lower()
    if isinstance(value, int):
        return str(value // 2 if value > 1 else value + 1)
    if isinstance(value, float):
        return str(value / 10 if value else 0.1)
    raise AssertionError(f"{key}: add another value for {value!r} to OTHER")


def task_of(cls, model: str, settings: dict[str, str]):
    return cls(cls.spec_for(PROFILE, model, 0, {}, settings), Path(os.environ["DLBENCH_DATA"]))


def built(cls, model: str, settings: dict[str, str]) -> tuple[str, dict[str, torch.Tensor]]:
    """(repr, parameters) of `model` as built with `settings`, from the same seed."""
    task = task_of(cls, model, settings)
    torch.manual_seed(0)
    if cls.kind == "rl":
        env = task.make_env(False)
        net = task.build_agent(env.observation_space, env.action_space)
        env.close()
    else:
        net = task.build_model()
    return repr(net), dict(net.state_dict())


_SPLITS: dict[tuple, object] = {}


def trained(cls, model: str, settings: dict[str, str]) -> dict[str, torch.Tensor]:
    """The parameters of `model` after a short run of its own trainer (the runner's choice) with `settings`:
    those its last evaluation read where the loop evaluates a network (the weights, or the recipe's average
    of them), else those built.

    What cannot change the parameters is left out to keep ~150 runs short: the FLOP count, the warm-up
    (its steps are undone), the metrics (evaluation returns none) and loading a split twice."""
    from suite.training import loop
    from suite.training.rl import common

    task = task_of(cls, model, settings)
    spec = task.spec
    built, evaluated = [], []
    member = "build_agent" if cls.kind == "rl" and not is_estimator(cls, model) else "build_model"
    build = getattr(task, member)
    load = getattr(task, "load", None)
    key = (cls.name, model, repr(sorted(spec.recipe.model_kwargs.items())))
    steps = RL_STEPS.get(type(spec.recipe.algo).__name__) if cls.kind == "rl" else 1
    cpu = torch.device("cpu")
    ctx = RunContext(device=cpu, precision="fp32", compile=False, generator=seed_everything(0, cpu), seed=0,
                     max_steps=steps, log=lambda _m: None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task, member, lambda *args: built.append(build(*args)) or built[-1])  # keeps what is trained
        if cls.kind == "supervised":
            patch.setattr(task, "load", lambda split: _SPLITS.get(key + (split,)) or
                          _SPLITS.setdefault(key + (split,), load(split)))
            patch.setattr(task, "evaluate", lambda net, _source: evaluated.append(net) or {})
        patch.setattr(loop, "count_flops", lambda *_args: None)
        patch.setattr(loop, "WARMUP_STEPS", 0)
        patch.setattr(common, "evaluate_policy", lambda *_a, **_k: {"return": 0.0, "return_std": 0.0,
                                                                    "episodes": 1.0, "episode_length": 1.0})
        trainer_for(cls.kind, PROFILE, is_estimator(cls, model))(task, ctx)
    read = evaluated[-1] if evaluated and isinstance(evaluated[-1], torch.nn.Module) else built[0]
    return {k: v.detach().clone() for k, v in read.state_dict().items()}


_BASELINES: dict[tuple[str, str], dict[str, torch.Tensor]] = {}


def baseline(name: str, model: str) -> dict[str, torch.Tensor]:
    if (name, model) not in _BASELINES:
        _BASELINES[(name, model)] = trained(TASKS[name], model, {})
    return _BASELINES[(name, model)]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name,model,key", cases())
def test_every_accepted_key_changes_the_resolved_run_and_what_it_trains_or_evaluates(name, model, key):
    cls = TASKS[name]
    text = other_value(cls, model, key)
    plain, varied = cls.spec_for(PROFILE, model), cls.spec_for(PROFILE, model, 0, {}, {key: text})
    assert varied.recipe != plain.recipe or key == "data.fraction", f"{key}={text} left the recipe as it was"
    assert varied.overrides and varied.overrides != plain.overrides
    if key.startswith("model.") and not is_estimator(cls, model):
        (text_a, params_a), (text_b, params_b) = built(cls, model, {key: text}), built(cls, model, {})
        if text_a != text_b or not same(params_a, params_b):
            return  # another model: another run (a fitted model is compared once fitted)
    assert not same(trained(cls, model, {key: text}), baseline(name, model)), \
        f"{name}/{model}: --set {key}={text} trained the same parameters as the run without it"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_key_no_trainer_reads_is_refused_naming_the_model_and_its_keys(name):
    cls = TASKS[name]
    for model in cls.models:
        valid = variants.valid_keys(cls, model, PROFILE)
        for key in ("recipe.lr", "recipe.algo.lr", "data.fraction", "model.no_such_keyword"):
            if key in valid or (key.startswith("model.") and "model.KWARG" in valid):
                continue
            with pytest.raises(ConfigError) as err:
                cls.spec_for(PROFILE, model, 0, {}, {key: "0.5"})
            message = str(err.value)
            assert f"not a key of {name}/{model}; valid: " in message and "\n" not in message
            assert message.endswith(", ".join(valid) if valid else "valid: ")


def test_declarations_name_fields_the_trainers_have():
    from suite.measuring import speed
    from suite.training import estimator, loop
    from suite.training.rl import DQNConfig, PPOConfig

    recipe_fields = {f.name for f in dataclasses.fields(Recipe)}
    for declared in (loop.SETTINGS, speed.SETTINGS, *estimator.SETTINGS.values()):
        for key in declared:
            space, _, field = key.partition(".")
            assert space in variants.NAMESPACES and (space != "recipe" or field in recipe_fields), key
    for config in (PPOConfig, DQNConfig):
        assert set(config.SETTINGS) <= {f.name for f in dataclasses.fields(config)}, config.__name__


def test_rl_models_take_algo_keys_and_their_encoder_keywords_per_profile():
    """PPO reads recipe.algo, never recipe.lr; model.* reaches the encoder, which differs by profile."""
    atari = TASKS["atari_rl"]
    smoke = variants.valid_keys(atari, "ppo_cnn", "smoke")
    assert "recipe.lr" not in smoke and "recipe.algo.lr" in smoke and {"model.conv", "model.hidden"} <= set(smoke)
    assert "model.conv" not in variants.valid_keys(atari, "ppo_cnn", "full")  # the Nature encoder has no conv
    assert "model.size" not in smoke  # the frame size is the task's to pass, not a keyword to set
    spec = atari.spec_for("smoke", "dqn_cnn", 0, {}, {"recipe.algo.lr": "0.001", "model.hidden": "64"})
    assert spec.recipe.algo.lr == 0.001 and spec.recipe.model_kwargs == {"hidden": 64}
    assert spec.overrides == {"recipe.algo.lr": 0.001, "model.hidden": 64}
    with pytest.raises(ConfigError, match="ppo.num_minibatches=3: must divide"):
        atari.spec_for("smoke", "ppo_cnn", 0, {}, {"recipe.algo.num_minibatches": "3"})
