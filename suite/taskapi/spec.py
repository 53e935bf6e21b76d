"""What a task declares, as plain data: per profile a dataset, a target, a budget and per-model recipes; the
options it takes; and the resolved `RunSpec` of one run. No torch here: results and listings read these."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.errors import ConfigError
from suite.taskapi.textvalues import parse_as


PROFILES = ("smoke", "quick", "full", "speed")


TARGETLESS_PROFILES = ("speed",)  # throughput only: synthetic data, no target (suite.measuring.speed)


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
    length of training but never the cadence (`suite.taskapi.registry` refuses it),
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
    # fast in bf16: `--precision auto` then picks bf16 on such a CPU (suite.running.device.choose_precision).
    cpu_bf16: bool = False
    # True where a race in bench/ (bench/gpu_precision.py) showed fp32 steps (TF32 tensor cores) faster than
    # bf16 autocast on a CUDA GPU: launch-bound models pay for autocast's casts and gain little from
    # shorter matmuls. `--precision auto` then picks fp32 on CUDA for this recipe.
    cuda_tf32: bool = False
    # True where a race in bench/ showed NHWC (channels_last) convolutions faster than NCHW on a CPU
    # (it is always on on CUDA): the harness then lays the model and 4-D data out so (suite.running.device).
    cpu_channels_last: bool = False
    # > 0: evaluations read an exponential moving average of the weights with this decay per step, updated
    # in the timed step (suite.training.averaging); 0 evaluates the weights themselves.
    ema_decay: float = 0.0
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
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError("recipe.ema_decay", self.ema_decay, "must be in [0, 1): 0 evaluates the weights themselves")


@dataclass(frozen=True)
class ProfileSpec:
    """One profile of a task: its dataset, target, budget and per-model recipes (target None: speed).

    `eval_splits` lists the splits evaluated: the target's split (`val`) at
    every evaluation point, the others (`test`, held-out sets) once, at the
    evaluation that stops the run; their metrics are the reported quality.
    `references` holds the reference convergence of the default model (and of
    any other model measured), by model name (`suite.taskapi.convergence`).
    """

    dataset: str
    target: Target | None
    budget: Budget
    recipes: dict[str, Recipe]  # model name -> recipe; a model missing here uses Recipe()
    eval_splits: tuple[str, ...] = ("val", "test")
    expected_s: float | None = None  # rough wall time of the default model's run, for `dlbench list` (None: unmeasured)
    download_mb: float = 0.0  # what a first run downloads into the data folder (0: nothing)
    references: dict[str, Any] = field(default_factory=dict)  # model -> suite.taskapi.convergence.Reference


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
        """Command-line text parsed as `type` (suite.taskapi.textvalues); a value that is not text is kept."""
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
    overrides: dict[str, Any] = field(default_factory=dict)  # `--set recipe.* / model.*`, parsed (suite.taskapi.variants)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


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
    if type(obj).__module__.startswith(("torch", "numpy")) and hasattr(obj, "tolist"):  # a tensor or an array
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)
