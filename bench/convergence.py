"""Reference convergence of a task profile: N seeds of one model, steps to target, and the target they support.

Runs `run_all.py` for seeds 0..N-1 of one task and model (the default model unless --model), one
process at a time with --resume (a rerun skips seeds already done), then reads the records and
prints, for the task's target (and each --candidates value), how many seeds reached it within the
budget, the median steps to target, the coefficient of variation (CV), the 5th-95th percentile band
and each seed's steps, and whether the written procedure holds (docs/methodology.md: N >= 10, at
least 9 of 10 reached, CV <= 0.15). With candidates, every run trains until the strictest candidate
is met (`--target-value`), so each lower candidate's steps are the first crossing on the same curve.
`--write` stores the reference of the task's own target as tasks/references/TASK.PROFILE.MODEL.json,
which the task loads (`ProfileSpec.references`) and `dlbench list` shows.

    python bench/convergence.py TASK [--profile quick] [--seeds 10] [--model M] [--candidates 0.88,0.9]
                                     [--results DIR] [--precision auto] [--jobs 1] [--set KEY=VALUE] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suite.errors import ConfigError  # noqa: E402
from suite.running.config import RunOptions  # noqa: E402
from suite.running.runner import run_spec  # noqa: E402
from suite.taskapi import registry  # noqa: E402
from suite.taskapi.convergence import Reference, recipe_hash, reference_path, steps_to_reach, to_json  # noqa: E402
from suite.results.records import read_records  # noqa: E402
from suite.results.safe_io import atomic_write_text  # noqa: E402
from suite.taskapi.spec import to_jsonable  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402


def run_seeds(task: str, model: str, args: argparse.Namespace, target_value: float | None) -> None:
    """`run_all.py --resume` over seeds 0..N-1; with --jobs J, J such processes on one results folder, each
    with its share of the cores as torch threads (--resume's claim gives every seed to one of them)."""
    command = [sys.executable, str(ROOT / "run_all.py"), "--profile", args.profile, "--tasks", task,
               "--models", model, "--seeds", str(args.seeds), "--results", str(args.results), "--resume",
               "--precision", args.precision, "--device", "cpu"]
    if target_value is not None:
        command += ["--target-value", repr(target_value)]
    for setting in args.set:
        command += ["--set", setting]
    if args.jobs == 1:
        subprocess.run(command, check=False, cwd=ROOT)
        return
    threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    workers = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(args.jobs)]
    for worker in workers:
        worker.wait()


def reference_of(records: list[dict], task_cls, model: str, target: dict, args: argparse.Namespace) -> Reference:
    """The reference of `target` from the seeds' curves (first crossing; None where never met)."""
    by_seed = {r["seed"]: r for r in sorted(records, key=lambda r: r["finished_at"])}  # newest per seed
    seeds = sorted(s for s in by_seed if s < args.seeds)
    steps = [steps_to_reach(by_seed[s]["curve"], target["metric"], target["value"], target["higher_is_better"])
             for s in seeds]
    runs = [by_seed[s] for s in seeds]
    per_step = [r["seconds_per_step"] for r in runs if r.get("seconds_per_step")]
    shares = [(r.get("host") or {}).get("other_cpu_share") for r in runs]
    shares = [s for s in shares if isinstance(s, (int, float))]
    spec = task_cls.spec_for(args.profile, model)
    quality = target["metric"].split("/", 1)[-1]
    tests = [r["final_metrics"].get(f"test/{quality}") for r in runs]
    tests = [t for t in tests if isinstance(t, (int, float))]
    first = runs[0]
    unit = (first.get("eval_cadence") or {}).get("unit")
    budget = first.get("steps") if first.get("stop_reason") == "budget" else None
    return Reference(
        task=task_cls.name, task_version=task_cls.version, profile=args.profile, model=model,
        target={k: target[k] for k in ("metric", "value", "higher_is_better")},
        step_unit="env_steps" if unit == "env_steps" else "steps", seeds=seeds, steps_to_target=steps,
        budget_steps=budget, recipe_hash=recipe_hash(spec.recipe), precision=first["config"]["precision"],
        seconds_per_step=statistics.median(per_step) if per_step else None, eval_cadence=first.get("eval_cadence"),
        machine=first["hardware"].get("label") or first["hardware"].get("cpu") or "unknown",
        date=datetime.now(timezone.utc).date().isoformat(), commit=first["software"].get("git_commit"),
        command=run_command(args),
        other_cpu_share=round(statistics.median(shares), 3) if shares else None,
        final_quality={f"median test/{quality} at the stopping evaluation": round(statistics.median(tests), 4)}
        if tests and not args.candidates else {})


def run_command(args: argparse.Namespace) -> str:
    """The command that ran the seeds (what a reader reruns), whatever options only read or wrote results."""
    parts = ["python bench/convergence.py", args.task, "--profile", args.profile, "--seeds", str(args.seeds)]
    parts += ["--model", args.model] if args.model else []
    parts += ["--candidates", args.candidates] if args.candidates else []
    parts += ["--precision", args.precision] if args.precision != "auto" else []
    parts += ["--jobs", str(args.jobs)] if args.jobs != 1 else []
    parts += [f"--set {setting}" for setting in args.set]
    return " ".join(parts)


def show(ref: Reference) -> str:
    ok, why = ref.meets_procedure()
    band = ref.band
    spread = "-" if band is None else f"{band[0]:.0f}-{band[1]:.0f}"
    cv = "-" if ref.cv is None else f"{ref.cv:.3f}"
    median = "-" if ref.median is None else f"{ref.median:g}"
    return (f"{ref.target['metric']} {'>=' if ref.target['higher_is_better'] else '<='} {ref.target['value']:g}: "
            f"reached {ref.reached}/{ref.n}, median {median} {ref.step_unit}, CV {cv}, p5-p95 {spread}, "
            f"per seed {ref.steps_to_target} -> {'meets the procedure' if ok else 'fails: ' + why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("task")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--model", default=None, help="default: the task's default model")
    parser.add_argument("--candidates", default="", help="comma-separated target values to assess as well")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--jobs", type=int, default=1,
                        help="seeds run in this many processes at once, the cores shared out as torch threads")
    parser.add_argument("--results", type=Path, default=None, help="default: results/convergence/TASK.PROFILE")
    parser.add_argument("--write", action="store_true", help="store the reference of the task's own target")
    parser.add_argument("--no-run", action="store_true", help="only read the records already in --results")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe variant to assess (run_all.py's --set; repeatable); not with --write")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give 1 or more processes")
    if args.set and args.write:
        parser.error("--write stores the reference of the task's own recipe: change the recipe, not --set")
    task_cls = registry.get_task(args.task)
    model = args.model or task_cls.default_model
    # the variant's values as records keep them: resolved as run_all.py resolves them, before any run
    try:
        variant = run_spec(task_cls, model, 0, RunOptions(profile=args.profile, set=args.set)).overrides
    except ConfigError as exc:  # a malformed or unknown --set item: run_all.py's one line
        parser.error(str(exc))
    target = to_jsonable(task_cls.profiles[args.profile].target)
    args.results = args.results or ROOT / "results" / "convergence" / f"{args.task}.{args.profile}"
    candidates = [float(v) for v in args.candidates.split(",") if v.strip()]
    values = sorted(set(candidates + [target["value"]]))
    strictest = (max(values) if target["higher_is_better"] else min(values)) if candidates else None
    if not args.no_run:
        run_seeds(args.task, model, args, strictest)
    records = [r for r in read_records([args.results / "runs"])
               if r["task"] == args.task and r["model"] == model and r["profile"] == args.profile
               and r["task_version"] == task_cls.version and r["status"] == "ok"
               and (r["target"] or {}).get("value") == (strictest if candidates else target["value"])
               and (r["config"].get("overrides") or {}) == variant]
    if not records:
        print(f"no finished records of {args.task}/{model} in {args.results}", file=sys.stderr)
        return 1
    print(f"{args.task} / {model}, profile {args.profile}, {len(records)} records, "
          f"host {os.uname().nodename}, cadence {records[0].get('eval_cadence')}")
    own = None
    for value in values:
        ref = reference_of(records, task_cls, model, {**target, "value": value}, args)
        print(("* " if value == target["value"] else "  ") + show(ref))
        if value == target["value"]:
            own = ref
    if args.write and own is not None:
        path = reference_path(ROOT / "tasks" / "references", args.task, args.profile, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, to_json(own))
        print(f"wrote {path.relative_to(ROOT)}")
        print(json.dumps(own.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "convergence"))
