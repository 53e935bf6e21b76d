"""The commands that train: `run_all.py`'s runs, `dlbench run`, `sweep`, and `list` (which loads the tasks).
They import the training side (torch) when called, never at import."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from suite.results.safe_io import plain

RUN_COMMANDS = ("list", "run", "sweep")  # the commands that need the training side (torch)


def run_and_summarize(opts, write_report: bool) -> int:
    """Run the planned runs; rank 0 prints the table (and writes the report)."""
    from suite.running import benchmark

    records_, status = benchmark.run_suite(opts)
    if is_main_process():
        try:
            benchmark.print_summary(records_, opts)
            if write_report:
                report_into(opts.results)
        except OSError as exc:  # a full disk: the records are kept, the tables or report are not (re)written
            print(plain(f"error: tables or report not written ({exc}): run `dlbench report {opts.results}` "
                        "once there is room"), file=sys.stderr)
            status = max(status, 1)
    wait_for_rank_zero()
    return status


def wait_for_rank_zero() -> None:
    """Under torchrun, hold each rank until rank 0 has written its tables (see distributed.wait_for_rank_zero)."""
    from suite.running import distributed

    distributed.wait_for_rank_zero()


def report_into(results: Path) -> None:
    """Write RESULTS/report.html (+ .md, tables) from every record in RESULTS and say where it is."""
    from suite.reporting import report

    files, _ = report.write_report([results], results / "report.html")
    print(f"report: {files[0]}  (also {files[1].name} and {files[0].stem}_tables/)")


def is_main_process() -> bool:
    from suite.running.config import launch_rank

    return launch_rank() == 0


def add_run_arguments(p_list: argparse.ArgumentParser, p_run: argparse.ArgumentParser,
                       p_swp: argparse.ArgumentParser) -> None:
    from suite.running.config import SuiteOptions, add_arguments
    from suite.taskapi.spec import PROFILES

    p_list.add_argument("--profile", choices=PROFILES, default=None, help="show only this profile")
    p_list.add_argument("--json", action="store_true", help="print the same as one JSON document")
    p_list.add_argument("--tasks-from", default="", help="also import these task modules (comma-separated)")

    p_run.add_argument("task", help="the task to run (`dlbench list` names them)")
    p_run.add_argument("--model", default="default",
                       help="model name, 'all', or comma-separated names (default: the task's default model)")
    add_arguments(p_run, SuiteOptions, skip=("tasks", "models"))

    p_swp.add_argument("task", help="the task to run (`dlbench list` names them)")
    p_swp.add_argument("--model", default="default", help="the model to vary (default: the task's default model)")
    p_swp.add_argument("--vary", action="append", default=None, metavar="KEY=V1,V2,...",
                       help="repeatable; a --set key (recipe.lr|batch_size|optimizer|weight_decay, model.KWARG, "
                            "data.fraction, task.KEY) and its values; the grid is the product of all --vary lists")
    add_arguments(p_swp, SuiteOptions, skip=("tasks", "models"))


def list_command(args: argparse.Namespace) -> int:
    from suite.taskapi import registry
    from suite.taskapi.spec import PROFILES

    tasks = registry.load_tasks([m for m in args.tasks_from.split(",") if m])
    profiles = [args.profile] if args.profile else list(PROFILES)
    listing = [_describe(tasks[name], profiles) for name in sorted(tasks)]
    unavailable = [{"module": module, "reason": why} for module, why in registry.UNAVAILABLE.items()]
    if args.json:
        print(json.dumps({"tasks": listing, "unavailable": unavailable}, indent=2))
        return 0
    header = ("profile", "dataset", "target", "expected", "download", "source of the target")
    rows = {task["name"]: [_profile_row(profile, prof) for profile, prof in task["profiles"].items()]
            for task in listing}
    every = [header] + [row for task_rows in rows.values() for row in task_rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(header) - 1)]  # one alignment for all tasks

    def line(row: tuple[str, ...]) -> str:
        return "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]

    for task in listing:
        print(f"{task['name']}  (v{task['version']}, {task['kind']})")
        models = [f"{m} ({task['families'][m]})" + (" [default]" if m == task["default_model"] else "")
                  for m in task["models"]]
        print(plain("  models: " + ", ".join(models)))
        for opt in task["options"]:
            print(plain(f"  option task.{opt['name']} ({opt['type']}, default {opt['default']}): {opt['help']}"))
        for row in [header] + rows[task["name"]]:
            print(plain(line(row)))
        for profile, prof in task["profiles"].items():
            if prof["target"] is not None:
                print(plain(f"  {profile}: {_reference_line(prof)}"))
    for item in unavailable:
        print(plain(f"{item['module']}: unavailable ({item['reason']})"))
    return 0


def _describe(task, profiles: list[str]) -> dict:
    """One task as plain data: what `dlbench list` prints (and `--json` dumps)."""
    from suite.taskapi.models import family_of
    from suite.taskapi.spec import to_jsonable

    return {
        "name": task.name, "version": task.version, "kind": task.kind,
        "models": list(task.models), "default_model": task.default_model,
        "families": {m: family_of(task, m) for m in task.models},
        "options": [{"name": o.name, "type": o.type.__name__, "default": o.default, "help": o.help}
                    for o in task.options],
        "profiles": {p: {"dataset": spec.dataset, "target": to_jsonable(spec.target),
                         "budget": to_jsonable(spec.budget), "expected_s": _expected_s(spec, task.default_model),
                         "download_mb": spec.download_mb,
                         "references": {m: ref.summary() for m, ref in spec.references.items()}}
                     for p in profiles if (spec := task.profiles.get(p)) is not None},
    }


def _expected_s(spec, model: str) -> float | None:
    """The default model's train time to target from its reference (median steps x seconds per step on the
    reference machine), else the profile's declared estimate."""
    ref = spec.references.get(model)
    if ref is not None and ref.median is not None and ref.seconds_per_step:
        return ref.median * ref.seconds_per_step
    return spec.expected_s


def _reference_line(prof: dict) -> str:
    refs = prof.get("references") or {}
    if not refs:
        return "no reference convergence"
    out = []
    for ref in refs.values():
        band = ref["band_p5_p95"] or ["-", "-"]
        out.append(f"reference convergence of {ref['model']}: {ref['reached']}/{ref['n']} seeds reached, median "
                   f"{ref['median_steps']:g} {ref['step_unit']}, CV {ref['cv']}, p5-p95 {band[0]}-{band[1]}, "
                   f"{ref['seconds_per_step']:.4g} s/step on {ref['machine']} ({ref['date']}, {ref['commit']})"
                   if ref["median_steps"] is not None else
                   f"reference convergence of {ref['model']}: {ref['reached']}/{ref['n']} seeds reached")
    return "; ".join(out)


def _profile_row(profile: str, prof: dict) -> tuple[str, ...]:
    t = prof["target"]
    if t is None:  # speed: synthetic data, no target
        return (profile, prof["dataset"], "no target", _duration(prof["expected_s"]), _size(prof["download_mb"]),
                "throughput, utilisation and memory only")
    target = f"{t['metric']} {'>=' if t['higher_is_better'] else '<='} {t['value']}"
    return profile, prof["dataset"], target, _duration(prof["expected_s"]), _size(prof["download_mb"]), t["source"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unmeasured"
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"


def _size(mb: float) -> str:
    if not mb:
        return "none"
    return f"{mb:g} MB" if mb < 1000 else f"{mb / 1000:.1f} GB"


def pages_command(args: argparse.Namespace) -> int:
    from suite.reporting.pages import write_pages

    stale = write_pages(args.out, check=args.check)
    if args.check and stale:
        print(f"stale generated pages in {args.out}: {', '.join(stale)}: run `dlbench pages`", file=sys.stderr)
        return 1
    print(("up to date: " if not stale else "wrote: ") + ", ".join(stale or ["every page"]))
    return 0


def run_command(args: argparse.Namespace) -> int:
    from suite.running.config import SuiteOptions, from_namespace

    opts = from_namespace(SuiteOptions, args, tasks=[args.task], models=args.model)
    return run_and_summarize(opts, write_report=True)


def sweep_command(args: argparse.Namespace) -> int:
    from suite.running import sweep
    from suite.taskapi import registry
    from suite.running.config import SuiteOptions, from_namespace

    axes = sweep.parse_axes(args.vary)
    opts = from_namespace(SuiteOptions, args, tasks=[args.task], models=args.model)
    registry.load_tasks(opts.tasks_from)
    if opts.models == "default":
        opts = dataclasses.replace(opts, models=registry.get_task(args.task).default_model)
    records_, status = sweep.run_sweep(opts, axes)
    if is_main_process():
        try:
            paths = sweep.write_study(records_, axes, opts.results / "studies")
            for path in paths:
                if path.suffix == ".md":
                    print("\n" + path.read_text())
            for path in paths:
                print(f"study: {path}")
            report_into(opts.results)
        except OSError as exc:
            print(plain(f"error: study or report not written ({exc}): run `dlbench report {opts.results}` "
                        "once there is room"), file=sys.stderr)
            status = max(status, 1)
    wait_for_rank_zero()
    return status
