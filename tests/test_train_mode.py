"""Training runs in train mode from its first step, whatever mode the task built the model in.

A pretrained model comes back from `from_pretrained` in eval mode (dropout off): trained as it
comes, it would learn without dropout until the first evaluation put it in train mode.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from suite.running.config import SuiteOptions
from suite.running.runner import run_one
from tests.toy_tasks import ToyLinear


class ToyBuiltInEvalMode(ToyLinear):
    """toy_linear with its model built in eval mode; `loss` notes the mode of every call."""
    name = "toy_eval_built"
    models = {"linear": lambda: nn.Sequential(nn.Dropout(0.1), nn.Linear(2, 2)).eval()}
    modes: list[bool] = []

    def loss(self, model, batch):
        type(self).modes.append(model.training)
        return F.cross_entropy(model(batch["x"]), batch["y"])


def test_a_model_built_in_eval_mode_trains_in_train_mode(tmp_path):
    ToyBuiltInEvalMode.modes = []
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path)
    record = run_one(ToyBuiltInEvalMode, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    modes = ToyBuiltInEvalMode.modes
    assert len(modes) >= record["steps"] > 0
    assert all(modes), f"steps taken in eval mode: {modes.count(False)} of {len(modes)}"
