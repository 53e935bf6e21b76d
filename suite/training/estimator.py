"""The harness path for fitted estimators and rules: fit once, evaluate once, one record.

A model declared `Model(factory, estimator=True)` (`suite.taskapi.models`) is not
trained by a loop. The runner hands it to `train_estimator`:

- supervised task: `task.build_model()` returns a `Fitted` module. Its
  `fit(train, seed)` sees the whole training split (`task.load("train")`,
  the deep models' data) and is timed: fit time is train time and, when the
  target is met, time-to-target. It is then scored once on every eval split
  by the task's own `evaluate` through the supervised loop's eval routine,
  so its metrics are computed by the same code as a deep model's. A rule
  (`fits = False`) is not fitted: train time 0.
- RL task: `task.models[model](obs_space, action_space, **model_kwargs)`
  returns a policy module with `greedy(obs) -> actions`, played once on the
  task's evaluation environments for the task's evaluation episodes (those
  of the default model's recipe unless the model's own recipe has `algo`).

Throughput is training samples per second of fit. scikit-learn runs on the
host, so estimators are fitted and scored on the CPU whatever `--device`
says (the record's data_info says so). A fit cannot be cut short: the
budget's time cap does not apply to it.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from suite.running.context import EvalPoints, RunContext, TrainResult
from suite.taskapi.data import load_eval_splits, training_fraction
from suite.errors import DataError, SkipRun
from suite.taskapi.task import BatchSource, TaskBase
from suite.measuring.timing import SegmentClock

CPU = torch.device("cpu")
FIT_BATCH = 1024  # batch size at which training inputs are turned into features
# BLAS threads while fitting and predicting. On 2 cores shared with other jobs, OpenBLAS's second thread
# spin-waits: logistic regression on sklearn's digits took 11.4 s with 2 threads and 0.13 s with 1.
BLAS_THREADS = 1
# The `--set` keys this path reads ("model.*": the model's keywords, suite.taskapi.models.keywords): a fit has no
# optimizer or batches, so no recipe.* key reaches it, and a rule (`Fitted.fits` False, or an RL policy
# played as it is) sees no training data either.
SETTINGS = {"fitted": ("model.*", "data.fraction"), "rule": ("model.*",)}


class Fitted(nn.Module):
    """A fitted estimator or a rule, used where the task expects its nn.Module.

    `forward` takes the inputs the task's deep models take and returns what
    they return (e.g. logits), so `task.evaluate` scores it unchanged. Fitted
    numbers (coefficients) are kept as frozen parameters: they count as the
    record's `params`, and tell `evaluate` the model's device.
    """

    fits: ClassVar[bool] = True  # False: a rule, nothing to fit (train time 0)

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []  # what the fit warned about (no convergence...), for the record

    def fit(self, train: BatchSource, seed: int) -> None:
        raise NotImplementedError


class FittedClassifier(Fitted):
    """Hand-crafted features + a scikit-learn classifier with `decision_function` (a linear one).

    `features(*inputs)` maps a batch's input tensors (named by `inputs`) to a
    2-D array, or to a list of texts for an estimator that vectorises text
    itself (a Pipeline starting with TfidfVectorizer). `forward` returns
    logits (the decision function; for two classes [0, score]), so cross-entropy
    on them is the estimator's log-loss when it is a logistic regression.
    """

    def __init__(self, features: Callable[..., Any], estimator: Any, inputs: Sequence[str] = ("x",),
                 label: str = "y"):
        super().__init__()
        self.features, self.estimator = features, estimator
        self.inputs, self.label = tuple(inputs), label
        self.coefficients = nn.Parameter(torch.zeros(0), requires_grad=False)

    def fit(self, train: BatchSource, seed: int) -> None:
        from sklearn.pipeline import Pipeline

        parts, labels = [], []
        for batch in train.batches(FIT_BATCH):
            parts.append(self.features(*(batch[k] for k in self.inputs)))
            labels.append(batch[self.label].cpu().numpy())
        x = [t for part in parts for t in part] if isinstance(parts[0], list) else np.concatenate(parts)
        y = np.concatenate(labels)
        if len(np.unique(y)) < 2:
            raise DataError(f"the training split has {len(y)} samples of one class: a classifier needs two")
        seeds = {k: seed for k in self.estimator.get_params() if k == "random_state" or k.endswith("__random_state")}
        self.estimator.set_params(**seeds)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.estimator.fit(x, y)
        self.notes += sorted({str(w.message).splitlines()[0] for w in caught})
        final = self.estimator[-1] if isinstance(self.estimator, Pipeline) else self.estimator
        coef = np.concatenate([np.ravel(final.coef_), np.ravel(final.intercept_)])
        self.coefficients = nn.Parameter(torch.from_numpy(coef).float(), requires_grad=False)

    def forward(self, *inputs: torch.Tensor, **_ignored: Any) -> torch.Tensor:
        scores = torch.from_numpy(np.asarray(self.estimator.decision_function(self.features(*inputs)))).float()
        return torch.stack([torch.zeros_like(scores), scores], 1) if scores.dim() == 1 else scores


def settings_of(kind: str, factory: Callable[..., Any]) -> tuple[str, ...]:
    """The `--set` keys (SETTINGS) an estimator of a `kind` task made by `factory` reads: a rule's when it is
    an RL policy or a `Fitted` class that does not fit, else a fitted model's."""
    rule = kind == "rl" or (isinstance(factory, type) and issubclass(factory, Fitted) and not factory.fits)
    return SETTINGS["rule" if rule else "fitted"]


def train_estimator(task: TaskBase, ctx: RunContext) -> TrainResult:
    """Fit (or not, for a rule) and evaluate once; the runner's trainer for `Model(estimator=True)`."""
    if task.spec.profile == "speed":
        raise SkipRun("the speed profile times training steps on synthetic data; a fitted model or rule has none")
    if task.kind == "rl":
        return _play_rule(task, ctx)
    from suite.training.evaluation import decision_splits, evaluate
    from suite.training.loop import fill_times, split_info, throughput

    spec, result = task.spec, ctx.result
    clock = SegmentClock(CPU)
    clock.start("data")
    train = training_fraction(task.load("train"), spec.overrides.get("data.fraction"), spec.seed)
    evals, skipped = load_eval_splits(task, spec.eval_splits)
    clock.stop()
    result.data_info = {**split_info(train, evals), **{split: {"skipped": why} for split, why in skipped.items()},
                        "device": "cpu (scikit-learn fits and predicts on the host)"}
    decide, report = decision_splits(spec.target, evals)
    model = task.build_model()
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        if model.fits:
            clock.start("train")
            model.fit(train, ctx.seed)
            clock.stop()
            result.steps, result.samples = 1, len(train)
        result.params = sum(p.numel() for p in model.parameters())
        host_ctx = dataclasses.replace(ctx, device=CPU, precision="fp32")
        clock.start("eval")
        metrics = evaluate(task, model, decide, host_ctx)
        clock.stop()
        EvalPoints(spec.target, result, CPU).record(result.steps, clock, metrics, samples=result.samples)
        clock.start("report")
        result.final_metrics.update(evaluate(task, model, report, host_ctx))
        clock.stop()
    fit_s = round(clock.total("train"), 4)
    if model.notes:
        result.data_info["fit_warnings"] = model.notes
    ctx.log(f"  {'fitted in' if model.fits else 'a rule, no fit;'} {fit_s:.1f}s  "
            + "  ".join(f"{k} {v:.4f}" for k, v in result.final_metrics.items()))
    fill_times(result, clock, result.steps)
    result.stop_reason = "target" if result.reached_target else "budget"  # one fit is the whole budget
    if model.fits and fit_s > 0:
        result.throughput = throughput(result.samples, _work(task, train), fit_s)
    return result


def _work(task: TaskBase, train: BatchSource) -> dict[str, float]:
    """The task's own units of work (tokens, seconds of audio) in the training split."""
    total: dict[str, float] = {}
    for batch in train.batches(FIT_BATCH):
        for unit, amount in task.batch_work(batch).items():
            total[unit] = total.get(unit, 0.0) + float(amount)
    return total


def _play_rule(task: TaskBase, ctx: RunContext) -> TrainResult:
    """A policy rule on the task's evaluation environments: validation and test episodes, train time 0."""
    from suite.training.loop import fill_times
    from suite.training.rl.common import EVAL_SEED_OFFSET, TEST_SEED_OFFSET
    from suite.training.rl.envs import make_vector_env
    from suite.training.rl.evaluation import evaluate_policy

    spec, result = task.spec, ctx.result
    algo = spec.recipe.algo or task.profiles[spec.profile].recipes[task.default_model].algo
    clock = SegmentClock(CPU)
    clock.start("data")
    envs = make_vector_env(task.make_env, algo.eval_envs, evaluation=True)
    clock.stop()
    try:
        policy = task.models[spec.model](envs.single_observation_space, envs.single_action_space,
                                         **spec.recipe.model_kwargs)
        result.params = sum(p.numel() for p in policy.parameters())
        clock.start("eval")
        val = evaluate_policy(policy, envs, algo.eval_episodes, CPU, seed=ctx.seed + EVAL_SEED_OFFSET)
        clock.stop()
        EvalPoints(spec.target, result, CPU).record(0, clock, {f"val/{k}": v for k, v in val.items()})
        clock.start("report")
        test = evaluate_policy(policy, envs, algo.test_episodes, CPU, seed=ctx.seed + TEST_SEED_OFFSET)
        clock.stop()
    finally:
        envs.close()
    result.final_metrics.update({f"test/{k}": v for k, v in test.items()})
    ctx.log(f"  a rule, no training: return {test['return']:.2f} ± {test['return_std']:.2f} "
            f"({test['episodes']:.0f} test episodes)")
    fill_times(result, clock, 0)
    result.stop_reason = "target" if result.reached_target else "budget"
    return result
