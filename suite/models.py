"""Model declarations: a factory, its family, and which harness path trains it.

A task's `models` maps a name to a factory. A bare factory is what every
model was before families existed: a deep model, trained by the loop of the
task's kind. Anything else is declared with `Model`, which is itself callable
(it calls its factory), so code that does `task.models[name](...)` or lists
`task.models` works unchanged:

    models = {"cnn": cnn,                                            # deep
              "mfcc_linear_ctc": Model(MFCCLinearCTC, family="shallow"),
              "hog_linear": Model(hog_linear, family="hand-crafted", estimator=True)}

Families (the record's `family`, the "deep against hand-crafted" view):
  deep          learns its features (hidden layers trained end to end)
  shallow       one trained layer on fixed, hand-designed features
  hand-crafted  hand-designed features and a fitted classical estimator, or a rule
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from suite.errors import ConfigError

FAMILIES = ("deep", "shallow", "hand-crafted")


@dataclass(frozen=True)
class Model:
    """A model factory with its `family`; `estimator=True`: fitted or a rule (`suite.estimator`), not a loop."""

    factory: Callable[..., Any]
    family: str = "deep"
    estimator: bool = False

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
