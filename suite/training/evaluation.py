"""What a supervised run evaluates: which splits decide and which only report (`decision_splits`), the
metrics of a model on them (`evaluate`), and the weights kept at the best evaluation point when a run
trains to its budget (`BestState`, shared with the RL loops)."""
from __future__ import annotations

import torch
from torch import nn

from suite.errors import DataError
from suite.running.context import RunContext, TrainResult
from suite.running.device import autocast
from suite.taskapi.task import BatchSource, Task


def decision_splits(target, evals: dict[str, BatchSource]) -> tuple[dict, dict]:
    """(the split evaluated at every eval point, the splits evaluated once when the run stops).

    The target's split decides (validation); test and held-out sets only report, so no run stops
    on, or is tuned against, the figures it reports. Without a target the first split decides.
    """
    if not evals:
        return {}, {}
    name = target.split if target is not None else next(iter(evals))
    if name not in evals:
        raise DataError(f"the target metric {target.metric!r} names split {name!r}, which the profile does not "
                        f"evaluate ({', '.join(evals)}): add it to eval_splits")
    return {name: evals[name]}, {k: v for k, v in evals.items() if k != name}


class BestState:
    """Training to the budget: a copy of the weights at the best evaluation, so the test split is
    reported there too (`result.best`). Idle (no copies) when the run stops at its target."""

    def __init__(self, model: nn.Module, keep: bool):
        self.model, self.keep = model, keep
        self.state: dict | None = None
        self.step: int | None = None
        self.metrics: dict[str, float] = {}

    def keep_now(self, step: int, metrics: dict[str, float]) -> None:
        if self.keep:
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self.step, self.metrics = step, dict(metrics)

    def report(self, evaluate_report, result: TrainResult) -> None:
        """Fill `result.best`: the best point's metrics and the report splits evaluated on its weights."""
        if not self.keep or self.step is None:
            return
        last = result.curve[-1]["step"]
        if self.step == last:
            result.best = {"step": self.step, "metrics": dict(result.final_metrics)}
            return
        current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        result.best = {"step": self.step, "metrics": {**self.metrics, **evaluate_report()}}
        self.model.load_state_dict(current)


def evaluate(task: Task, model: nn.Module, evals: dict[str, BatchSource], ctx: RunContext) -> dict[str, float]:
    """Metrics of every eval split, named `split/metric`."""
    metrics: dict[str, float] = {}
    model.eval()
    with torch.no_grad(), autocast(ctx.device, ctx.precision):
        for split, source in evals.items():
            for name, value in task.evaluate(model, source).items():
                metrics[f"{split}/{name}"] = float(value)
    model.train()
    return metrics
