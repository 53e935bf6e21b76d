"""The task contract: what a task declares and the four things it provides.

A task answers four questions and nothing else: what data, what models, how
it is scored, and what counts as success. It never times itself and never
picks a device: the harness (`suite.running.runner`, `suite.training.loop`) does both.

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
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from suite.errors import ConfigError, check_name
from suite.taskapi.spec import ProfileSpec, Recipe, RunSpec, TaskOption


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
        `variant` the `--set recipe.* / model.*` ones ({"recipe.lr": "0.01"}, applied by suite.taskapi.variants)."""
        from suite.taskapi import variants  # suite.taskapi.variants reads Recipe from here
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
    """The supervised contract: data, model, loss and metrics; the harness owns the loop (`suite.training.loop`)."""

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
        `generator` (a generator of that device): the `speed` profile trains on these (suite.measuring.speed)."""
        raise NotImplementedError(f"task {self.name!r} has no synthetic batch for the speed profile")

    def batch_work(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | float]:
        """The task's own units of work in a batch, e.g. {"tokens": n} or {"audio_s": seconds}.

        The record reports each as a rate per second of train time beside
        samples/s. Return tensors, not Python numbers: summing them on the
        device keeps the training step free of host syncs on GPU.
        """
        return {}


class RLTask(TaskBase):
    """The reinforcement-learning contract: an environment and an agent; the harness trains it (`suite.training.rl`).

    `spec.recipe.algo` is a `suite.training.rl.PPOConfig` or `DQNConfig`: it picks the
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
        """The agent of `spec.model` for these spaces: `suite.training.rl.networks.ActorCritic` for PPO
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
    # True when every full batch has the same tensor shapes (nothing is trimmed to a batch's longest
    # item): the training loop can then replay one CUDA graph for every step (`--cuda-graphs`).
    fixed_shapes: bool = False

    def __len__(self) -> int:
        raise NotImplementedError

    def nbytes(self) -> int:
        raise NotImplementedError

    def to(self, device: torch.device, channels_last: bool = False) -> "BatchSource":
        """This source on `device` (4-D float tensors in NHWC order when `channels_last`)."""
        raise NotImplementedError

    def select(self, index: torch.Tensor) -> "BatchSource":
        """The items `index` (a 1-D integer tensor, on any device) in that order, as a source of the
        same type that batches as this one does (`data.fraction` trains on one: `suite.taskapi.data.training_fraction`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement select(index), which every "
                                  "BatchSource must (data.fraction needs it)")

    def batches(
        self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
        drop_last: bool = False, shard: tuple[int, int] = (0, 1),
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield batches; `shard=(rank, world)` keeps this rank's slice of each batch, the same size on every
        rank (`suite.taskapi.data.rank_slice`)."""
        raise NotImplementedError
