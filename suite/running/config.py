"""Run configuration: typed dataclasses, validated on construction.

Every field has a default and a one-line doc (its `help`), which becomes the
command line's `--help`. A bad value raises ConfigError naming the field,
the value and the rule, before any run starts.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from suite.errors import ConfigError, DlbenchError
from suite.taskapi.spec import PROFILES
from suite.results.safetext import plain
from suite.taskapi.textvalues import parse_as

# `--set NAMESPACE.KEY=VALUE`: each namespace, what its keys reach. One parser takes them all;
# a new namespace is one line here and one reader of `RunOptions.settings(namespace)`.
SET_NAMESPACES: dict[str, str] = {
    "task": "an option the task declares (`dlbench list` shows each task's options)",
    "recipe": "a recipe field the model's trainer reads: lr, batch_size, optimizer, weight_decay (supervised), "
              "algo.KEY (RL: a field of its PPO or DQN config)",
    "model": "a keyword of the model's factory (e.g. depth, width, activation of mlp and cnn)",
    "data": "fraction: train on a seeded random fraction (0, 1] of the training split",
}
# A plan larger than either starts only with --yes: a typo (`--seeds 1000000`) must not start days of runs.
MAX_RUNS = 200
MAX_SEEDS = 100
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _opt(default: Any, help: str, flag: str | None = None, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, **kw})


@dataclass
class RunOptions:
    """How runs are executed; shared by `run_all.py`, `dlbench run` and the tests."""

    profile: str = _opt("quick", "profile: smoke (seconds, CI), quick (offline, minutes), full (real datasets, GPU), "
                        "speed (full-size models on synthetic data: throughput and utilisation, no target)",
                        choices=PROFILES)
    seeds: int = _opt(1, "number of seeds per task x model (seeds 0..N-1)")
    device: str = _opt("auto", "auto | cpu | cuda | cuda:N | mps (auto: CUDA, then MPS, then CPU)")
    precision: str = _opt("auto", "auto (bf16 autocast on CUDA; on a CPU fast in bf16 only for recipes that "
                          "declare a bf16 win; fp32 elsewhere) | bf16 | fp32",
                          choices=("auto", "bf16", "fp32"))
    compile: bool = _opt(False, "wrap models in torch.compile, default mode (compile time is measured apart); with "
                         "--cuda-graphs the graphs replay the compiled kernels")
    cuda_graphs: bool = _opt(False, "capture each training step (forward, backward, optimizer) in a CUDA graph, one "
                             "per batch shape, and replay it (capture is timed with the warm-up); CUDA only: a run "
                             "it cannot capture is recorded skipped with the reason")
    results: Path = _opt(Path("results"), "results folder; records go to RESULTS/runs/")
    data_dir: str | None = _opt(None, "data folder (default $DLBENCH_DATA or ~/.cache/dlbench)")
    resume: bool = _opt(False, "skip runs whose record already exists for the same resolved config and seed")
    hardware_label: str | None = _opt(None, "short name of this machine in tables (default: GPU name or CPU model)")
    max_time_s: float | None = _opt(None, "cap every run's train time (seconds; warm-up, compilation and "
                                    "evaluation are not counted, so wall time runs longer)")
    max_steps: int | None = _opt(None, "override every run's step budget (optimizer steps, or env steps for RL)")
    train_to_budget: bool = _opt(False, "train the whole budget even after the target is met (studies: the best "
                                 "validation quality and its test figure at a fixed budget; time-to-target is "
                                 "still recorded when the target is first met)")
    target_value: float | None = _opt(None, "measure time to this value of each task's target metric instead of "
                                      "the task's own (keyed apart in tables; bench/convergence.py uses it)")
    tensorboard: Path | None = _opt(None, "also write each run's learning curves and settings as TensorBoard "
                                    "event files into DIR/<run_id>/ (made from the record after the run)")
    tasks_from: list[str] = _opt(None, "also import these task modules (comma-separated)", list_of=str)
    set: list[str] = _opt(None, "NAMESPACE.KEY=VALUE, repeatable: task.KEY sets an option the task declares "
                          "(e.g. --set task.pretrained=distilbert-base-uncased for sentiment); `dlbench list` "
                          "shows each task's options; recipe.KEY, model.KWARG and data.fraction make a variant of "
                          "the model, for the keys its trainer reads (a wrong key lists them)", flag="--set",
                          append=True)

    def __post_init__(self) -> None:
        self.results = Path(self.results)
        if self.tensorboard is not None:
            self.tensorboard = Path(self.tensorboard)
            if self.tensorboard.exists() and not self.tensorboard.is_dir():
                raise ConfigError("tensorboard", str(self.tensorboard), "is a file; give a folder for the events")
        if self.hardware_label is not None:  # one line in tables; a byte the locale cannot decode shows as U+FFFD
            self.hardware_label = plain(self.hardware_label)
        if self.tasks_from is None:
            self.tasks_from = []
        self.set = list(self.set or [])
        for item in self.set:
            parse_setting(item)
        if self.profile not in PROFILES:
            raise ConfigError("profile", self.profile, f"use one of {', '.join(PROFILES)}")
        if self.seeds < 1:
            raise ConfigError("seeds", self.seeds, "must be >= 1 (the number of seeds to run)")
        if not _DEVICE.match(self.device):
            raise ConfigError("device", self.device, "use auto, cpu, mps, cuda or cuda:N")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError("precision", self.precision, "use auto, bf16 or fp32")
        if self.cuda_graphs and self.device in ("cpu", "mps"):
            raise ConfigError("cuda_graphs", True, f"CUDA graphs need a CUDA device, not --device {self.device}")
        if self.results.exists() and not self.results.is_dir():
            raise ConfigError("results", str(self.results), "is a file; give a folder for the results")
        if self.max_time_s is not None and not (math.isfinite(self.max_time_s) and self.max_time_s > 0):
            raise ConfigError("max_time_s", self.max_time_s, "must be a finite number of seconds > 0")
        if self.data_dir is not None and Path(self.data_dir).exists() and not Path(self.data_dir).is_dir():
            raise ConfigError("data_dir", self.data_dir, "is a file; give a folder for the data")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps", self.max_steps, "must be >= 1")
        if self.target_value is not None and not math.isfinite(self.target_value):
            raise ConfigError("target_value", self.target_value, "must be a finite number")

    def settings(self, namespace: str) -> dict[str, str]:
        """The `--set NAMESPACE.KEY=VALUE` values of one namespace, as {KEY: VALUE text} (later wins)."""
        found = {}
        for item in self.set:
            space, key, value = parse_setting(item)
            if space == namespace:
                found[key] = value
        return found


def parse_setting(item: str) -> tuple[str, str, str]:
    """`NAMESPACE.KEY=VALUE` -> (namespace, key, value); ConfigError naming the rule otherwise."""
    name, sep, value = item.partition("=")
    space, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError("--set", item, "use NAMESPACE.KEY=VALUE, e.g. task.pretrained=distilbert-base-uncased")
    if space not in SET_NAMESPACES:
        raise ConfigError("--set", item, f"unknown namespace {space!r}: use one of "
                          + ", ".join(f"{n}.KEY ({what})" for n, what in SET_NAMESPACES.items()))
    return space, key.strip(), value.strip()


@dataclass
class SuiteOptions(RunOptions):
    """What `run_all.py` runs: which tasks and models."""

    tasks: list[str] = _opt(None, "tasks to run, comma-separated (default: all)", list_of=str)
    models: str = _opt("default", "'default' (each task's default model), 'all', or comma-separated model names")
    executor: str = _opt("local", "local: one run after another here | ray: each run a Ray task, one per GPU "
                         "(a CPU run takes a whole node), records written here", choices=("local", "ray"))
    ray_address: str | None = _opt(None, "with --executor ray: none starts Ray on this machine's GPUs and CPUs; "
                                   "'auto' or HOST:PORT joins a running cluster")
    yes: bool = _opt(False, f"start a plan of more than {MAX_RUNS} runs or {MAX_SEEDS} seeds (without it such a plan "
                     "stops before any run, with its size and an estimate of its time)")

    def __post_init__(self) -> None:
        super().__post_init__()
        # None is "every task"; an empty list only comes from `--tasks ","`, which selects nothing. (None stays
        # None: `dataclasses.replace` re-runs this check, e.g. when the Ray executor copies the options.)
        if self.tasks is not None and not self.tasks:
            raise ConfigError("tasks", ",", "selects no task; leave --tasks out to run every task")
        if self.executor not in ("local", "ray"):
            raise ConfigError("executor", self.executor, "use local or ray")
        if self.ray_address and self.executor != "ray":
            raise ConfigError("ray_address", self.ray_address, "only with --executor ray")
        if self.executor == "ray" and re.match(r"^cuda:\d+$", self.device):
            raise ConfigError("device", self.device, "Ray gives each run its own GPU: use --device cuda or auto")
        if self.executor == "ray" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("executor", "ray", "not under torchrun: Ray places many runs, torchrun spreads one")
        if not self.models.strip():
            raise ConfigError("models", self.models, "use 'default', 'all' or comma-separated model names")


class _Removed(argparse.Action):
    """A flag that is gone: exit 2 with one line naming its replacement."""

    def __init__(self, *args: Any, replacement: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is gone: use {self.replacement}")


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one `--flag` per dataclass field, with the field's help, its choices and its default."""
    if issubclass(cls, RunOptions):  # hidden from --help; its replacement is named when it is used
        parser.add_argument("--pretrained", action=_Removed, replacement="--set task.pretrained=NAME",
                            help=argparse.SUPPRESS, dest="_removed_pretrained")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help", "")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, dest=f.name, action="store_true", help=helptext)
            continue
        if f.metadata.get("append"):
            parser.add_argument(flag, dest=f.name, action="append", default=None, metavar="KEY=VALUE",
                                help=helptext)
            continue
        choices = f.metadata.get("choices")
        if f.default is not None and "default" not in helptext:
            helptext += " (default: %(default)s)"
        parser.add_argument(flag, dest=f.name, type=_parse_type(f), default=f.default, choices=choices,
                            metavar="{" + ",".join(choices) + "}" if choices else f.name.upper(), help=helptext)


def from_namespace(cls: type, ns: argparse.Namespace, **overrides: Any):
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)}
    values.update(overrides)
    return cls(**values)


def _parse_type(f: dataclasses.Field):
    if f.metadata.get("list_of"):
        return lambda text: [part.strip() for part in text.split(",") if part.strip()]
    text = str(f.type)
    if "int" in text:
        return _typed(int, f.name)
    if "float" in text:
        return _typed(float, f.name)
    return str


class FlagValueError(DlbenchError):
    """A flag's text is not a value of its type (not a ValueError, so argparse lets it through to the
    command's one-line error handling instead of printing its usage)."""


def _typed(kind: type, name: str):
    def parse(text: str):
        try:
            return parse_as(text, kind, name)
        except ConfigError as exc:
            raise FlagValueError(str(exc)) from None

    parse.__name__ = kind.__name__
    return parse


def launch_rank() -> int:
    """This process's rank under torchrun (its RANK), 0 outside it: rank 0 writes and prints for every run."""
    return int(os.environ.get("RANK", "0"))


def rank_zero_log(log: Callable[[str], None]) -> Callable[[str], None]:
    """`log` on rank 0 (and outside torchrun), a no-op on the other ranks: rank 0 speaks for every run."""
    return log if launch_rank() == 0 else (lambda _line: None)
