"""The supervised training loop: one function to read top to bottom.

Warm-up (first steps; under --compile every compilation the run needs, its
evaluation's included) runs on a snapshot that is restored afterwards, so it
is timed apart and changes nothing about the run. Train
time is measured between eval points with the device synchronised there
only; evaluation is timed apart. The run stops when the target is first
met, when the step budget is spent, or when the train-time cap is spent
(`max_time_s` counts train time: warm-up and evaluation are not in it). The
eval-point routine (loss average, divergence, stop reason) is
`suite.running.context.EvalPoints`, shared with the RL loops.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Iterator

import torch
from torch import nn
from torch.fx.experimental import _config as fx_config

from suite.running import distributed
from suite.training import averaging, graphs
from suite.training.evaluation import BestState, decision_splits, evaluate
from suite.taskapi import variants
from suite.running.context import EvalPoints, RunContext, TrainResult
from suite.taskapi.data import load_eval_splits, move_to
from suite.running.device import autocast, no_host_sync, use_channels_last
from suite.errors import DataError
from suite.measuring.flops import flops_of
from suite.training.optim import build_optimizer, build_scheduler
from suite.taskapi.spec import Recipe
from suite.taskapi.task import BatchSource, Task
from suite.measuring.timing import Heartbeat, SegmentClock

DEVICE_DATA_LIMIT = 0.25  # fraction of GPU memory a split may take to be moved there once
WARMUP_STEPS = 2
# The `--set` keys this loop reads; suite.taskapi.variants accepts no other for the models it trains.
SETTINGS = ("recipe.lr", "recipe.batch_size", "recipe.optimizer", "recipe.weight_decay", "recipe.ema_decay", "model.*",
            "data.fraction")


def build_on_device(task: Task, ctx: RunContext, channels_last: bool,
                    varying_shapes: bool = False) -> tuple[nn.Module, nn.Module]:
    """The task's model on the run's device (and layout), its parameter count in the result, and the
    module the steps call: DDP-wrapped under torchrun, compiled with --compile (with dynamic shapes when
    the batches have `varying_shapes`). Shared with suite.measuring.speed.

    The model is put in train mode: `from_pretrained` returns one in eval mode (dropout off), which would
    train so until the first evaluation switched it."""
    model = task.build_model().to(ctx.device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ctx.result.params = sum(p.numel() for p in model.parameters())
    train_model = distributed.wrap(model, ctx)
    if ctx.compile:
        train_model = compiled(train_model, varying_shapes)
    return model, train_model


def compiled(module: nn.Module, varying_shapes: bool) -> nn.Module:
    """`module` under torch.compile as `--compile` runs it: default mode; with `varying_shapes`, dynamic.

    Batches trimmed to their longest item would compile again at the second length met (torch then makes
    that size dynamic), on the train clock: compiled dynamic from the start, the warm-up's compilation
    serves every length. Inductor's layout optimisation is off then: on a CPU it lays convolution outputs
    out channels-last even with dynamic shapes (on CUDA it turns itself off for them) and compiles the
    backward for those concrete strides, whose guards pin the length, so each new length would compile
    again. Fixed shapes keep torch's defaults (static until a size varies)."""
    if not varying_shapes:
        return torch.compile(module)
    return torch.compile(module, dynamic=True, options={"layout_optimization": False})


def make_train_step(task: Task, model: nn.Module, train_model: nn.Module, optimizer: torch.optim.Optimizer,
                    recipe: Recipe, ctx: RunContext, average: averaging.WeightAverage | None = None,
                    ) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The supervised training step: batch -> its loss (detached, so no host sync), after one optimizer step
    (and the update of the recipe's weight `average`, when it has one).

    The loss is the task's, of `train_model` (what `build_on_device` returns for the steps: DDP,
    compiled) in the run's precision; gradients are clipped on `model`'s parameters when the recipe
    says so. The learning-rate schedule is the caller's. The loop and the speed profile
    (`suite.measuring.speed`) train with this one step, so what the speed profile times is what a run trains.
    """
    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast(ctx.device, ctx.precision):
            loss = task.loss(train_model, batch)
        loss.backward()
        if recipe.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if average is not None:
            average.update()
        return loss.detach()

    return step


def train_supervised(task: Task, ctx: RunContext) -> TrainResult:
    spec, recipe, budget = task.spec, task.spec.recipe, task.spec.budget
    result = ctx.result
    channels_last = use_channels_last(ctx.device, recipe.cpu_channels_last)
    clock = SegmentClock(ctx.device)

    # The data segment: reading, decoding, feature caches, tokenising and the copy to the device. Its
    # start is the first touch of the data, the origin of the never-paused wall clock (wall_to_target_s).
    clock.start("data")
    train = variants.training_split(task.load("train"), spec)
    train = place(train, ctx.device, channels_last)
    evals, skipped = load_eval_splits(task, spec.eval_splits)
    evals = {split: place(source, ctx.device, channels_last) for split, source in evals.items()}
    clock.stop()
    if len(train) == 0:
        raise DataError(f"task {spec.task!r} profile {spec.profile!r}: the training split is empty")
    if ctx.cuda_graphs and not train.fixed_shapes:
        raise graphs.Uncapturable(f"the training batches of {spec.task!r} vary in shape ({type(train).__name__} "
                                  "trims each to its longest item); the training loop captures fixed-shape steps "
                                  "only (the speed profile captures one graph per batch shape)")
    result.data_info = {**split_info(train, evals), **{split: {"skipped": why} for split, why in skipped.items()}}
    decide, report = decision_splits(spec.target, evals)

    model, train_model = build_on_device(task, ctx, channels_last, varying_shapes=not train.fixed_shapes)
    # What evaluations read (`evaluated`; `eval_model` calls it): the weights, as the steps call them, or
    # the recipe's average of them, compiled on its own under --compile.
    average = averaging.for_recipe(model, recipe.ema_decay)
    evaluated, eval_model = model, train_model
    if average is not None:
        evaluated = eval_model = average.module
        if ctx.compile:
            eval_model = compiled(average.module, varying_shapes=not train.fixed_shapes)

    drop_last = len(train) >= recipe.batch_size
    steps_per_epoch = max(1, len(train) // recipe.batch_size if drop_last else 1)
    total_steps = ctx.max_steps or budget.max_steps or math.ceil(budget.max_epochs * steps_per_epoch)
    eval_every = spec.eval_every or len(train)  # in training samples; default once per epoch
    result.eval_cadence = {"every": eval_every, "unit": "samples"}
    max_time_s = ctx.max_time_s or budget.max_time_s
    optimizer = build_optimizer(model, recipe, capturable=ctx.cuda_graphs)
    scheduler = build_scheduler(optimizer, recipe, total_steps)

    step = make_train_step(task, model, train_model, optimizer, recipe, ctx, average=average)
    if ctx.cuda_graphs:  # captured at the first warm-up step; replayed for every step after
        step = graphs.CapturedStep(step, model, optimizer)

    batches = endless(train, recipe.batch_size, ctx, drop_last, copied=ctx.compile and not train.fixed_shapes)
    # FLOPs are counted on the first training batch (a typical one, not the longest) and scaled per
    # padded position to the batches actually trained (`FlopScale`): variable-length data is not
    # over-counted. The batch then goes back in front of the stream, so the data order is unchanged.
    first = move_to(next(batches), ctx.device)
    batches = itertools.chain([first], batches)
    # Counting and warming up change nothing the run trains (`graphs.undone`); a captured step's graph
    # reads the weights and optimizer state it was captured with, so they are put back in place. Duck
    # shaping is off while the warm-up compiles: it would give sizes equal in the warm-up's batch (a
    # length equal to the batch size) one symbol, and a later batch where they differ would compile again.
    with graphs.undone(model, optimizer, ctx.device, in_place=ctx.cuda_graphs), fx_config.patch(use_duck_shape=False):
        counted = count_flops(task, model, first, ctx)
        scale = FlopScale(first)
        clock.start("warmup")
        for _ in range(WARMUP_STEPS):
            step(first)
        if ctx.compile:
            # Evaluation runs the model in eval mode under no_grad, graphs of their own, on batches that
            # come in the same order, of the same shapes, at every evaluation (the short last one
            # included): one evaluation here compiles all that every later one runs.
            evaluate(task, eval_model, decide, ctx)
    if average is not None:  # the warm-up's updates are undone with the weights
        average.restart()
    if ctx.cuda_graphs:
        step.freeze()
    clock.stop()

    points = EvalPoints(spec.target, result, ctx.device, stop_at_target=ctx.stop_at_target)
    best = BestState(evaluated, keep=not ctx.stop_at_target and bool(report))
    samples, next_eval = 0, eval_every
    work: dict[str, torch.Tensor | float] = {}  # the task's own units (tokens, seconds of audio)
    ctx.log(f"  {total_steps} steps, eval every {eval_every} samples on {', '.join(decide) or 'no split'}, "
            f"cap {max_time_s:.0f}s of train time")
    heartbeat = Heartbeat(ctx.log, total_steps, "steps", max_time_s)
    done_steps = 0  # steps fully taken (a Ctrl-C can land inside one)
    clock.start("train")
    try:
        for step_index in range(1, total_steps + 1):
            with no_host_sync(ctx):  # no-op unless a test asks (suite.running.device.no_host_sync)
                batch = move_to(next(batches), ctx.device)
                loss = step(batch)
                scheduler.step()
                done_steps = step_index
                samples += task.batch_size(batch) * ctx.world_size
                scale.add(batch)
                for unit, amount in task.batch_work(batch).items():
                    work[unit] = work.get(unit, 0.0) + amount * ctx.world_size
            diverged = points.add(loss)
            out_of_time = ctx.world_size == 1 and clock.total("train") > max_time_s
            if not (diverged or out_of_time or samples >= next_eval or step_index == total_steps):
                heartbeat.beat(step_index, clock.total("train"))
                continue

            clock.stop()
            while next_eval <= samples:
                next_eval += eval_every
            train_loss = points.train_loss(diverged, f"at step {step_index}")
            if train_loss is None:
                break
            clock.start("eval")
            metrics = evaluate(task, eval_model, decide, ctx)
            clock.stop()
            points.record(step_index, clock, metrics, samples=samples, **{"train/loss": train_loss})
            if points.improved(metrics):
                best.keep_now(step_index, metrics)
            train_time = clock.total("train")
            ctx.log(f"  step {step_index:>6} {train_time:8.1f}s  loss {train_loss:.4f}  "
                    + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            heartbeat.quiet()
            stop = points.stop_reason(out_of_time=train_time > max_time_s, budget_spent=step_index == total_steps)
            stop = distributed.agree(stop, ctx)
            if stop:
                result.stop_reason = stop
                break
            clock.start("train")
    finally:
        # Also on Ctrl-C or a crash: the record keeps what was trained so far.
        clock.stop()
        result.steps = done_steps
        result.samples = samples
        fill_times(result, clock, done_steps)
        result.throughput = throughput(samples, work, result.train_time_s)
        result.flops_per_sample, result.flops_method = scale.per_sample(counted)
    if report and result.status == "ok" and result.curve:
        clock.start("report")  # the test split and held-out sets: reported, never timed, never deciding
        result.final_metrics.update(evaluate(task, eval_model, report, ctx))
        best.report(lambda: evaluate(task, eval_model, report, ctx), result)
        clock.stop()
    return result


def fill_times(result: TrainResult, clock: SegmentClock, steps: int) -> None:
    """The result's segment totals and train seconds per step, from the run's clock."""
    result.data_s = round(clock.total("data"), 4)
    result.train_time_s = round(clock.total("train"), 4)
    result.warmup_s = round(clock.total("warmup"), 4)
    result.eval_time_s = round(clock.total("eval"), 4)
    result.seconds_per_step = round(clock.total("train") / steps, 6) if steps else None


def split_info(train: BatchSource, evals: dict[str, BatchSource]) -> dict[str, dict]:
    """The record's `data_info`: each split's size and what its loader said of it (fingerprint, counts...)."""
    return {"train": {"samples": len(train), **train.info},
            **{s: {"samples": len(src), **src.info} for s, src in evals.items()}}


def throughput(samples: int, work: dict[str, torch.Tensor | float], train_time_s: float) -> dict | None:
    """Samples per second of train time, and the task's own units per second beside it."""
    if train_time_s <= 0:
        return None
    out: dict = {"value": round(samples / train_time_s, 2), "unit": "samples/s"}
    if work:
        out["extra"] = {f"{unit}/s": round(float(amount) / train_time_s, 2) for unit, amount in work.items()}
    return out


def place(source: BatchSource, device: torch.device, channels_last: bool) -> BatchSource:
    """Move a split to the device once when it fits (CPU: always; GPU: under a memory share)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        if source.nbytes() > DEVICE_DATA_LIMIT * free:
            return BatchwiseOnDevice(source, device)
    return source.to(device, channels_last)


class BatchwiseOnDevice(BatchSource):
    """A split too large for the device: it stays in host memory and each batch is moved."""

    def __init__(self, source: BatchSource, device: torch.device):
        self.source, self.device, self.info = source, device, source.info

    def __len__(self) -> int:
        return len(self.source)

    @property
    def fixed_shapes(self) -> bool:
        return self.source.fixed_shapes

    def nbytes(self) -> int:
        return self.source.nbytes()

    def to(self, device, channels_last=False):
        return self.source.to(device, channels_last)

    def select(self, index):
        return BatchwiseOnDevice(self.source.select(index), self.device)

    def batches(self, batch_size, **kw):
        for batch in self.source.batches(batch_size, **kw):
            yield move_to(batch, self.device)


def endless(source: BatchSource, batch_size: int, ctx: RunContext, drop_last: bool,
            copied: bool = False) -> Iterator[dict]:
    """Shuffled batches, epoch after epoch, in an order fixed by the run's seed.

    `copied`: each tensor of a batch copied into contiguous memory of its own. A batch trimmed to its
    longest item is a view of the padded one, strided as the padded length unless the item is that
    long, and code compiled with dynamic shapes guards on a view's base and on a layout it tests
    (a `view`, a contiguity check): it would compile again when the other kind of batch comes."""
    while True:
        for batch in source.batches(batch_size, shuffle=True, generator=ctx.generator, drop_last=drop_last,
                                    shard=ctx.shard):
            yield {k: v.clone(memory_format=torch.contiguous_format) for k, v in batch.items()} if copied else batch


class FlopScale:
    """Scales the FLOPs counted on one batch to the batches trained, per padded position.

    A batch's length is dim 1 of its largest tensor when that tensor may vary in length: 2-D
    (tokens, audio samples) or 3-D (frames x features); else 1 (4-D images: every batch costs
    the same per sample).
    Sums are of host-side shapes only: no device sync. Linear in length, so attention's
    quadratic part is scaled linearly from the counted batch (a small error either way).
    """

    def __init__(self, counted: dict[str, torch.Tensor]):
        self.key = max(counted, key=lambda k: counted[k].numel())
        tensor = counted[self.key]
        self.varies = tensor.dim() in (2, 3)  # (batch, length[, features]): token ids, waveforms, audio features
        self.counted_samples = len(tensor)
        self.counted_length = tensor.shape[1] if self.varies else 1
        self.samples = self.positions = 0

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        tensor = batch[self.key]
        self.samples += len(tensor)
        self.positions += len(tensor) * (tensor.shape[1] if self.varies else 1)

    def per_sample(self, counted_flops: float | None) -> tuple[float | None, str | None]:
        """(training FLOPs per sample trained, how they were counted)."""
        if counted_flops is None:
            return None, None
        how = (f"torch FlopCounterMode, forward + backward of the first training batch "
               f"({self.counted_samples} samples")
        if not self.varies or not self.samples:
            return counted_flops / max(1, self.counted_samples), how + ")"
        per_position = counted_flops / (self.counted_samples * self.counted_length)
        mean_length = self.positions / self.samples
        return per_position * mean_length, (how + f" x {self.counted_length} positions of {self.key!r}), scaled per "
                                                  f"padded position to the batches trained (mean {mean_length:.1f})")


def count_flops(task: Task, model: nn.Module, batch: dict[str, torch.Tensor], ctx: RunContext) -> float | None:
    """Training FLOPs (forward + backward) of one batch, where torch can count them."""
    def forward_backward() -> None:
        with autocast(ctx.device, ctx.precision):
            loss = task.loss(model, batch)
        loss.backward()

    flops = flops_of(forward_backward)
    model.zero_grad(set_to_none=True)
    return flops
