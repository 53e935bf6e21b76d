"""An RL task under torchrun (world size > 1) stops before training: a `skipped` record with the reason."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from suite.running.context import RunContext
from suite.errors import SkipRun


def test_rl_under_torchrun_is_skipped_before_training():
    rl = pytest.importorskip("suite.training.rl", reason="the rl extra is not installed")
    task = SimpleNamespace(spec=SimpleNamespace(task="atari_rl", recipe=None))  # never reached
    ctx = RunContext(device=torch.device("cpu"), precision="fp32", compile=False, generator=torch.Generator(),
                     seed=0, rank=1, world_size=2)
    with pytest.raises(SkipRun, match=r"^atari_rl: RL runs train in one process.*world size 2.*--executor ray"):
        rl.train_rl(task, ctx)
