"""What every RL algorithm shares: its config base (`AlgoConfig`) and the loop's budget, clock, eval cadence.

An algorithm builds an `RLRun` first: it starts the run's clock and makes
the training and evaluation environments (an RL task's data, so the `data`
segment and the never-paused wall clock start there, as the supervised
loop's start at the first touch of its data). The algorithm builds its
model on `run.envs`' spaces, hands it to `run.attach`, calls
`run.step(env_steps, loss)` after each iteration (a PPO rollout + update, a
DQN vector step) and stops when it returns True; `run.finish()` (in a
`finally`, so Ctrl-C keeps the partial figures) fills in the TrainResult and
closes the environments. Train time excludes evaluation; throughput is
environment steps per second of train time. The eval point itself (loss
average, divergence, curve, stop reason) is
`suite.running.context.EvalPoints`, and the copy of the weights at the best
validation point when training to the budget is `suite.training.evaluation.BestState`:
the routines the supervised loop uses too.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from suite.running.context import EvalPoints, RunContext, TrainResult
from suite.running.device import autocast
from suite.errors import ConfigError
from suite.training.rl.envs import env_info, make_vector_env
from suite.training.rl.evaluation import evaluate_policy
from suite.taskapi.spec import RunSpec
from suite.taskapi.task import RLTask
from suite.training import graphs
from suite.training.evaluation import BestState
from suite.measuring.timing import Heartbeat, SegmentClock

EVAL_SEED_OFFSET = 1_000_003  # validation episodes never share seeds with training ones
TEST_SEED_OFFSET = 2_000_029  # test episodes share seeds with neither


@dataclass(frozen=True)
class AlgoConfig:
    """What every RL algorithm's config holds (PPO and DQN subclass it): environments, evaluation,
    the optimiser's basics and CPU threads, with their checks. Subclasses set their own defaults."""

    num_envs: int = 1  # training environments stepped together
    asynchronous: bool = False  # one process per env (worth it for slow envs such as ALE)
    lr: float = 1e-4
    gamma: float = 0.99
    max_grad_norm: float = 0.5
    eval_envs: int = 8  # evaluation environments (greedy play, unclipped rewards)
    eval_episodes: int = 16  # validation episodes per evaluation (they decide when the run stops)
    test_episodes: int = 64  # test episodes, played once when the run stops (the reported return)
    torch_threads: int | None = None  # CPU threads for torch during the run (None: leave as is)

    def __post_init__(self) -> None:
        for name in ("num_envs", "eval_envs", "eval_episodes", "test_episodes"):
            self.check_positive(name)
        self.check_threads("torch_threads")
        if self.lr <= 0:
            raise ConfigError(f"{self.prefix()}.lr", self.lr, "must be > 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"{self.prefix()}.gamma", self.gamma, "must be in [0, 1]")

    @classmethod
    def prefix(cls) -> str:
        """The name errors give the config: 'ppo' for PPOConfig, 'dqn' for DQNConfig."""
        return cls.__name__.removesuffix("Config").lower()

    def check_threads(self, name: str) -> None:
        if getattr(self, name) is not None and getattr(self, name) < 1:
            raise ConfigError(f"{self.prefix()}.{name}", getattr(self, name), "must be >= 1 or None")

    def check_positive(self, name: str) -> None:
        if getattr(self, name) < 1:
            raise ConfigError(f"{self.prefix()}.{name}", getattr(self, name), "must be >= 1")

    def first_update(self) -> tuple[int, str, tuple[str, ...]]:
        """(env steps, what they are, the `recipe.algo` fields that set them) before the algorithm's first
        update: the smallest budget a run of this config trains on (`env_step_budget`)."""
        return self.num_envs, f"one step of the num_envs {self.num_envs} environments", ("num_envs",)


def env_step_budget(spec: RunSpec, max_steps: int | None) -> int:
    """The env steps an RL run of `spec` trains for: `max_steps` (`--max-steps`), else the profile's
    `max_env_steps`. ConfigError (one line: where the budget comes from, its value, the smallest budget
    of the resolved recipe, `--set` included, and how to meet it) when there is none or it ends before the
    algorithm's first update (`AlgoConfig.first_update`). The planner checks it before any run
    (`suite.running.benchmark.check_rl_budget`); `RLRun` takes its budget from here."""
    budget = spec.budget
    if budget.max_env_steps is None and max_steps is None:
        raise ConfigError(f"{spec.task}.budget", budget, "an RL task needs budget max_env_steps")
    total = max_steps or budget.max_env_steps
    least, what, fields = spec.recipe.algo.first_update()
    if total < least:
        where = "--max-steps" if max_steps else f"{spec.task} {spec.profile} budget.max_env_steps"
        lower = " or ".join(f"recipe.algo.{name}" for name in fields)
        raise ConfigError(where, total, f"smaller than {what} = {least} env steps of {spec.task}/{spec.model} "
                          f"({spec.profile}): use --max-steps {least} or more, or lower {lower} with --set")
    return total


def learner(model: nn.Module, ctx: RunContext) -> nn.Module:
    """The module the learner's loss calls: `model` compiled under `--compile` (torch.compile, default mode),
    else `model` itself. Only the update is compiled: its minibatches keep one shape, while acting meets
    other batch sizes (the truncated environments a step bootstraps) and stays eager, as the FLOP count does."""
    return torch.compile(model) if ctx.compile else model


def clipped_step(model: nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float, device: torch.device,
                 precision: str, loss_of: Callable[[dict[str, torch.Tensor]], torch.Tensor]
                 ) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """One gradient step of an RL algorithm: `loss_of(batch)` in the run's precision (autocast under bf16),
    backward, gradients clipped to `max_grad_norm`, optimizer step; returns the loss detached (no host sync)."""
    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast(device, precision):
            loss = loss_of(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        return loss.detach()

    return step


def warmed_update(run: "RLRun", step: Callable[[dict[str, torch.Tensor]], torch.Tensor], model: nn.Module,
                  optimizer: torch.optim.Optimizer, example: dict[str, torch.Tensor]
                  ) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """`step` made ready before the train clock starts, on `example` (any values, the shapes of every
    update's batch), timed as warm-up and training nothing. Under `--cuda-graphs` it is replayed from a CUDA
    graph, captured after eager steps that also compile a compiled learner. Under `--compile` alone, one
    step compiles the learner (`learner`: its forward and backward, and DQN's no-grad forward of the next
    observations), then the weights, optimizer state and random streams are put back (`graphs.undone`).
    Else `step` as it is: nothing to warm up."""
    if not (run.ctx.cuda_graphs or run.ctx.compile):
        return step
    run.clock.start("warmup")
    if run.ctx.cuda_graphs:
        step = graphs.CapturedStep(step, model, optimizer)
        step.prepare(example)
        step.freeze()
    else:
        with graphs.undone(model, optimizer, run.ctx.device):
            step(example)
    run.clock.stop()
    return step


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` torch CPU threads (None: as is), then restore. Small agent networks
    stepped once per env step run fastest on one thread: more threads spin and wait on a busy machine."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RLRun:
    def __init__(self, task: RLTask, ctx: RunContext, steps_per_iteration: int):
        budget = task.spec.budget
        self.total = env_step_budget(task.spec, ctx.max_steps)
        self.task, self.ctx = task, ctx
        self.model: nn.Module | None = None
        self.best: BestState | None = None
        self.steps_per_iteration = steps_per_iteration
        self.algo = task.spec.recipe.algo
        # The profile's cadence in env steps (default: a tenth of the budget); an iteration is never split,
        # so a point falls at the first iteration end at or past each multiple.
        self.eval_every = task.spec.eval_every or self.total // 10
        self.max_time_s = ctx.max_time_s or budget.max_time_s
        self.clock = SegmentClock(ctx.device)
        # An RL task's data is its environments: making them is the run's first touch of the data, the
        # origin of the never-paused wall clock (wall_to_target_s), and timed as the data segment.
        self.clock.start("data")
        self.envs = make_vector_env(task.make_env, self.algo.num_envs, asynchronous=self.algo.asynchronous)
        try:
            self.eval_envs = make_vector_env(task.make_env, self.algo.eval_envs, evaluation=True,
                                             asynchronous=self.algo.asynchronous)
        except BaseException:
            self.envs.close()
            raise
        self.clock.stop()
        self.result = ctx.result
        self.result.data_info = {"env": env_info(task.spec.dataset, self.eval_envs),
                                 "val": {"episodes": self.algo.eval_episodes, "seed_offset": EVAL_SEED_OFFSET},
                                 "test": {"episodes": self.algo.test_episodes, "seed_offset": TEST_SEED_OFFSET}}
        self.result.eval_cadence = {"every": self.eval_every, "unit": "env_steps"}
        self.points = EvalPoints(task.spec.target, self.result, ctx.device, stop_at_target=ctx.stop_at_target)
        self.env_steps, self.iterations = 0, 0
        self.next_eval = self.eval_every
        ctx.log(f"  {self.total} env steps, eval every {self.eval_every}, cap {self.max_time_s:.0f}s of train time")
        self.heartbeat = Heartbeat(ctx.log, self.total, "env steps", self.max_time_s)

    def attach(self, model: nn.Module) -> None:
        """The agent the run evaluates (built on `envs`' spaces): its parameters counted, and, when training
        to the budget, its weights kept at the best validation point (`BestState`, as the supervised loop)."""
        self.model = model
        self.result.params = sum(p.numel() for p in model.parameters())
        self.best = BestState(model, keep=not self.ctx.stop_at_target)

    def start(self) -> None:
        self.clock.start("train")

    def step(self, env_steps: int, loss: torch.Tensor | None = None) -> bool:
        """Count an iteration; evaluate when due. True when the run must stop."""
        self.env_steps += env_steps
        self.iterations += 1
        diverged = loss is not None and self.points.add(loss)
        out_of_time = self.clock.total("train") > self.max_time_s
        done = self.env_steps + self.steps_per_iteration > self.total  # another iteration would overrun
        if not (diverged or out_of_time or done or self.env_steps >= self.next_eval):
            self.heartbeat.beat(self.env_steps, self.clock.total("train"))
            return False
        self.clock.stop()
        train_loss = self.points.train_loss(diverged, f"after {self.env_steps} env steps")
        if train_loss is None:
            return True
        self.evaluate(train_loss)
        self.heartbeat.quiet()
        while self.next_eval <= self.env_steps:
            self.next_eval += self.eval_every
        stop = self.points.stop_reason(out_of_time=out_of_time, budget_spent=done)
        if stop:
            self.result.stop_reason = stop
            self.report()
            return True
        self.clock.start("train")
        return False

    def play(self, split: str, episodes: int, seed_offset: int) -> dict[str, float]:
        """Greedy play of `episodes` episodes from seeds of their own; metrics named `split/...`."""
        with autocast(self.ctx.device, self.ctx.precision):  # the run's precision, as the supervised loop evaluates
            raw = evaluate_policy(self.model, self.eval_envs, episodes, self.ctx.device,
                                  seed=self.ctx.seed + seed_offset)
        return {f"{split}/{k}": v for k, v in raw.items()}

    def evaluate(self, train_loss: float) -> None:
        self.clock.start("eval")
        metrics = self.play("val", self.algo.eval_episodes, EVAL_SEED_OFFSET)
        self.clock.stop()
        self.points.record(self.env_steps, self.clock, metrics, iterations=self.iterations,
                           **{"train/loss": train_loss})
        if self.points.improved(metrics):
            self.best.keep_now(self.env_steps, metrics)
        raw = {k.split("/", 1)[1]: v for k, v in metrics.items()}
        train_time = self.clock.total("train")
        self.ctx.log(f"  {self.env_steps:>9} env steps {train_time:8.1f}s  loss {train_loss:.4f}  "
                     f"return {raw['return']:.2f} ± {raw['return_std']:.2f} ({raw['episodes']:.0f} episodes)")

    def report(self) -> None:
        """The test return, played once when the run stops: reported, never deciding, never timed. Trained to
        the budget, the test episodes are also played on the weights of the best validation point (`best`)."""
        def test() -> dict[str, float]:
            return self.play("test", self.algo.test_episodes, TEST_SEED_OFFSET)

        self.clock.start("report")
        self.result.final_metrics.update(test())
        self.best.report(test, self.result)
        self.clock.stop()

    def finish(self) -> TrainResult:
        """Close the clock and the environments and fill in the figures; also called when a run is cut short."""
        self.clock.stop()
        self.envs.close()
        self.eval_envs.close()
        r = self.result
        r.data_s = round(self.clock.total("data"), 4)
        r.train_time_s = round(self.clock.total("train"), 4)
        r.eval_time_s = round(self.clock.total("eval"), 4)
        r.warmup_s = round(self.clock.total("warmup"), 4)
        r.steps, r.samples = self.iterations, self.env_steps
        r.seconds_per_step = round(r.train_time_s / self.env_steps, 9) if self.env_steps else None
        r.throughput = {"value": round(self.env_steps / max(r.train_time_s, 1e-9), 2), "unit": "env_steps/s"}
        return r
