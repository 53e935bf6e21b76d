"""Which precision trains each model faster on a CUDA GPU: bf16 autocast or fp32 with TF32? (issue #28, goal 2)

For every trainable model of the tasks, the speed profile (the full recipe's step on synthetic
batches of the full shapes) runs in bf16 and in fp32, alternating which goes first from model to
model, `--reps` times, in one process. The table gives the median throughput of each precision,
fp32 / bf16, the verdict (fp32 where it is at least `TF32_MIN_SPEEDUP` x bf16: more than one
rerun's spread) and whether the recipe's `Recipe.cuda_tf32` declares the same; `--precision auto`
on CUDA follows that declaration. Exit 1 when a declaration disagrees with the race.

    python bench/gpu_precision.py [--tasks a,b] [--reps 3] [--results DIR]
    python bench/gpu_precision.py --from-records results/reference/NVIDIA-H200   # no GPU needed

    python bench/gpu_precision.py --time-to-target [--tasks a,b] [--reps 3]   # quick profile

`--from-records` makes the same table from speed records already written (eager, device cuda,
explicit bf16 and fp32 runs), e.g. the shipped H200 records that back today's declarations.
The speed race is per training step at equal step counts. `--time-to-target` races what the
quick profile measures instead: each task's default model runs its quick recipe to the target in
bf16 and in fp32, seeds 0..reps-1, alternating which precision goes first; the table gives the
median time-to-target (train time, a run that missed counts as never) and the verdict for the quick
recipe's `cuda_tf32` (fp32 where bf16's median is at least `TF32_MIN_SPEEDUP` x fp32's).
With `--from-records` and `--time-to-target` the table comes from quick records already written.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TF32_MIN_SPEEDUP = 1.10  # fp32 / bf16 throughput at or above which a recipe declares cuda_tf32


def by_precision(records: list[dict], profile: str, value) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(task, model): {precision: [value(record), ...]}} over the ok, eager CUDA runs of `profile` (records
    of other profiles, devices, `--compile` or failed runs left out; a record whose value is None too)."""
    values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        config = record.get("config") or {}
        if (record.get("status") != "ok" or record.get("profile") != profile or config.get("compile")
                or not str(config.get("device", "")).startswith("cuda")):
            continue
        measured = value(record)
        if measured is not None:
            values[(record["task"], record["model"])][config.get("precision")].append(measured)
    return {key: found for key, found in sorted(values.items()) if found.get("bf16") and found.get("fp32")}


def race(records: list[dict]) -> list[dict]:
    """Per (task, model): median throughput in bf16 and fp32 over the eager CUDA speed records, their
    ratio and the verdict."""
    def rate_of(record: dict) -> float | None:
        return record["throughput"]["value"] if record.get("throughput") else None

    rows = []
    for (task, model), rates in by_precision(records, "speed", rate_of).items():
        bf16, fp32 = statistics.median(rates["bf16"]), statistics.median(rates["fp32"])
        rows.append({"task": task, "model": model, "bf16": bf16, "fp32": fp32, "ratio": fp32 / bf16,
                     "runs": len(rates["bf16"]) + len(rates["fp32"]), "tf32": fp32 / bf16 >= TF32_MIN_SPEEDUP})
    return rows


def time_to_target(record: dict) -> float:
    """A run's time-to-target (train time); `math.inf` where it missed the target, as in every
    time-to-target table."""
    reached = record.get("reached_target") and record.get("time_to_target_s") is not None
    return float(record["time_to_target_s"]) if reached else math.inf


def race_time_to_target(records: list[dict]) -> list[dict]:
    """Per (task, model): median time-to-target (train time) in bf16 and in fp32 over the quick-profile
    CUDA runs, how many reached, bf16 / fp32 and the verdict. A run that missed the target counts as
    infinitely slow (`time_to_target`), so the ratio is inf, 0 or NaN where a median missed."""
    rows = []
    for (task, model), times in by_precision(records, "quick", time_to_target).items():
        bf16, fp32 = statistics.median(times["bf16"]), statistics.median(times["fp32"])
        ratio = bf16 / fp32  # float division: a missed side gives inf (bf16), 0.0 (fp32) or NaN (both)
        rows.append({"task": task, "model": model, "bf16": bf16, "fp32": fp32, "ratio": ratio,
                     "reached": {p: sum(math.isfinite(t) for t in v) for p, v in times.items()},
                     "runs": len(times["bf16"]) + len(times["fp32"]), "tf32": ratio >= TF32_MIN_SPEEDUP})
    return rows


def declared(task: str, model: str, profile: str = "speed") -> bool:
    """The shipped recipe's `cuda_tf32` for this model on `profile` (speed: the full recipe's)."""
    from suite.taskapi import registry

    recipe = registry.get_task(task).profiles[profile].recipes.get(model)
    return bool(recipe and recipe.cuda_tf32)  # a model without a recipe of its own runs the defaults


def print_time_to_target_table(rows: list[dict]) -> int:
    """Prints the quick-profile race; returns how many quick recipes declare otherwise than it found."""
    disagree = 0
    print(f"{'task / model':42} {'bf16 s':>9} {'fp32 s':>9} {'bf16/fp32':>9}  reached   race   quick recipe")
    for row in rows:
        said = declared(row["task"], row["model"], "quick")
        disagree += said != row["tf32"]
        reached = f"{row['reached'].get('bf16', 0)}+{row['reached'].get('fp32', 0)}/{row['runs']}"
        print(f"{row['task'] + ' / ' + row['model']:42} {row['bf16']:>9.2f} {row['fp32']:>9.2f} "
              f"{row['ratio']:>9.2f}  {reached:8}  {'fp32' if row['tf32'] else 'bf16':5}  "
              f"{'fp32' if said else 'bf16'}{'' if said == row['tf32'] else '  <- disagrees'}")
    print(f"median time-to-target (train time; a missed target counts as never); fp32 is declared where bf16 "
          f"takes >= {TF32_MIN_SPEEDUP:.2f}x as long (Recipe.cuda_tf32); {disagree} quick recipe(s) disagree")
    return disagree


def print_table(rows: list[dict]) -> int:
    """Prints the race; returns how many recipes declare otherwise than it found."""
    disagree = 0
    print(f"{'task / model':42} {'bf16':>10} {'fp32':>10} {'fp32/bf16':>9}  race   recipe")
    for row in rows:
        said = declared(row["task"], row["model"])
        disagree += said != row["tf32"]
        print(f"{row['task'] + ' / ' + row['model']:42} {row['bf16']:>10,.0f} {row['fp32']:>10,.0f} "
              f"{row['ratio']:>9.2f}  {'fp32' if row['tf32'] else 'bf16':5}  {'fp32' if said else 'bf16'}"
              f"{'' if said == row['tf32'] else '  <- disagrees'}")
    print(f"fp32 is declared where it runs >= {TF32_MIN_SPEEDUP:.2f}x bf16 (Recipe.cuda_tf32); "
          f"{disagree} recipe(s) disagree with this race")
    return disagree


def run_in_both(task, model: str, seed: int, label: str, order: tuple[str, str], profile: str, device: str,
                results: Path, describe) -> list[dict]:
    """One run of `model` in each precision of `order` (its first goes first), each printed on a line
    with `label` and `describe(record)`; their records."""
    from suite.running.config import SuiteOptions
    from suite.running.runner import run_one

    records = []
    for precision in order:
        opts = SuiteOptions(profile=profile, device=device, precision=precision, results=results)
        record = run_one(task, model, seed, opts, log=lambda _m: None)
        records.append(record)
        print(f"{task.name} / {model} {label} {precision}: {record['status']} {describe(record)}", flush=True)
    return records


def run_time_to_target_race(tasks: list[str], reps: int, results: Path, device: str = "cuda",
                            profile: str = "quick") -> list[dict]:
    """Each task's default model on the quick profile, seeds 0..reps-1, bf16 and fp32 alternating first
    (`device` and `profile` let a test run the same sequence on a CPU, on the smoke profile)."""
    from suite.taskapi import registry

    def reached(record: dict) -> str:
        ttt = time_to_target(record)
        return "not reached" if math.isinf(ttt) else f"{ttt:.2f} s to target"

    records = []
    order = ("bf16", "fp32")
    for name in tasks:
        task = registry.get_task(name)
        for seed in range(reps):
            order = order[::-1]
            records += run_in_both(task, task.default_model, seed, f"seed {seed}", order, profile, device, results,
                                   reached)
    return records


def run_race(tasks: list[str], reps: int, results: Path) -> list[dict]:
    import torch

    from suite.taskapi import registry
    from suite.taskapi.models import family_of, is_estimator

    def rate(record: dict) -> str:
        value = (record.get("throughput") or {}).get("value")
        return "" if value is None else f"{value:,.0f} samples/s"

    records = []
    order = ("bf16", "fp32")
    for name in tasks:
        task = registry.get_task(name)
        for model in task.models:
            if family_of(task, model) != "deep" or is_estimator(task, model):
                continue
            for rep in range(reps):
                order = order[::-1]
                records += run_in_both(task, model, 0, f"rep {rep}", order, "speed", "cuda", results, rate)
        torch.cuda.empty_cache()
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--tasks", default=None, help="comma-separated tasks (default: every registered task)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each (model, precision)")
    parser.add_argument("--results", type=Path, default=None, help="keep the live race's records here")
    parser.add_argument("--from-records", type=Path, default=None, metavar="DIR",
                        help="make the table from records in DIR instead of running")
    parser.add_argument("--time-to-target", action="store_true",
                        help="race the quick profile's time-to-target instead of the speed profile's steps")
    args = parser.parse_args()
    from suite.taskapi import registry

    registry.load_tasks()
    tabulate = race_time_to_target if args.time_to_target else race
    profile = "quick" if args.time_to_target else "speed"
    if args.from_records:
        from suite.results.records import read_records

        rows = tabulate(read_records([args.from_records]))
    else:
        import torch

        if not torch.cuda.is_available():
            print("gpu_precision: the race needs a CUDA GPU (or --from-records DIR)", file=sys.stderr)
            return 2
        tasks = args.tasks.split(",") if args.tasks else sorted(registry.load_tasks())
        results = args.results or Path(tempfile.mkdtemp(prefix="dlbench-gpu-precision-"))
        run = run_time_to_target_race if args.time_to_target else run_race
        rows = tabulate(run(tasks, args.reps, results))
        print(f"records: {results}")
    if not rows:
        print(f"gpu_precision: no model has eager CUDA {profile} runs in both bf16 and fp32", file=sys.stderr)
        return 2
    disagree = print_time_to_target_table(rows) if args.time_to_target else print_table(rows)
    return 1 if disagree else 0


if __name__ == "__main__":
    from suite.errors import script_exit_code

    sys.exit(script_exit_code(main, "gpu_precision"))
