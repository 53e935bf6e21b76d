"""Evaluating an exponential moving average of the weights (`Recipe.ema_decay`).

Fine-tuning a pretrained encoder at a useful learning rate moves its decision threshold from one
step to the next (docs/methodology.md, sentiment): evaluations of the raw weights then swing by
points between neighbouring evaluation points. An average of the recent weights is the model those
steps are circling, and its evaluations do not swing (on sentiment's quick fine-tuning the largest
drop between neighbouring evaluations fell from 3 points to at most 1.5). It is part of the recipe
(a run reports the model it evaluated), and its update is part of the timed step.

Written here rather than with `torch.optim.swa_utils.AveragedModel`: that averages integer buffers
(position ids) through float arithmetic and truncates them, and its first update takes a branch a
captured CUDA graph would freeze. This average starts as a copy of the weights (`restart`, called
again after the harness's warm-up steps are undone) and every update is the same in-place work, so
a captured step replays it unchanged.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """`module`: a copy of `model` whose trained parameters and floating-point buffers follow
    avg <- decay * avg + (1 - decay) * weights after each `update`; other buffers are copied, and frozen
    parameters (which no step changes) are left as copied."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay {decay} must be in (0, 1)")
        self.model, self.decay = model, decay
        self.module = copy.deepcopy(model).requires_grad_(False)
        params = [(a.detach(), w.detach()) for a, w in zip(self.module.parameters(), model.parameters(), strict=True)
                  if w.requires_grad]
        buffers = list(zip(self.module.buffers(), model.buffers(), strict=True))
        averaged = params + [(a, w) for a, w in buffers if a.is_floating_point()]
        self._floats = ([a for a, _ in averaged], [w for _, w in averaged])
        self._others = [(a, w) for a, w in buffers if not a.is_floating_point()]

    @staticmethod
    def _tensors(model: nn.Module) -> list[torch.Tensor]:
        return [t.detach() for t in (*model.parameters(), *model.buffers())]

    @torch.no_grad()
    def update(self) -> None:
        averaged, weights = self._floats
        if averaged:
            torch._foreach_lerp_(averaged, weights, 1.0 - self.decay)
        for kept, current in self._others:
            kept.copy_(current)

    @torch.no_grad()
    def restart(self) -> None:
        """The average becomes the weights as they are now (in place: a captured step keeps its addresses)."""
        for kept, current in zip(self._tensors(self.module), self._tensors(self.model), strict=True):
            kept.copy_(current)


def for_recipe(model: nn.Module, ema_decay: float) -> WeightAverage | None:
    """The average a recipe asks for (`ema_decay` > 0), or None: evaluate the weights themselves."""
    return WeightAverage(model, ema_decay) if ema_decay else None
