"""Variants without editing a file: `--set recipe.KEY=VALUE`, `model.KWARG=VALUE`, `data.fraction=F`.

`recipe.*` replaces one field of the resolved `Recipe` (`dataclasses.replace`, so the
Recipe's own checks name a bad value); `model.*` is merged into `recipe.model_kwargs`,
checked against the model factory's signature; `data.fraction` (0 < F <= 1) trains on a seeded
random fraction of the training split (suite.data.training_fraction, supervised tasks). The parsed values become the resolved
config's `overrides` ({"recipe.lr": 0.01}) and the record's `variant` label
("recipe.lr=0.01,model.depth=4"), which keys table cells (suite/cells.py).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from suite.errors import ConfigError
from suite.models import declaration
from suite.task import Recipe

RECIPE_KEYS = ("lr", "batch_size", "optimizer", "weight_decay")
DATA_KEYS = ("fraction",)
NAMESPACES = ("recipe", "model", "data")  # the `--set` namespaces this module applies, in label order


def parse_value(text: str) -> Any:
    """Command-line text -> bool (true/false), int, float, else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def model_keywords(task_cls: type, model: str) -> list[str] | None:
    """The keywords `model`'s factory accepts (those with a default); None when it takes **kwargs."""
    params = inspect.signature(declaration(task_cls, model).factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.default is not inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def factory_defaults(task_cls: type, model: str) -> dict[str, Any]:
    """{keyword: default} of `model`'s factory (those with a default)."""
    params = inspect.signature(declaration(task_cls, model).factory).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def check_type(name: str, text: str, value: Any, default: Any) -> None:
    """A `model.*` value must have its default's type (an int where a float is wanted is fine); a None
    default takes anything. ConfigError naming the key, the value and the type otherwise."""
    if default is None:
        return
    wanted = type(default)
    fits = isinstance(value, wanted) and not (isinstance(value, bool) and wanted is not bool)
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        fits = True
    if not fits:
        rule = "wants true or false" if wanted is bool else f"wants a {wanted.__name__} (default {default!r})"
        raise ConfigError(name, text, rule)


def valid_keys(task_cls: type, model: str) -> list[str]:
    keywords = model_keywords(task_cls, model)
    return ([f"recipe.{k}" for k in RECIPE_KEYS] + ([f"model.{k}" for k in keywords] if keywords is not None
                                                     else ["model.KWARG"])
            + ([f"data.{k}" for k in DATA_KEYS] if task_cls.kind == "supervised" else []))


def accepts(task_cls: type, model: str, name: str) -> bool:
    """Whether `model` of `task_cls` takes the `--set` key `name` ("model.depth", "data.fraction", ...)."""
    space, _, key = name.partition(".")
    if space == "recipe":
        return key in RECIPE_KEYS
    if space == "data":
        return key in DATA_KEYS and task_cls.kind == "supervised"
    keywords = model_keywords(task_cls, model)
    return keywords is None or key in keywords


def unaccepted(task_cls: type, model: str, settings: dict[str, str]) -> list[str]:
    """The keys of `settings` that `model` of `task_cls` does not take, sorted."""
    return sorted(name for name in settings if not accepts(task_cls, model, name))


def apply(task_cls: type, model: str, recipe: Recipe, settings: dict[str, str]) -> tuple[Recipe, dict[str, Any]]:
    """(`recipe` with `settings` applied, the parsed overrides {"recipe.lr": 0.01, ...} in label order).

    `settings` maps "namespace.key" to the command line's text; an unknown key or a bad value
    raises ConfigError (one line: the key, the value, the valid keys or the rule)."""
    defaults = factory_defaults(task_cls, model)
    fields, kwargs, overrides = {}, dict(recipe.model_kwargs), {}
    for name, text in sorted(settings.items(), key=lambda kv: (NAMESPACES.index(kv[0].split(".")[0]), kv[0])):
        space, key = name.split(".", 1)
        if not accepts(task_cls, model, name):
            raise ConfigError(f"--set {name}", text, f"not a key of {task_cls.name}/{model}; valid: "
                              + ", ".join(valid_keys(task_cls, model)))
        if space == "recipe":
            kind = type(getattr(Recipe(), key))
            try:
                value = kind(text)
            except ValueError:
                raise ConfigError(f"recipe.{key}", text, f"wants a {kind.__name__}") from None
            fields[key] = value
        elif space == "data":
            try:
                value = float(text)
            except ValueError:
                value = None
            if value is None or not 0 < value <= 1:
                raise ConfigError(name, text, "wants a fraction of the training split in (0, 1]")
        else:
            value = kwargs[key] = parse_value(text)
            check_type(name, text, value, defaults.get(key))
        overrides[name] = value
    if kwargs != recipe.model_kwargs:
        fields["model_kwargs"] = kwargs
    return (dataclasses.replace(recipe, **fields) if fields else recipe), overrides


def label(overrides: dict[str, Any]) -> str | None:
    """"recipe.lr=0.01,model.depth=4" (None when nothing is set)."""
    return ",".join(f"{k}={v}" for k, v in overrides.items()) or None
