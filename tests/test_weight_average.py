"""`Recipe.ema_decay`: evaluations read an exponential moving average of the weights, the steps train
the weights as before, and the average never rounds an integer buffer."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from suite.errors import ConfigError
from suite.running.config import SuiteOptions
from suite.running.runner import run_one
from suite.taskapi.spec import Recipe
from suite.training.averaging import WeightAverage
from tests.toy_tasks import ToyLinear


class _WithPositions(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.register_buffer("positions", torch.arange(100_000))  # as a text encoder's position ids


def test_the_average_follows_the_weights_at_its_decay_and_copies_integer_buffers():
    model = _WithPositions()
    average = WeightAverage(model, decay=0.9)
    start = model.linear.weight.detach().clone()
    with torch.no_grad():
        model.linear.weight.add_(1.0)
    average.update()
    assert torch.allclose(average.module.linear.weight, start + 0.1, atol=1e-6)
    average.update()
    assert torch.allclose(average.module.linear.weight, start + 0.19, atol=1e-6)
    assert torch.equal(average.module.positions, model.positions)  # exact, however many updates
    assert not any(p.requires_grad for p in average.module.parameters())


def test_restart_takes_the_weights_in_place():
    model = _WithPositions()
    average = WeightAverage(model, decay=0.5)
    where = average.module.linear.weight.data_ptr()
    with torch.no_grad():
        model.linear.weight.mul_(3.0)
    average.restart()
    assert torch.equal(average.module.linear.weight, model.linear.weight)
    assert average.module.linear.weight.data_ptr() == where  # a captured step keeps its addresses


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_a_decay_outside_0_1_is_refused_by_name(decay):
    with pytest.raises(ConfigError, match=r"recipe.ema_decay"):
        Recipe(ema_decay=decay)


class ToyWatched(ToyLinear):
    """toy_linear noting the weights each loss call trains and each evaluation reads."""

    name = "toy_watched"
    trained: list[torch.Tensor] = []
    evaluated: list[torch.Tensor] = []

    def loss(self, model, batch):
        type(self).trained.append(model.weight.detach().clone())
        return super().loss(model, batch)

    def evaluate(self, model, source):
        type(self).evaluated.append(model.weight.detach().clone())
        return super().evaluate(model, source)


def _watched_run(tmp_path, *settings: str) -> dict:
    ToyWatched.trained, ToyWatched.evaluated = [], []
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=20, set=list(settings))
    record = run_one(ToyWatched, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    return record


def test_evaluations_read_the_average_and_training_is_unchanged(tmp_path):
    plain = _watched_run(tmp_path / "plain")
    plain_trained, plain_evaluated = ToyWatched.trained, ToyWatched.evaluated
    # decay so close to 1 that the average stays where training started (after the undone warm-up)
    averaged = _watched_run(tmp_path / "averaged", "recipe.ema_decay=0.999999")
    start = ToyWatched.trained[0]  # the first weights a loss saw: the start, which the warm-up returns to
    # the same training (the plain run stops sooner: its evaluations meet the target)
    assert len(ToyWatched.trained) > len(plain_trained) > 10
    assert all(torch.equal(a, b) for a, b in zip(ToyWatched.trained, plain_trained))
    losses = [p["train/loss"] for p in averaged["curve"]]
    assert losses[:len(plain["curve"])] == [p["train/loss"] for p in plain["curve"]]
    assert ToyWatched.evaluated and all(torch.allclose(w, start, atol=1e-4) for w in ToyWatched.evaluated)
    assert not torch.allclose(plain_evaluated[-1], start, atol=1e-2)  # the weights themselves moved
    assert averaged["config"]["recipe"]["ema_decay"] == 0.999999 and "ema_decay" not in plain["config"]["recipe"]
    assert averaged["variant"] == "recipe.ema_decay=0.999999"


def test_each_evaluation_reads_the_average_of_the_weights_after_each_step(tmp_path):
    record = _watched_run(tmp_path, "recipe.ema_decay=0.5")
    steps = record["steps"]
    before = ToyWatched.trained[-steps:]  # the weights each timed step started from
    first_eval = record["curve"][0]["step"]
    assert 1 < first_eval < steps
    expected = before[0]  # the average starts at the weights training starts from
    for after in before[1:first_eval + 1]:  # the weights after steps 1 .. first_eval
        expected = 0.5 * expected + 0.5 * after
    assert torch.allclose(ToyWatched.evaluated[0], expected, atol=1e-6)
    assert not torch.allclose(ToyWatched.evaluated[0], before[first_eval], atol=1e-3)


def test_frozen_parameters_are_not_averaged():
    model = _WithPositions()
    model.linear.bias.requires_grad_(False)  # as frozen embeddings: no step changes them
    average = WeightAverage(model, decay=0.5)
    assert all(t.data_ptr() != model.linear.bias.data_ptr() for t in average._floats[1])
    assert any(t.data_ptr() == model.linear.weight.data_ptr() for t in average._floats[1])
