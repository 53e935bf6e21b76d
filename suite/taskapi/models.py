"""Model declarations: a factory, its family, and which harness path trains it.

A task's `models` maps a name to a factory. A bare factory is what every
model was before families existed: a deep model, trained by the loop of the
task's kind. Anything else is declared with `Model`, which is itself callable
(it calls its factory), so code that does `task.models[name](...)` or lists
`task.models` works unchanged:

    models = {"cnn": cnn,                                            # deep
              "mfcc_linear_ctc": Model(MFCCLinearCTC, family="shallow"),
              "hog_linear": Model(hog_linear, family="hand-crafted", estimator=True)}

`--set model.KEY=VALUE` goes into the recipe's `model_kwargs`, which the task passes
to its factory, or on to the part that takes them: an RL task's agent head gets a
task-made encoder, so its declaration names the encoder (per profile when the
profiles' environments differ) as `keywords_of`. A key is one of that callable's
keyword-only parameters, or when it has none, one of its parameters with a default
(`keywords`).

Families (the record's `family`, the "deep against hand-crafted" view):
  deep          learns its features (hidden layers trained end to end)
  shallow       one trained layer on fixed, hand-designed features
  hand-crafted  hand-designed features and a fitted classical estimator, or a rule
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from suite.errors import ConfigError

FAMILIES = ("deep", "shallow", "hand-crafted")


@dataclass(frozen=True)
class Model:
    """A model factory with its `family`; `estimator=True`: fitted or a rule (`suite.training.estimator`), not a loop;
    `keywords_of`: what receives `model_kwargs` when the factory does not (a callable, or profile -> callable)."""

    factory: Callable[..., Any]
    family: str = "deep"
    estimator: bool = False
    keywords_of: Callable[..., Any] | Mapping[str, Callable[..., Any]] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError("Model.family", self.family, f"use one of {', '.join(FAMILIES)}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)


def declaration(task_cls: type, model: str) -> Model:
    """The `Model` of `task_cls.models[model]` (a bare factory is a deep model)."""
    entry = task_cls.models[model]
    return entry if isinstance(entry, Model) else Model(entry)


def family_of(task_cls: type, model: str) -> str:
    return declaration(task_cls, model).family


def is_estimator(task_cls: type, model: str) -> bool:
    return declaration(task_cls, model).estimator


def keyword_receiver(task_cls: type, model: str, profile: str) -> Callable[..., Any]:
    """The callable that receives `model`'s `model_kwargs` under `profile`: `keywords_of`, else the factory."""
    decl = declaration(task_cls, model)
    receiver = decl.keywords_of
    if isinstance(receiver, Mapping):
        receiver = receiver.get(profile)
    return receiver or decl.factory


def keywords(receiver: Callable[..., Any]) -> dict[str, Any] | None:
    """{keyword: default} that `--set model.*` may set on `receiver`; None when it takes **kwargs.

    Keyword-only parameters when it has any (those before the `*` are the caller's to pass),
    else every parameter with a default."""
    params = list(inspect.signature(receiver).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    keyword_only = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    candidates = keyword_only or [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    return {p.name: p.default for p in candidates if p.default is not inspect.Parameter.empty}
