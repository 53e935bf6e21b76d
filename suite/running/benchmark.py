"""The whole benchmark: plan task x model x seed runs, run each, summarise.

One failing run never takes the others with it: each ends as a record,
and the exit status says whether any crashed.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, Callable

from suite.measuring import fingerprint
from suite.results import compare
from suite.running import executors
from suite.taskapi import registry, variants
from suite.running.config import MAX_RUNS, MAX_SEEDS, SuiteOptions, launch_rank, rank_zero_log
from suite.measuring.contention import busy_note
from suite.taskapi.data import check_data_dir, data_dir
from suite.errors import ConfigError, DlbenchError, UnknownNameError
from suite.running.run_record import skipped_record
from suite.running.runner import run_spec, task_options, variant_settings
from suite.taskapi.models import is_estimator
from suite.results.safe_io import check_writable, plain
from suite.taskapi.spec import RunSpec
from suite.taskapi.task import TaskBase
from suite.reporting import markdown


@dataclass(frozen=True)
class PlannedRun:
    task: type[TaskBase]
    model: str
    seed: int
    skip: str | None = None  # why this run is recorded as skipped instead of run (a `--set` key it does not take)


def plan(opts: SuiteOptions) -> tuple[list[PlannedRun], list[tuple[str, str]]]:
    """The runs to do, and (task module, reason) of requested tasks that cannot be imported."""
    known = registry.load_tasks(opts.tasks_from)
    names = list(dict.fromkeys(opts.tasks)) if opts.tasks else sorted(known)  # `--tasks a,a` runs a once
    unavailable = []
    tasks = []
    for name in names:
        missing = [m for m in registry.UNAVAILABLE if m.rsplit(".", 1)[-1] == name]
        if name not in known and missing:
            unavailable.append((name, registry.UNAVAILABLE[missing[0]]))
            continue
        tasks.append(registry.get_task(name))
    if not opts.tasks:  # the default "all tasks" includes those whose import failed, as skips
        unavailable += [(m.rsplit(".", 1)[-1], why) for m, why in registry.UNAVAILABLE.items()]

    check_task_options(tasks, opts)
    wanted = list(dict.fromkeys(m.strip() for m in opts.models.split(","))) \
        if opts.models not in ("default", "all") else []  # `--models mlp,mlp` runs mlp once
    every_model = {m for t in tasks for m in t.models}
    for model in wanted:
        registry.check_name(model, every_model, "model (in the selected tasks)")
    pairs = []
    for task in tasks:
        if opts.models == "default":
            models = [task.default_model]
        elif opts.models == "all":
            models = list(task.models)
        else:
            models = [m for m in wanted if m in task.models]
        pairs += [(task, model) for model in models]
    check_size(pairs, 1, opts)  # before the runs are listed: `--seeds 1000000` stops here, at once
    runs = [PlannedRun(task, model, seed) for task, model in pairs for seed in range(opts.seeds)]
    runs = mark_unaccepted(runs, opts)
    for task, model in dict.fromkeys((run.task, run.model) for run in runs if not run.skip):  # bad values: stop now
        if opts.profile in task.profiles:
            spec = task.spec_for(opts.profile, model, 0, task_options(task, opts), variant_settings(opts))
            check_rl_budget(task, model, spec, opts)
    if not runs and not unavailable:
        raise UnknownNameError(f"--models {opts.models!r} selects no model of tasks {', '.join(names)}")
    return runs, unavailable


def mark_unaccepted(runs: list[PlannedRun], opts: SuiteOptions) -> list[PlannedRun]:
    """Runs of models that do not take a `--set` key (`--models all --set model.depth=2`: resnet18 has no
    depth) become skips with the reason; a key that no selected model takes is a typo: ConfigError
    (one line, the valid keys) before any run."""
    settings = variant_settings(opts)
    pairs = list(dict.fromkeys((run.task, run.model) for run in runs if opts.profile in run.task.profiles))
    lacking = {(task, model): variants.unaccepted(task, model, settings, opts.profile) for task, model in pairs}
    for key in settings:
        if pairs and all(key in missing for missing in lacking.values()):
            task, model = pairs[0]
            task.spec_for(opts.profile, model, 0, task_options(task, opts), settings)  # raises, naming valid keys
    return [dataclasses.replace(run, skip=f"{run.task.name}/{run.model} does not take --set "
                                + ", ".join(lacking[(run.task, run.model)]) + "; the other models ran with it")
            if lacking.get((run.task, run.model)) else run for run in runs]


def check_task_options(tasks: list[type[TaskBase]], opts: SuiteOptions) -> None:
    """Every `--set task.KEY` must be an option of one of the selected tasks (one line listing the valid keys)."""
    valid = sorted({opt.name for task in tasks for opt in task.options})
    for key, value in opts.settings("task").items():
        if key not in valid:
            listed = ", ".join(f"task.{k}" for k in valid) or "(the selected tasks declare no options)"
            raise ConfigError(f"--set task.{key}", value, f"no selected task has this option; valid: {listed}")
    for task in tasks:  # parse the values now: a bad one stops the suite before any run
        task.resolve_options(task_options(task, opts))


def check_size(pairs: list[tuple[type[TaskBase], str]], points: int, opts: SuiteOptions) -> None:
    """A plan of more than MAX_RUNS runs or MAX_SEEDS seeds needs `--yes`: DlbenchError (one line: its size
    and an estimate of its time from the profiles' `expected_s`) without it, a line on stdout with it."""
    runs = len(pairs) * points * opts.seeds
    if runs <= MAX_RUNS and opts.seeds <= MAX_SEEDS:
        return
    expected = [prof.expected_s if (prof := task.profiles.get(opts.profile)) else None for task, _model in pairs]
    known = [seconds for seconds in expected if seconds]
    estimate = (f"about {_duration(sum(known) * points * opts.seeds)} by the profiles' expected times"
                if known else "no time estimate (the profile's run times are unmeasured)")
    if known and len(known) < len(expected):
        estimate += f", {len(expected) - len(known)} of the {len(expected)} models unmeasured"
    shape = f"{len(pairs)} task/model pair{'s' * (len(pairs) != 1)}" + \
        (f" x {points:,} variants" if points > 1 else "") + f" x {opts.seeds:,} seeds"
    line = f"the plan has {runs:,} runs ({shape}), {estimate}"
    if not opts.yes:
        raise DlbenchError(f"{line}: more than {MAX_RUNS} runs or {MAX_SEEDS} seeds starts only with --yes")
    print(f"plan: {line}")


SPLIT_BOUND = ("recipe.batch_size", "data.fraction")  # `--set` keys bounded by the training split's size


def check_split_sizes(pairs: list[tuple[type[TaskBase], str]], plans: list[SuiteOptions]) -> None:
    """A `--set recipe.batch_size` larger than a supervised task's training split, or a `data.fraction` that
    leaves fewer samples than one batch: ConfigError (one line, the sizes and the bound:
    `suite.taskapi.variants.training_split`) before any run of any of `plans` (a suite, or a sweep's points).

    The split's size is known once it is loaded, so with one of these keys set each task's training split
    is loaded here, once per task and options (the runs load it again inside their own clocks). A split
    that cannot be loaded here (data not yet fetched, an extra missing) is left to its runs, whose records
    say why; the runs check the bound again.
    """
    loaded: dict[tuple, Any] = {}
    for opts in plans:
        settings = variant_settings(opts)
        if opts.profile == "speed" or not any(key in settings for key in SPLIT_BOUND):
            continue
        for task, model in dict.fromkeys(pairs):
            if opts.profile not in task.profiles or task.kind != "supervised" or is_estimator(task, model):
                continue
            spec = run_spec(task, model, 0, opts)
            if not any(key in spec.overrides for key in SPLIT_BOUND):
                continue  # the model takes neither key: its runs are skips
            key = (task, tuple(sorted(spec.options.items(), key=str)))
            if key not in loaded:
                try:
                    loaded[key] = task(spec, data_dir(opts.data_dir)).load("train")
                except Exception:  # noqa: BLE001 - the run meets the same failure and records it
                    loaded[key] = None
            if loaded[key] is not None:
                variants.training_split(loaded[key], spec)


def check_rl_budget(task: type[TaskBase], model: str, spec: RunSpec, opts: SuiteOptions) -> None:
    """An RL run of `spec` (the one the planner resolved, `--set` included) whose env-step budget
    (`--max-steps`, else the profile's) ends before its algorithm's first update (PPO: one rollout,
    num_envs x num_steps): ConfigError naming the budget and the smallest one allowed
    (`suite.training.rl.common.env_step_budget`), before any run of a suite or a sweep's points. The speed
    profile's timed steps and fitted models (`Model(estimator=True)`) train no such budget."""
    if task.kind != "rl" or opts.profile == "speed" or is_estimator(task, model):
        return
    from suite.training.rl.common import AlgoConfig, env_step_budget  # gymnasium: only with an RL task

    if isinstance(spec.recipe.algo, AlgoConfig):  # any other value is the run's own ConfigError
        env_step_budget(spec, opts.max_steps)


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.0f} s"


def check_folders(opts: SuiteOptions) -> None:
    """The results and data folders, before any run: the data folder usable (except for the speed profile,
    which reads no data), and neither folder inside the other (readers take every JSON file under a results
    folder for a record, and a data folder holds cache files); DlbenchError naming the folders otherwise."""
    results, data = opts.results.expanduser().resolve(), data_dir(opts.data_dir)
    if results == data or data in results.parents or results in data.parents:
        raise DlbenchError(f"--results {opts.results} and the data folder {data} overlap: keep results and data "
                           "in separate folders (--results, --data-dir)")
    if opts.profile != "speed":
        check_data_dir(data)


def run_suite(opts: SuiteOptions, log: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], int]:
    """Run the planned runs; return their records and the exit status (1 if any crashed)."""
    fingerprint.check_label(opts.hardware_label)  # a label no record could hold: one line, before any run
    runs, unavailable = plan(opts)
    executor = executors.make(opts)  # `--executor ray` without Ray: one line, before the folder is touched
    check_folders(opts)
    check_writable(opts.results / "runs")  # a read-only or full results folder: bad input, before any run
    check_split_sizes([(run.task, run.model) for run in runs if not run.skip], [opts])
    records = []
    rank, say = launch_rank(), rank_zero_log(log)  # another rank says only what went wrong on it
    for name, reason in unavailable:
        say(f"skip {name}: {reason}")
        records.append(skipped_record(name, "-", 0, f"task module not importable: {reason}", opts))
    for run in runs:
        if run.skip:
            say(plain(f"skip {run.task.name} / {run.model} seed {run.seed}: {run.skip}"))
            records.append(skipped_record(run.task.name, run.model, run.seed, run.skip, opts))
    for label, record in executor.run([run for run in runs if not run.skip], say):
        if record.get("claimed_elsewhere"):  # another process on this results folder took this run
            continue
        if rank == 0 or record["status"] in ("failed", "interrupted"):
            head = f"rank {rank}: {record['task']} / {record['model']} seed {record['seed']} " if rank else label
            log(f"{head}-> " + plain(summary_line(record)))
        records.append(record)
    crashed = [r for r in records if r["status"] in ("failed", "interrupted") or "_write_error" in r]
    return records, 1 if crashed else 0


def summary_line(record: dict[str, Any]) -> str:
    status = record["status"]
    if status in ("failed", "skipped", "interrupted"):
        return f"{status}: {record['error']}"
    target = record["target"]
    tput = record.get("throughput") or {}
    rate = f"{tput['value']:,.0f} {tput['unit']}" if tput else "-"
    rate += "".join(f", {value:,.0f} {unit}" for unit, value in (tput.get("extra") or {}).items())
    if target is None:  # the speed profile: throughput, utilisation, memory
        use = record.get("utilisation")
        use_text = f"{use:.1%}" if use is not None else f"- ({record.get('utilisation_note')})"
        step = (record.get("speed") or {}).get("step_time_median_s")
        step_text = f", step {step * 1000:.1f} ms median" if step else ""
        line = (f"{status}: {rate}{step_text}, utilisation {use_text}, peak memory {record.get('peak_mem_mb')} MB "
                f"(train {record['train_time_s']:.1f}s)")
        busy = busy_note(record)
        return f"{line}; warning: {busy}" if busy else line
    quality = record["final_metrics"].get(target["metric"])
    quality_text = f"{quality:.4f}" if quality is not None else "-"
    if record["reached_target"]:
        head = f"reached {target['metric']} {target['value']} in {record['time_to_target_s']:.1f}s"
    else:
        head = f"{status}, target {target['metric']} {target['value']} not reached"
    line = f"{head} (final {quality_text}, train {record['train_time_s']:.1f}s, {rate})"
    busy = busy_note(record)
    return f"{line}; warning: {busy}" if busy else line


def print_summary(records: list[dict[str, Any]], opts: SuiteOptions, out=None) -> None:
    out = out or sys.stdout
    frame = compare.to_frame(records)
    table = compare.to_table(frame, by="model")
    from suite.reporting import terminal

    title = f"time-to-target: {compare.TIME_RULES['train'][1]}"
    print("\n" + terminal.render(table, title) + "\n" + terminal.legend(), file=out)
    for r in records:  # not comparable, so not in the table's cells, but the gap must show (README)
        if r.get("status") == "skipped":
            print(plain(f"skipped: {r.get('task')} / {r.get('model')} seed {r.get('seed')}: {r.get('error')}"), file=out)
    if not table.empty:
        paths = markdown.write_tables(table, opts.results / "tables", "by_model")
        print(f"\ntables: {', '.join(map(str, paths))}", file=out)
