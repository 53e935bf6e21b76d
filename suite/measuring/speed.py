"""The `speed` profile: the full profile's models and recipes at the full data's shapes, on synthetic data.

No dataset, no download, no target. A supervised task provides
`synthetic_batch(batch_size, device, generator)` (random data shaped like its
full dataset, made on the device); an RL task needs nothing more than its full
profile: its learner update is fed random observations of its environment's
observation space, and its real environments are stepped apart (random actions)
for environment steps per second.

A run: `pool` distinct synthetic batches are made on the device; training FLOPs
are counted once per distinct batch shape (FlopCounterMode, eager model); then
`warmup` untimed optimizer steps (compilation, cuDNN autotuning), then timed
steps cycling through the pool, each step timed (CUDA events on GPU,
`perf_counter` elsewhere): at least `measured` of them, then as many as take
`min_time_s` of wall time at the pace of those first ones (at most
`max_measured`), so a small model is timed over thousands of steps and a large
one over a few. The count is fixed once, on rank 0, for every rank. A step is
the trainer's own (`suite.training.loop.make_train_step`, the `make_update_step`
of `suite.training.rl.ppo` and `suite.training.rl.dqn`) with the run's model
layout, precision and optimizer, so what is timed is what a run trains. The
rule depends on the device (`STEPS`); `--max-steps N` times exactly N steps.
The record: throughput (samples/s and the task's own units, RL also the real
environments' env_steps/s), `speed` (step-time median, p10 and p90, counts and
the rule), peak memory, FLOPs per sample and utilisation (`suite.measuring.peak`).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from suite.running import distributed
from suite.running.context import RunContext, TrainResult
from suite.running.device import autocast, no_host_sync, use_channels_last
from suite.errors import SkipRun
from suite.measuring.flops import flops_of
from suite.training.loop import build_on_device, count_flops, make_train_step, throughput
from suite.training.optim import build_optimizer, build_scheduler
from suite.taskapi.spec import Budget, ProfileSpec
from suite.taskapi.task import Task
from suite.measuring.timing import SegmentClock
from suite.training import averaging, graphs

# The `--set` keys a supervised model's speed run reads (synthetic batches: no data.*); RL reads its algorithm's.
SETTINGS = ("recipe.lr", "recipe.batch_size", "recipe.optimizer", "recipe.weight_decay", "recipe.ema_decay", "model.*")
SYNTHETIC = "synthetic:"  # prefix of a speed profile's dataset name: "synthetic:cifar10"


@dataclass(frozen=True)
class Steps:
    pool: int  # distinct synthetic batches (variable-length tasks draw a shape for each)
    warmup: int  # untimed optimizer steps before the measured ones
    measured: int  # timed optimizer steps: at least these, then as many as `min_time_s` takes (exactly these at 0)
    env_steps: int  # vector-env steps of the real environments (RL)
    max_batch: int | None = None  # supervised batch cap: a GPU-sized batch of full-size speech takes minutes on a CPU
    # Timed steps go on for about this wall time (at most `max_measured` steps): a fixed count is a
    # few milliseconds for a small model, inside one scheduler tick's noise, and minutes for a large one.
    min_time_s: float = 0.0
    max_measured: int | None = None

    def most_steps(self) -> int:
        """The timed steps a run can take at most (its learning-rate schedule spans them)."""
        return self.max_measured if self.min_time_s > 0 and self.max_measured else self.measured


ENV_STEP_CAP = 100  # vector-env steps timed at most, in multiples of `Steps.env_steps`
STEPS = {"cuda": Steps(pool=8, warmup=10, measured=50, env_steps=500, min_time_s=1.0, max_measured=5000),
          "cpu": Steps(pool=2, warmup=1, measured=3, env_steps=100, max_batch=16, min_time_s=3.0, max_measured=500)}


def speed_profile(full: ProfileSpec) -> ProfileSpec:
    """The speed profile of a task: `full`'s recipes (their budgets dropped), synthetic data, no target."""
    recipes = {name: dataclasses.replace(recipe, budget=None) for name, recipe in full.recipes.items()}
    return ProfileSpec(dataset=SYNTHETIC + full.dataset, target=None,
                       budget=Budget(max_steps=max(plan.most_steps() for plan in STEPS.values()), max_time_s=600),
                       recipes=recipes,
                       eval_splits=())


def full_dataset(spec_dataset: str) -> str:
    """'synthetic:cifar10' -> 'cifar10' (the dataset whose shapes the synthetic data has)."""
    return spec_dataset.removeprefix(SYNTHETIC)


def step_plan(ctx: RunContext) -> Steps:
    """The device's step plan; `--max-steps N` times exactly N steps (no time rule)."""
    plan = STEPS["cuda"] if ctx.device.type == "cuda" else STEPS["cpu"]
    return dataclasses.replace(plan, measured=ctx.max_steps, min_time_s=0.0) if ctx.max_steps else plan


def device_generator(ctx: RunContext) -> torch.Generator:
    device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    return torch.Generator(device=device).manual_seed(ctx.seed)


def train_speed(task: Task, ctx: RunContext) -> TrainResult:
    """The runner's trainer for `--profile speed`, any task kind."""
    plan = step_plan(ctx)
    if task.kind == "rl":
        return _rl(task, ctx, plan)
    return _supervised(task, ctx, plan)


def _supervised(task: Task, ctx: RunContext, plan: Steps) -> TrainResult:
    recipe, result = task.spec.recipe, ctx.result
    channels_last = use_channels_last(ctx.device, recipe.cpu_channels_last)
    generator = device_generator(ctx)
    batch_size = min(recipe.batch_size, plan.max_batch or recipe.batch_size)
    try:
        pool = [_layout(task.synthetic_batch(batch_size, ctx.device, generator), channels_last)
                for _ in range(plan.pool)]
    except NotImplementedError as exc:
        raise SkipRun(str(exc)) from None
    model, train_model = build_on_device(task, ctx, channels_last)
    optimizer = build_optimizer(model, recipe, capturable=ctx.cuda_graphs)
    scheduler = build_scheduler(optimizer, recipe, plan.warmup + plan.most_steps())
    # the recipe's weight average is updated in its step, as the loop trains it
    train_step = make_train_step(task, model, train_model, optimizer, recipe, ctx,
                                 average=averaging.for_recipe(model, recipe.ema_decay))
    if ctx.cuda_graphs:  # one graph per batch shape of the pool (per batch where the step reads the host)
        train_step = graphs.CapturedStep(train_step, model, optimizer, repeating=True)

    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = train_step(batch)
        scheduler.step()  # as the loop steps its schedule after each optimizer step
        return loss

    def count(batch: dict[str, torch.Tensor]) -> float | None:
        return count_flops(task, model, batch, ctx)

    result.data_info = {"train": {"synthetic": True, "shapes_of_the_full_dataset": full_dataset(task.spec.dataset),
                                  "first_batch": {k: list(v.shape) for k, v in pool[0].items()}}}
    result = _measure(task, ctx, plan, pool, step, count, task.batch_size, task.batch_work)
    if result.speed is not None:  # `speed.batch_size` is what was measured (capped on CPU: `Steps.max_batch`)
        result.speed["recipe_batch_size"] = recipe.batch_size
        _note_graphs(result, train_step)
    return result


def _note_graphs(result: TrainResult, step) -> None:
    """`speed.cuda_graphs`: how many graphs the captured step holds (one per shape, or per batch)."""
    if isinstance(step, graphs.CapturedStep) and result.speed is not None:
        result.speed["cuda_graphs"] = len(step.graphs)


def _layout(batch: dict[str, torch.Tensor], channels_last: bool) -> dict[str, torch.Tensor]:
    if not channels_last:
        return batch
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and v.is_floating_point() else v
            for k, v in batch.items()}


def _measure(task: Task, ctx: RunContext, plan: Steps, pool: list[dict], step: Callable[[dict], torch.Tensor],
             count: Callable[[dict], float | None], batch_size: Callable[[dict], int],
             batch_work: Callable[[dict], dict]) -> TrainResult:
    """Warm up (counting FLOPs once per distinct batch shape), time `plan.measured` steps; fill ctx.result.

    Without torch.compile or CUDA graphs, the first warm-up step on each distinct shape runs under
    the FLOP counter (counting costs no extra pass: full-size models are slow on CPUs); compiled or
    captured (a capture runs eager warm-up steps of its own), the eager model is counted apart
    (`count`). The warm-up captures the graphs: every distinct batch meets the step in it.
    """
    result = ctx.result
    shapes = [tuple((k, tuple(v.shape)) for k, v in batch.items()) for batch in pool]
    counted: dict[tuple, float | None] = {}
    clock = SegmentClock(ctx.device)
    clock.start("warmup")
    for i in range(max(plan.warmup, len(set(shapes)), len(pool) if ctx.cuda_graphs else 0)):
        batch, shape = pool[i % len(pool)], shapes[i % len(pool)]
        if shape in counted:
            step(batch)
        elif ctx.compile or ctx.cuda_graphs:
            counted[shape] = count(batch)
            step(batch)
        else:
            counted[shape] = flops_of(lambda: step(batch))
    for shape, batch in zip(shapes, pool):  # shapes the warm-up did not reach (more shapes than steps)
        if shape not in counted:
            counted[shape] = count(batch)
    clock.stop()

    cuda = ctx.device.type == "cuda"
    events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
    times: list[float] = []
    loss_sum = torch.zeros((), device=ctx.device)
    samples, work = 0, {}
    rule = f", then as many as take {plan.min_time_s:g} s (at most {plan.most_steps()})" if plan.min_time_s > 0 else ""
    ctx.log(f"  speed: {plan.measured} timed steps{rule} after {plan.warmup} warm-up, {len(pool)} synthetic batches")
    total = plan.measured
    clock.start("train")
    began_all = time.perf_counter()
    try:
        for i in itertools.count():
            if i == plan.measured and plan.min_time_s > 0:
                total = steps_for_min_time(plan, ctx, began_all)
            if i >= total:
                break
            batch = pool[i % len(pool)]
            with no_host_sync(ctx):
                if cuda:  # device-side step times, read after the loop: no sync per step
                    events.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
                    events[i][0].record()
                began = time.perf_counter()
                loss_sum += step(batch)
                if cuda:
                    events[i][1].record()
                else:
                    times.append(time.perf_counter() - began)
                samples += batch_size(batch) * ctx.world_size
                for unit, amount in batch_work(batch).items():
                    work[unit] = work.get(unit, 0.0) + amount * ctx.world_size
            result.steps = i + 1
    finally:
        clock.stop()
        if cuda:
            times = [start.elapsed_time(end) / 1000.0 for start, end in events[:result.steps]]
        result.samples = samples
        result.train_time_s = round(clock.total("train"), 4)
        result.warmup_s = round(clock.total("warmup"), 4)
        result.stop_reason = "steps"
        if result.train_time_s > 0:
            result.throughput = throughput(samples, work, result.train_time_s)
        result.speed = {"steps": result.steps, "warmup_steps": plan.warmup, "distinct_batches": len(pool),
                        "distinct_shapes": len(counted), "batch_size": batch_size(pool[0]),
                        "min_steps": plan.measured, "min_time_s": plan.min_time_s,
                        "step_time_median_s": round(statistics.median(times), 6) if times else None,
                        "step_time_p10_s": round(float(np.quantile(times, 0.1)), 6) if times else None,
                        "step_time_p90_s": round(float(np.quantile(times, 0.9)), 6) if times else None}
        _note_flops(result, pool, shapes, counted, result.steps, batch_size)
    train_loss = (loss_sum / max(1, result.steps)).item()
    result.final_metrics = {"train/loss": train_loss}
    if not math.isfinite(train_loss):
        result.status, result.stop_reason = "diverged", "diverged"
        result.error = "non-finite training loss on synthetic data"
    return result


def steps_for_min_time(plan: Steps, ctx: RunContext, began: float) -> int:
    """The timed steps that take `plan.min_time_s` at the pace of the first `plan.measured` (at least
    those, at most `plan.most_steps()`), rank 0's count on every rank: ranks stopping on their own
    clocks would leave one waiting alone in the gradient all-reduce. One host sync on CUDA, so the
    pace is the device's, not that of the host queueing its work."""
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    pace = max(time.perf_counter() - began, 1e-9) / plan.measured
    want = min(plan.most_steps(), max(plan.measured, math.ceil(plan.min_time_s / pace)))
    return int(distributed.agree(str(want), ctx))


def _note_flops(result: TrainResult, pool: list[dict], shapes: list[tuple], counted: dict[tuple, float | None],
                steps: int, batch_size: Callable[[dict], int]) -> None:
    """FLOPs per sample over the `steps` timed steps, each distinct batch shape weighted by its steps."""
    uses = [0] * len(pool)
    for i in range(steps):
        uses[i % len(pool)] += 1
    trained = sum(n * batch_size(b) for n, b in zip(uses, pool))
    if all(counted[s] is not None for s in shapes) and trained:
        result.flops_per_sample = sum(n * counted[s] for n, s in zip(uses, shapes)) / trained
        result.flops_method = (f"torch FlopCounterMode, forward + backward of each of {len(counted)} distinct "
                               f"batch shape(s), weighted by the steps trained on each")


# -- reinforcement learning ---------------------------------------------------------
def synthetic_obs(space, n: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """`n` random observations of a Box space (uint8 frames 0..255, booleans, or floats) on `device`."""
    shape = (n, *space.shape)
    if space.dtype == np.uint8:
        return torch.randint(0, 256, shape, device=device, generator=generator, dtype=torch.uint8)
    if space.dtype == np.bool_:
        return torch.rand(shape, device=device, generator=generator) < 0.1
    return torch.rand(shape, device=device, generator=generator)


def ppo_minibatch(obs_space, n_actions: int, size: int, device: torch.device,
                  generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random PPO minibatch of `size` (the `ppo.MINIBATCH` tensors) for timing the learner's update."""
    def rand(n: int) -> torch.Tensor:
        return torch.randn((n,), device=device, generator=generator)
    return {"obs": synthetic_obs(obs_space, size, device, generator),
            "actions": torch.randint(0, n_actions, (size,), device=device, generator=generator),
            "old_logprobs": rand(size) * 0.1 - math.log(n_actions), "advantages": rand(size),
            "returns": rand(size), "old_values": rand(size)}


def _rl(task: Task, ctx: RunContext, plan: Steps) -> TrainResult:
    from suite.training.rl import DQNConfig, PPOConfig, dqn, ppo
    from suite.training.rl.common import learner

    cfg = task.spec.recipe.algo
    if not isinstance(cfg, (PPOConfig, DQNConfig)):
        raise SkipRun(f"{task.spec.task}/{task.spec.model}: no learner update to time for algo {type(cfg).__name__}")
    env = task.make_env(False)
    obs_space, action_space = env.observation_space, env.action_space
    env.close()
    model = task.build_agent(obs_space, action_space).to(ctx.device)
    ctx.result.params = sum(p.numel() for p in model.parameters())
    n_actions = int(action_space.n)
    generator = device_generator(ctx)
    dev = ctx.device

    def rand(*shape) -> torch.Tensor:
        return torch.randn(shape, device=dev, generator=generator)

    # The trainer's own gradient step (its optimizer, clipping and precision), fed random minibatches.
    if isinstance(cfg, PPOConfig):
        size = cfg.num_envs * cfg.num_steps // cfg.num_minibatches
        optimizer = ppo.make_optimizer(model, cfg, dev, capturable=ctx.cuda_graphs)
        step = ppo.make_update_step(model, optimizer, cfg, dev, ctx.precision, learner(model, ctx))
        pool = [ppo_minibatch(obs_space, n_actions, size, dev, generator) for _ in range(plan.pool)]

        def loss_of(batch):
            return ppo.ppo_loss(model, cfg, **batch)
    else:
        size = cfg.batch_size
        target = task.build_agent(obs_space, action_space).to(dev)
        target.load_state_dict(model.state_dict())
        optimizer = dqn.make_optimizer(model, cfg, capturable=ctx.cuda_graphs)
        step = dqn.make_update_step(model, target, optimizer, cfg, dev, ctx.precision, learner(model, ctx))
        pool = [{"obs": synthetic_obs(obs_space, size, dev, generator),
                 "next_obs": synthetic_obs(obs_space, size, dev, generator),
                 "actions": torch.randint(0, n_actions, (size,), device=dev, generator=generator),
                 "rewards": rand(size).sign(), "dones": (rand(size) > 2.0).float()} for _ in range(plan.pool)]

        def loss_of(batch):
            return dqn.td_loss(model, target, batch, cfg)

    def count(batch):  # FLOPs of the eager model (`_measure` counts the step itself unless compiled)
        def forward_backward():
            with autocast(dev, ctx.precision):
                loss = loss_of(batch)
            loss.backward()
        flops = flops_of(forward_backward)
        model.zero_grad(set_to_none=True)
        return flops

    if ctx.cuda_graphs:
        step = graphs.CapturedStep(step, model, optimizer, repeating=True)
    ctx.result.data_info = {"train": {"synthetic": True, "observation_space": str(obs_space),
                                      "learner_batch": size}}
    result = _measure(task, ctx, plan, pool, step, count, lambda b: len(b["actions"]), lambda b: {})
    _note_graphs(result, step)
    if result.status == "ok":
        rate, vector_steps, vector_env = env_steps_per_s(task, cfg, plan, ctx.seed)
        result.throughput = dict(result.throughput or {}, extra={"env_steps/s": rate})
        result.speed["env_steps"] = vector_steps * cfg.num_envs
        result.speed["envs"] = f"{cfg.num_envs} in {vector_env} (random actions)"
    return result


def env_steps_per_s(task: Task, cfg, plan: Steps, seed: int) -> tuple[float, int, str]:
    """Steps/s of the task's real training environments (random actions), vectorised as the training
    loop does (the recipe's sync/async, or the task's own vector env), the vector steps timed and that
    vector env's name. At least `plan.env_steps` vector steps, then on until `plan.min_time_s` has
    passed (at most `ENV_STEP_CAP` times as many): no collective here, so each process keeps its own clock."""
    from suite.training.rl.envs import make_vector_env, vector_env_name

    envs = make_vector_env(task.make_env, cfg.num_envs, asynchronous=cfg.asynchronous)
    try:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        envs.step(envs.action_space.sample())  # first step: processes started, buffers allocated
        began = time.perf_counter()
        steps, cap = 0, plan.env_steps * (ENV_STEP_CAP if plan.min_time_s > 0 else 1)
        while steps < cap and (steps < plan.env_steps or time.perf_counter() - began < plan.min_time_s):
            envs.step(envs.action_space.sample())
            steps += 1
        return round(steps * cfg.num_envs / (time.perf_counter() - began), 2), steps, vector_env_name(envs)
    finally:
        envs.close()
