"""Variants without editing a file: `--set recipe.KEY=VALUE`, `model.KWARG=VALUE`, `data.fraction=F`.

Each trainer declares the `--set` keys it reads, beside itself: `SETTINGS` in suite.training.loop
(supervised), suite.measuring.speed (the speed profile), suite.training.estimator (fitted models and rules,
per task kind), and `PPOConfig.SETTINGS` / `DQNConfig.SETTINGS` (suite.training.rl), which RL
models take as `recipe.algo.KEY`. A key is accepted only for a model whose trainer reads
it, so no two runs that compute the same thing are filed as different variants.
"model.*" in a declaration stands for the keywords of what receives `model_kwargs`
(suite.taskapi.models.keyword_receiver: the factory, or an RL agent's encoder).

`recipe.*` replaces one field of the resolved `Recipe` (`dataclasses.replace`, so the
Recipe's own checks name a bad value), `recipe.algo.*` one field of its RL config;
`model.*` is merged into `recipe.model_kwargs` and checked against its receiver's
defaults; `data.fraction` (0 < F <= 1) trains on a seeded random fraction of the training
split (`training_split`). Text is parsed by suite.taskapi.textvalues, the one parser of settings.
The parsed values become the resolved config's `overrides` ({"recipe.lr": 0.01}) and the
record's `variant` label ("recipe.lr=0.01,model.depth=4"), which keys table cells (suite/results/cells.py).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from suite.taskapi.data import training_fraction
from suite.errors import ConfigError
from suite.taskapi.models import declaration, is_estimator, keyword_receiver, keywords
from suite.taskapi.spec import Recipe, RunSpec
from suite.taskapi.task import BatchSource
from suite.taskapi.textvalues import check_finite, parse_as, parse_value

__all__ = ["NAMESPACES", "declared", "valid_keys", "accepts", "unaccepted", "apply", "label", "parse_value",
           "training_split"]

NAMESPACES = ("recipe", "model", "data")  # the `--set` namespaces this module applies, in label order
MODEL_KEYS = "model.*"
ALGO = "recipe.algo."


def declared(task_cls: type, model: str, profile: str) -> tuple[str, ...]:
    """The `--set` keys the trainer of `model` reads under `profile` ("model.*": the model's keywords)."""
    if is_estimator(task_cls, model):
        from suite.training.estimator import settings_of

        return settings_of(task_cls.kind, declaration(task_cls, model).factory)
    if task_cls.kind == "rl":  # any profile: the speed profile times the same algorithm's update
        from suite.training.rl import DQNConfig, PPOConfig

        algo = _profile_recipe(task_cls, model, profile).algo
        algo_keys = algo.SETTINGS if isinstance(algo, (PPOConfig, DQNConfig)) else ()
        return (MODEL_KEYS,) + tuple(ALGO + key for key in algo_keys)
    if profile == "speed":
        from suite.measuring.speed import SETTINGS

        return SETTINGS
    from suite.training.loop import SETTINGS

    return SETTINGS


def model_defaults(task_cls: type, model: str, profile: str) -> dict[str, Any] | None:
    """{keyword: default} that `model.*` may set for `model` under `profile`; None: any (it takes **kwargs)."""
    return keywords(keyword_receiver(task_cls, model, profile))


def valid_keys(task_cls: type, model: str, profile: str) -> list[str]:
    """Every `--set` key `model` takes under `profile`, in its trainer's order ("model.KWARG": any keyword)."""
    out = []
    for key in declared(task_cls, model, profile):
        if key == MODEL_KEYS:
            defaults = model_defaults(task_cls, model, profile)
            out += [f"model.{k}" for k in defaults] if defaults is not None else ["model.KWARG"]
        else:
            out.append(key)
    return out


def accepts(task_cls: type, model: str, name: str, profile: str) -> bool:
    """Whether `model` of `task_cls` takes the `--set` key `name` ("model.depth", "data.fraction", ...)."""
    if name.startswith("model."):
        if MODEL_KEYS not in declared(task_cls, model, profile):
            return False
        defaults = model_defaults(task_cls, model, profile)
        return defaults is None or name.partition(".")[2] in defaults
    return name in declared(task_cls, model, profile)


def unaccepted(task_cls: type, model: str, settings: dict[str, str], profile: str) -> list[str]:
    """The keys of `settings` that `model` of `task_cls` does not take under `profile`, sorted."""
    return sorted(name for name in settings if not accepts(task_cls, model, name, profile))


def apply(task_cls: type, model: str, profile: str, recipe: Recipe,
          settings: dict[str, str]) -> tuple[Recipe, dict[str, Any]]:
    """(`recipe` with `settings` applied, the parsed overrides {"recipe.lr": 0.01, ...} in label order).

    `settings` maps "namespace.key" to the command line's text; a key the model's trainer does not
    read or a bad value raises ConfigError (one line: the key, the value, the valid keys or the rule)."""
    fields, algo_fields, kwargs, overrides = {}, {}, dict(recipe.model_kwargs), {}
    for name, text in sorted(settings.items(), key=lambda kv: (NAMESPACES.index(kv[0].split(".")[0]), kv[0])):
        space, key = name.split(".", 1)
        if not accepts(task_cls, model, name, profile):
            raise ConfigError(f"--set {name}", text, f"not a key of {task_cls.name}/{model}; valid: "
                              + ", ".join(valid_keys(task_cls, model, profile)))
        if name.startswith(ALGO):
            field = name.removeprefix(ALGO)
            value = algo_fields[field] = parse_as(text, type(getattr(recipe.algo, field)), name)
        elif space == "recipe":
            value = fields[key] = parse_as(text, type(getattr(Recipe(), key)), name)
        elif space == "data":
            value = _fraction(name, text)
        else:
            value = kwargs[key] = check_finite(name, text, parse_value(text))
            check_type(name, text, value, (model_defaults(task_cls, model, profile) or {}).get(key))
        overrides[name] = value
    if algo_fields:
        fields["algo"] = dataclasses.replace(recipe.algo, **algo_fields)  # its own checks name a bad value
    if kwargs != recipe.model_kwargs:
        fields["model_kwargs"] = kwargs
    return (dataclasses.replace(recipe, **fields) if fields else recipe), overrides


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
        article = "an" if wanted.__name__[0] in "aeiou" else "a"
        rule = "wants true or false" if wanted is bool else f"wants {article} {wanted.__name__} (default {default!r})"
        raise ConfigError(name, text, rule)


def training_split(source: BatchSource, spec: RunSpec) -> BatchSource:
    """The training split a supervised run trains on: `source`, or the `data.fraction` of it.

    A `--set` that leaves less than one batch is refused here, once the split's size is known
    (ConfigError naming the key, the sizes and the bound): a `recipe.batch_size` larger than the
    split, or a fraction that leaves fewer samples than one batch of a split that holds one. The
    suite calls it on each task's split before any run (`suite.running.benchmark.check_split_sizes`),
    and each run again on the split it trains on."""
    fraction = spec.overrides.get("data.fraction")
    train = training_fraction(source, fraction, spec.seed)
    batch, where = spec.recipe.batch_size, f"{spec.task}/{spec.profile}"
    if "recipe.batch_size" in spec.overrides and batch > len(train):
        cut = f", {len(source):,} before data.fraction" if fraction is not None else ""
        raise ConfigError("recipe.batch_size", batch, f"is larger than the training split of {where} "
                          f"({len(train):,} samples{cut}): use at most {len(train)}")
    if fraction is not None and len(train) < batch <= len(source):
        least = math.ceil(batch / len(source) * 1000) / 1000
        raise ConfigError("data.fraction", fraction, f"leaves {len(train):,} of the {len(source):,} training "
                          f"samples of {where}, fewer than one batch ({batch}): use at least {least:g}")
    return train


def label(overrides: dict[str, Any]) -> str | None:
    """"recipe.lr=0.01,model.depth=4" (None when nothing is set)."""
    return ",".join(f"{k}={v}" for k, v in overrides.items()) or None


def _fraction(name: str, text: str) -> float:
    try:
        value = parse_as(text, float, name)
    except ConfigError:
        value = None
    if value is None or not 0 < value <= 1:
        raise ConfigError(name, text, "wants a fraction of the training split in (0, 1]")
    return value


def _profile_recipe(task_cls: type, model: str, profile: str) -> Recipe:
    prof = task_cls.profiles.get(profile)
    return prof.recipes.get(model, Recipe()) if prof is not None else Recipe()
