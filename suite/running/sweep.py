"""`dlbench sweep TASK --vary KEY=v1,v2 [--vary ...]`: a grid of variants of one model, each with N seeds.

The grid is the cartesian product of the `--vary` lists; each point is an ordinary suite run
(`suite.running.benchmark.run_suite`) with the point's values added to `--set`, so records, `--resume`,
the executors and "one failing run never loses the others" are the suite's own. Every point is
resolved before the first run starts: an unknown key or a bad value stops the sweep with one line
(exit 2). At the end the study table (suite.results.study) of the sweep's own records is written as CSV and
Markdown under RESULTS/studies/, with one plot per varied key, and the report gains a "Studies" section.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from suite.results import cells, study
from suite.running import benchmark
from suite.taskapi import registry, variants
from suite.running.config import SET_NAMESPACES, SuiteOptions, parse_setting, rank_zero_log
from suite.errors import ConfigError
from suite.running.runner import task_options, variant_settings
from suite.results.safe_io import atomic_write_bytes, plain
from suite.reporting import markdown


@dataclass(frozen=True)
class Axis:
    """One `--vary KEY=v1,v2,...`: the key (a `--set` key) and its values, as given."""

    key: str
    values: tuple[str, ...]


def parse_axes(items: list[str] | None) -> list[Axis]:
    """`["model.depth=1,2", ...]` -> Axes; ConfigError (one line) for a missing `=`, an empty list, a repeated
    key, a value given twice (compared as values: 0.1 and 1e-1 are one), or a key outside the `--set`
    namespaces."""
    if not items:
        raise ConfigError("--vary", "(none)", "give at least one, e.g. --vary model.depth=1,2,4")
    axes = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError("--vary", item, "use KEY=v1,v2,... (a `--set` key and its values), "
                              "e.g. --vary model.depth=1,2,4")
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        if not values:
            raise ConfigError(f"--vary {key}", text, "gives no value: list one or more, e.g. "
                              f"--vary {key}=V1,V2")
        same = _repeated(values)
        if same:  # compared as values: 0.1 and 1e-1, or 4 and 4.0, are one point of the grid
            raise ConfigError(f"--vary {key}", text, f"repeats a value ({' and '.join(same)} are the same "
                              "value): list each value once")
        parse_setting(f"{key}={values[0]}")  # the namespace (task, recipe, model, data) is known
        if key in {a.key for a in axes}:
            raise ConfigError("--vary", key, "is given twice: put all its values in one --vary KEY=v1,v2")
        axes.append(Axis(key, values))
    return axes


def grid(axes: list[Axis]) -> list[dict[str, str]]:
    """Every point of the cartesian product, the first axis varying slowest: [{key: value}, ...]."""
    return [dict(zip([a.key for a in axes], values)) for values in itertools.product(*(a.values for a in axes))]


def point_options(opts: SuiteOptions, point: dict[str, str]) -> SuiteOptions:
    return dataclasses.replace(opts, set=list(opts.set) + [f"{k}={v}" for k, v in point.items()])


def check(opts: SuiteOptions, axes: list[Axis]) -> list[dict[str, str]]:
    """The grid, every point resolved for the sweep's task and model (bad keys and values: ConfigError)."""
    task = registry.get_task(opts.tasks[0])
    if opts.models in ("default", "all") or "," in opts.models:
        raise ConfigError("sweep --model", opts.models, "name one model of the task (a sweep varies one model); "
                          f"models of {task.name}: {', '.join(task.models)}")
    registry.check_name(opts.models, task.models, f"model of task {task.name!r}")
    fixed = {f"{space}.{key}" for space in SET_NAMESPACES for key in opts.settings(space)}
    for axis in axes:
        if axis.key in fixed:
            raise ConfigError(f"--vary {axis.key}", ",".join(axis.values), "is also given with --set: keep one")
    benchmark.check_size([(task, opts.models)], math.prod(len(a.values) for a in axes), opts)  # before the grid
    points = grid(axes)
    if opts.profile in task.profiles:
        plans = [point_options(opts, point) for point in points]
        for point_opts in plans:
            benchmark.check_task_options([task], point_opts)
            spec = task.spec_for(opts.profile, opts.models, 0, task_options(task, point_opts),
                                 variant_settings(point_opts))
            benchmark.check_rl_budget(task, opts.models, spec, point_opts)
        benchmark.check_split_sizes([(task, opts.models)], plans)
    return points


def run_sweep(opts: SuiteOptions, axes: list[Axis],
              log: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], int]:
    """Run every point of the grid with `opts.seeds` seeds; return all records and the worst exit status."""
    points = check(opts, axes)
    say = rank_zero_log(log)
    say(f"sweep: {len(points)} variants x {opts.seeds} seeds = {len(points) * opts.seeds} runs of "
        f"{opts.tasks[0]} / {opts.models} ({opts.profile})")
    recs, status = [], 0
    for i, point in enumerate(points, 1):
        say(plain(f"variant {i}/{len(points)}: " + ", ".join(f"{k}={v}" for k, v in point.items())))
        got, code = benchmark.run_suite(point_options(opts, point), log)
        recs += got
        status = max(status, code)
    return recs, status


def write_study(recs: list[dict[str, Any]], axes: list[Axis], folder: Path) -> list[Path]:
    """RESULTS/studies/<task>.<model>.<keys>.csv and .md (one row per variant) and <task>.<model>.<key>.png
    per varied key; the machine's label is added to the names when the records come from several."""
    written = []
    found = study.studies(recs, [a.key for a in axes], {a.key: [_canonical(v) for v in a.values] for a in axes})
    machines = len({f.key["hardware"] for f in found}) > 1
    for one in found:
        base = f"{one.key['task']}.{one.key['model']}" + (f".{one.key['hardware']}" if machines else "")
        table = study.to_table(study.summarize(one), one)
        written += markdown.write_tables(table, folder, _file_name(f"{base}.{'+'.join(one.varied)}"))
        for key in one.varied:
            path = folder / (_file_name(f"{base}.{key}") + ".png")
            atomic_write_bytes(path, study.plot(one, key))
            written.append(path)
    return written


def _repeated(values: tuple[str, ...]) -> list[str]:
    """The first values of `values` that parse to the same value (["0.1", "1e-1"]), or []."""
    seen: dict[str, str] = {}
    for text in values:
        canonical = _canonical(text)
        if canonical in seen:
            return [seen[canonical], text]
        seen[canonical] = text
    return []


def _canonical(text: str) -> str:
    """A value as the records' overrides show it (suite.results.cells' text of the parsed value): "1.0" -> "1"."""
    return cells.value_text(variants.parse_value(text))


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", text)
