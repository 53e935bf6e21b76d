"""Tiny tasks for harness tests, loaded with `--tasks-from tests.toy_tasks` (never auto-registered).

`toy_linear` learns a separable 2-class problem in a few steps; `toy_crash`
raises while loading data; `toy_diverge` returns an infinite loss; `toy_unreachable` never meets its target;
`toy_interrupt` is stopped by Ctrl-C in the middle of training (`toy_signalled`: by a real SIGINT); `toy_slow` runs until stopped from outside
(its time cap is 30 s).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from suite import Budget, ProfileSpec, Recipe, Target, Task, TensorSource, register_task


def _profiles(target: float = 0.95, steps: int = 60) -> dict[str, ProfileSpec]:
    spec = ProfileSpec("toy", Target("val/accuracy", target, True, "toy"),
                       Budget(max_steps=steps, max_time_s=30, eval_every=160),
                       {"linear": Recipe(batch_size=32, lr=0.1, schedule="constant", warmup_frac=0.0)})
    return {"smoke": spec, "quick": spec, "full": spec}


class ToyLinear(Task):
    name = "toy_linear"
    models = {"linear": lambda: nn.Linear(2, 2)}
    default_model = "linear"
    metrics = {"accuracy": True}
    profiles = _profiles()

    def load(self, split):
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        x = torch.randn(256, 2, generator=g)
        return TensorSource(x=x, y=(x[:, 0] + x[:, 1] > 0).long())

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"])

    def evaluate(self, model, source):
        batch = next(source.batches(len(source)))
        return {"accuracy": (model(batch["x"]).argmax(1) == batch["y"]).float().mean().item()}

    def batch_work(self, batch):
        return {"coords": batch["x"].new_tensor(float(batch["x"].numel()))}  # two per sample


class ToyCrash(ToyLinear):
    name = "toy_crash"

    def load(self, split):
        raise RuntimeError("disk on fire\nsecond line")


class ToyDiverge(ToyLinear):
    name = "toy_diverge"

    def loss(self, model, batch):
        return super().loss(model, batch) * float("inf")


class ToyUnreachable(ToyLinear):
    """Its target (accuracy above 1) is never met: only the budget or the time cap stops it."""

    name = "toy_unreachable"
    profiles = _profiles(target=1.01)


class ToyInterrupt(ToyLinear):
    """Ctrl-C arrives during training step 12 (after the warm-up's loss calls)."""

    name = "toy_interrupt"
    profiles = _profiles(target=1.01)  # never met: the run would go on
    interrupt_at = 12 + 3  # 1 FLOP count + 2 warm-up steps come first

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return super().loss(model, batch)


class ToySignalled(ToyLinear):
    """Sends itself a real SIGINT in training step 8, as a user's Ctrl-C would arrive."""

    name = "toy_signalled"
    profiles = _profiles(target=1.01)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, model, batch):
        import os
        import signal

        self.calls += 1
        if self.calls == 8 + 3:  # after the FLOP count and the warm-up
            os.kill(os.getpid(), signal.SIGINT)
        return super().loss(model, batch)


class ToySlow(ToyLinear):
    """Never reaches its target and takes 50 ms a step: a run to stop from outside (SIGTERM, kill -9)."""

    name = "toy_slow"
    profiles = _profiles(target=1.01, steps=100000)

    def loss(self, model, batch):
        import time

        time.sleep(0.05)
        return super().loss(model, batch)


for _cls in (ToyLinear, ToyCrash, ToyDiverge, ToyUnreachable, ToyInterrupt, ToySignalled, ToySlow):
    register_task(_cls)
