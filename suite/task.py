"""The task contract: what a task declares and the four things it provides.

A task answers four questions and nothing else: what data, what models, how
it is scored, and what counts as success. It never times itself and never
picks a device: the harness (`suite.runner`, `suite.loop`) does both.

Two contracts, each a handful of abstract members that `@register_task`
checks: a supervised task subclasses `Task` and implements `load`, `loss`
and `evaluate` (`build_model` has a default); an RL task subclasses
`RLTask` and implements `make_env` and `build_agent`.

One instance is made per run, with the resolved `RunSpec` and the data
folder, so every method can read `self.spec` instead of taking it as an
argument.
"""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from suite.errors import ConfigError, check_name
from suite.textvalues import parse_as

PROFILES = ("smoke", "quick", "full", "speed")
TARGETLESS_PROFILES = ("speed",)  # throughput only: synthetic data, no target (suite.speed)


@dataclass(frozen=True)
class Target:
    """What counts as success: `metric` reaching `value` (in its direction)."""

    metric: str  # "split/name" of the split that decides, e.g. "val/accuracy"
    value: float
    higher_is_better: bool
    source: str  # where the number comes from (paper, measurement, command)

    @property
    def split(self) -> str:
        """The split whose evaluations decide when the run stops ("val")."""
        return self.metric.split("/", 1)[0]

    @property
    def quality_metric(self) -> str:
        """What tables report as quality: the same metric on the test split (`test/accuracy` for a
        `val/accuracy` target); a target on another split is its own."""
        split, _, name = self.metric.partition("/")
        return f"test/{name}" if split == "val" and name else self.metric

    def met(self, metrics: dict[str, float]) -> bool:
        got = metrics.get(self.metric)
        if got is None or got != got:  # missing or NaN never meets a target
            return False
        return got >= self.value if self.higher_is_better else got <= self.value


@dataclass(frozen=True)
class Budget:
    """How long a run may train. Exactly one of the count limits is set.

    `eval_every` is the evaluation cadence in work done: training samples
    (supervised) or environment steps (RL). It belongs to the profile, the
    same for every model of the task: a recipe's budget may change the
    length of training but never the cadence (`suite.registry` refuses it),
    since evaluating more often buys time-to-target under a clock that
    pauses for evaluation.
    """

    max_steps: int | None = None
    max_epochs: float | None = None
    max_env_steps: int | None = None
    max_time_s: float = 600.0
    eval_every: int | None = None

    def __post_init__(self) -> None:
        counts = [self.max_steps, self.max_epochs, self.max_env_steps]
        if sum(c is not None for c in counts) != 1:
            raise ConfigError("budget", counts, "set exactly one of max_steps, max_epochs, max_env_steps")
        for name in ("max_steps", "max_epochs", "max_env_steps", "eval_every"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"budget.{name}", value, "must be > 0")
        if self.max_time_s <= 0:
            raise ConfigError("budget.max_time_s", self.max_time_s, "must be > 0 seconds")


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one model under one profile.

    The optimizer fields serve supervised training; `algo` carries an RL
    algorithm's own config dataclass (PPO, DQN); `model_kwargs` go to the
    model factory. A variant is `dataclasses.replace(recipe, lr=...)`.
    """

    batch_size: int = 128
    eval_batch_size: int = 1024
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only (Nesterov)
    schedule: str = "linear"  # constant | linear | cosine, each after a linear warm-up
    warmup_frac: float = 0.1  # fraction of the budget spent warming the learning rate up
    grad_clip: float | None = None
    # True where a race in bench/ showed bf16 autocast reaching the target sooner than fp32 on CPUs
    # fast in bf16: `--precision auto` then picks bf16 on such a CPU (suite.device.choose_precision).
    cpu_bf16: bool = False
    # True where a race in bench/ showed NHWC (channels_last) convolutions faster than NCHW on a CPU
    # (it is always on on CUDA): the harness then lays the model and 4-D data out so (suite.device).
    cpu_channels_last: bool = False
    budget: Budget | None = None  # overrides the profile's budget length for this model (never its eval cadence)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    algo: Any = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("recipe.batch_size", self.batch_size, "must be >= 1")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError("recipe.optimizer", self.optimizer, "use 'adamw' or 'sgd'")
        if self.schedule not in ("constant", "linear", "cosine"):
            raise ConfigError("recipe.schedule", self.schedule, "use constant, linear or cosine")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ConfigError("recipe.warmup_frac", self.warmup_frac, "must be in [0, 1)")
        if self.lr <= 0:
            raise ConfigError("recipe.lr", self.lr, "must be > 0")
        if self.weight_decay < 0:
            raise ConfigError("recipe.weight_decay", self.weight_decay, "must be >= 0")


@dataclass(frozen=True)
class ProfileSpec:
    """One profile of a task: its dataset, target, budget and per-model recipes (target None: speed).

    `eval_splits` lists the splits evaluated: the target's split (`val`) at
    every evaluation point, the others (`test`, held-out sets) once, at the
    evaluation that stops the run; their metrics are the reported quality.
    `references` holds the reference convergence of the default model (and of
    any other model measured), by model name (`suite.convergence`).
    """

    dataset: str
    target: Target | None
    budget: Budget
    recipes: dict[str, Recipe]  # model name -> recipe; a model missing here uses Recipe()
    eval_splits: tuple[str, ...] = ("val", "test")
    expected_s: float | None = None  # rough wall time of the default model's run, for `dlbench list` (None: unmeasured)
    download_mb: float = 0.0  # what a first run downloads into the data folder (0: nothing)
    references: dict[str, Any] = field(default_factory=dict)  # model -> suite.convergence.Reference


@dataclass(frozen=True)
class TaskOption:
    """One option of a task, set with `--set task.NAME=VALUE`; the value lands in the resolved config."""

    name: str
    type: type  # str, int, float or bool: parses the command line's text
    default: Any
    help: str  # one line, shown by `dlbench list`
    choices: tuple[Any, ...] = ()  # the values allowed (empty: any value of `type`)

    def parse(self, value: Any) -> Any:
        parsed = self.convert(value)
        if self.choices and parsed not in self.choices:
            raise ConfigError(f"task.{self.name}", value, f"wants one of {', '.join(map(str, self.choices))}")
        return parsed

    def convert(self, value: Any) -> Any:
        """Command-line text parsed as `type` (suite.textvalues); a value that is not text is kept."""
        if not isinstance(value, str):
            return value
        return parse_as(value, self.type, f"task.{self.name}")


@dataclass(frozen=True)
class RunSpec:
    """Everything a task needs to know about one run, resolved."""

    task: str
    task_version: int
    profile: str
    model: str
    dataset: str
    target: Target | None
    budget: Budget
    recipe: Recipe
    eval_splits: tuple[str, ...]
    eval_every: int | None = None  # the profile's cadence: training samples (supervised) or env steps (RL)
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # the task's own options, resolved (`--set task.*`)
    overrides: dict[str, Any] = field(default_factory=dict)  # `--set recipe.* / model.*`, parsed (suite.variants)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


class TaskBase(abc.ABC):
    """What every task declares; subclass `Task` (supervised) or `RLTask`, never this.

    Class attributes:
      name, version     registry key and the version bumped when data,
                        metric or target change
      kind              "supervised" or "rl" (set by `Task` / `RLTask`)
      models            model name -> factory returning an nn.Module (or agent)
      default_model     the name run when no model is given
      metrics           metric name (without split) -> higher_is_better
      profiles          profile name -> ProfileSpec
      options           the task's own options (`--set task.KEY=VALUE`), read as `self.option(KEY)`
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    kind: ClassVar[str]
    models: ClassVar[dict[str, Any]] = {}
    default_model: ClassVar[str]
    metrics: ClassVar[dict[str, bool]] = {}
    profiles: ClassVar[dict[str, ProfileSpec]] = {}
    options: ClassVar[tuple[TaskOption, ...]] = ()

    def __init__(self, spec: RunSpec, data_dir: Path):
        self.spec = spec
        self.data_dir = Path(data_dir)

    # -- resolution -------------------------------------------------------
    @classmethod
    def spec_for(cls, profile: str, model: str, seed: int = 0, options: dict[str, Any] | None = None,
                 variant: dict[str, str] | None = None) -> RunSpec:
        """Resolve the RunSpec of `model` under `profile` (names checked); `options` are `--set task.*` values,
        `variant` the `--set recipe.* / model.*` ones ({"recipe.lr": "0.01"}, applied by suite.variants)."""
        from suite import variants  # suite.variants reads Recipe from here
        check_name(profile, cls.profiles, f"profile of task {cls.name!r}")
        check_name(model, cls.models, f"model of task {cls.name!r}")
        prof = cls.profiles[profile]
        recipe, overrides = variants.apply(cls, model, profile, prof.recipes.get(model, Recipe()), variant or {})
        return RunSpec(
            task=cls.name,
            task_version=cls.version,
            profile=profile,
            model=model,
            dataset=prof.dataset,
            target=prof.target,
            budget=recipe.budget or prof.budget,
            recipe=recipe,
            eval_splits=prof.eval_splits,
            eval_every=prof.budget.eval_every,
            seed=seed,
            options=cls.resolve_options(options or {}),
            overrides=overrides,
        )

    @classmethod
    def resolve_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Every declared option's value: `given` (names checked, text parsed) over the defaults."""
        declared = {opt.name: opt for opt in cls.options}
        for key in given:
            if key not in declared:
                valid = ", ".join(f"task.{k}" for k in declared) or "(this task has no options)"
                raise ConfigError(f"task.{key}", given[key], f"not an option of task {cls.name!r}; valid: {valid}")
        return {key: opt.parse(given[key]) if key in given else opt.default for key, opt in declared.items()}

    def option(self, key: str) -> Any:
        """The run's value of one of the task's declared `options`."""
        return self.spec.options[key]


class Task(TaskBase):
    """The supervised contract: data, model, loss and metrics; the harness owns the loop (`suite.loop`)."""

    kind: ClassVar[str] = "supervised"

    @abc.abstractmethod
    def load(self, split: str) -> "BatchSource":
        """Data of `split` ("train" or one of the eval splits) as a BatchSource."""

    def build_model(self) -> nn.Module:
        """The model named by `self.spec.model`, built with its recipe's kwargs."""
        return self.models[self.spec.model](**self.spec.recipe.model_kwargs)

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training loss of one batch (training-time augmentation goes here)."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module, source: "BatchSource") -> dict[str, float]:
        """Metrics (names without split prefix) of `model` on `source`."""

    def batch_size(self, batch: dict[str, torch.Tensor]) -> int:
        """Samples in a batch (for throughput): the length of its first tensor."""
        return len(next(iter(batch.values())))

    def synthetic_batch(self, batch_size: int, device: torch.device,
                        generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A training batch of random data at the full dataset's shapes, made on `device` with
        `generator` (a generator of that device): the `speed` profile trains on these (suite.speed)."""
        raise NotImplementedError(f"task {self.name!r} has no synthetic batch for the speed profile")

    def batch_work(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | float]:
        """The task's own units of work in a batch, e.g. {"tokens": n} or {"audio_s": seconds}.

        The record reports each as a rate per second of train time beside
        samples/s. Return tensors, not Python numbers: summing them on the
        device keeps the training step free of host syncs on GPU.
        """
        return {}


class RLTask(TaskBase):
    """The reinforcement-learning contract: an environment and an agent; the harness trains it (`suite.rl`).

    `spec.recipe.algo` is a `suite.rl.PPOConfig` or `DQNConfig`: it picks the
    algorithm and holds its hyper-parameters. `spec.budget.max_env_steps`
    counts environment steps; the profile's `eval_every` is in env steps
    (default: a tenth of the budget). Metrics are `val/return` (validation
    episodes, deciding) and `test/return` (test episodes, reported), with `return_std`, `episodes`,
    `episode_length` (greedy play, unclipped rewards).
    """

    kind: ClassVar[str] = "rl"

    @abc.abstractmethod
    def make_env(self, evaluation: bool) -> Any:
        """One gymnasium.Env with its wrappers; `evaluation=True` asks for the evaluation variant
        (no reward clipping, no life-loss episodes, a time limit). The harness vectorises, seeds and steps it."""

    def make_vector_env(self, num_envs: int, evaluation: bool) -> Any:
        """Optional: the task's own vector env of `num_envs` copies of `make_env(evaluation)`, e.g. a
        simulator's native batched one, or None (the default) to let the harness vectorise `make_env`.
        It must step as gymnasium's vector envs do in `AutoresetMode.SAME_STEP`, with `info["final_obs"]`."""
        return None

    @abc.abstractmethod
    def build_agent(self, obs_space: Any, action_space: Any) -> nn.Module:
        """The agent of `spec.model` for these spaces: `suite.rl.networks.ActorCritic` for PPO
        (forward -> (logits, value)), `QNetwork` for DQN (forward -> Q values); both have `greedy(obs)`."""


def cadence_problem(cls: type[TaskBase]) -> str | None:
    """Why `cls` breaks the rule that the profile alone sets when runs are evaluated (None: it does not)."""
    for profile, spec in cls.profiles.items():
        for model, recipe in spec.recipes.items():
            if recipe.budget is not None and recipe.budget.eval_every not in (None, spec.budget.eval_every):
                return (f"task {cls.name!r} profile {profile!r} model {model!r}: the recipe's budget sets "
                        f"eval_every={recipe.budget.eval_every}; the evaluation cadence belongs to the profile "
                        f"(eval_every={spec.budget.eval_every}), the same for every model: remove it from the recipe")
    return None


def missing_members(cls: type) -> list[str]:
    """The abstract members `cls` still lacks (empty when it honours its contract)."""
    return sorted(getattr(cls, "__abstractmethods__", ()))


class BatchSource:
    """A split of data that yields batches (dicts of tensors).

    The harness moves a source to the device once when it fits
    (`to(device)`), else moves each batch, and cuts a fraction of a training
    split with `select(index)`. `info` holds counts worth recording (skipped
    files, truncated sentences, ...).
    """

    info: dict[str, Any]

    def __len__(self) -> int:
        raise NotImplementedError

    def nbytes(self) -> int:
        raise NotImplementedError

    def to(self, device: torch.device, channels_last: bool = False) -> "BatchSource":
        """This source on `device` (4-D float tensors in NHWC order when `channels_last`)."""
        raise NotImplementedError

    def select(self, index: torch.Tensor) -> "BatchSource":
        """The items `index` (a 1-D integer tensor, on any device) in that order, as a source of the
        same type that batches as this one does (`data.fraction` trains on one: `suite.data.training_fraction`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement select(index), which every "
                                  "BatchSource must (data.fraction needs it)")

    def batches(
        self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
        drop_last: bool = False, shard: tuple[int, int] = (0, 1),
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield batches; `shard=(rank, world)` keeps this rank's slice of each batch."""
        raise NotImplementedError


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, tuples and tensors -> plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)
