"""Do the new quick recipes reach the same targets sooner than the old ones? (issue #16, goal 4)

For each task, its default model on the quick profile runs with the recipe it had before issue #16
(`OLD`: budget, recipe and the precision `auto` gave it then, fp32 on a CPU) and with the recipe it
has now (precision `auto`, which picks bf16 on a CPU fast in bf16 where the recipe declares a win),
in one process, seeds 0..N-1, alternating which goes first from seed to seed so drift in the
machine's load does not favour one. Target, data and evaluation rule are the task's own in both.
Prints each run's time-to-target (train time, AlgoPerf rule), the medians with their spread
(min-max), reached n/N, the ratio old / new, and how busy the host was (other processes' share of
the CPU, from each record's `host`). Records go to RESULTS/old and RESULTS/new.

    python bench/quick_recipes.py [--tasks speech_recognition,sentiment,...] [--seeds 3]
                                  [--only old|new] [--results DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite import registry  # noqa: E402
from suite.config import SuiteOptions  # noqa: E402
from suite.stats import median_range  # noqa: E402
from suite.runner import run_one  # noqa: E402
from suite.task import Budget, Recipe  # noqa: E402

DEFAULT_TASKS = "speech_recognition,sentiment,image_classification,keyword_spotting"

# The quick recipes of the default models before issue #16 (commit 107b11a): budget, recipe, precision.
OLD = {
    "speech_recognition": (Budget(max_epochs=8, max_time_s=420, evals_per_epoch=1),
                           Recipe(batch_size=32, eval_batch_size=100, lr=3e-3, weight_decay=0.01, grad_clip=1.0,
                                  # clip_norm False: features normalised over the padded batch, every step, as then
                                  model_kwargs={"hidden": 160, "layers": 2, "clip_norm": False}), "fp32"),
    "sentiment": (Budget(max_epochs=1, max_time_s=900, evals_per_epoch=4),
                  Recipe(batch_size=32, eval_batch_size=256, lr=5e-5, weight_decay=0.01, grad_clip=1.0), "fp32"),
    "image_classification": (Budget(max_epochs=3, max_time_s=300, evals_per_epoch=8),
                             Recipe(batch_size=256, lr=4e-3, weight_decay=0.05, model_kwargs={"width": 24}), "fp32"),
    "keyword_spotting": (Budget(max_epochs=10, max_time_s=300, evals_per_epoch=1),
                         Recipe(batch_size=100, eval_batch_size=400, lr=3e-3, weight_decay=0.01), "fp32"),
}


def old_task(task_cls: type) -> type:
    """`task_cls` with its default model's quick recipe as it was before issue #16 (same name, data,
    target and evaluation: only the budget and recipe differ, so the records differ in config only)."""
    budget, recipe, _precision = OLD[task_cls.name]
    quick = task_cls.profiles["quick"]
    profiles = {**task_cls.profiles, "quick": dataclasses.replace(
        quick, budget=budget, recipes={**quick.recipes, task_cls.default_model: recipe})}
    return type(f"Old{task_cls.__name__}", (task_cls,), {"profiles": profiles, "__module__": __name__})


def line(record: dict) -> str:
    """One run of a race: time-to-target, step, final quality, precision, train time, throughput and
    how busy the host was (bench/cpu_precision.py prints its runs with it too)."""
    if record["status"] != "ok":
        return f"{record['status']}: {record['error']}"
    target = record["target"]
    quality = record["final_metrics"].get(target["metric"])
    ttt = f"{record['time_to_target_s']:.1f} s" if record["reached_target"] else "not reached"
    share = (record.get("host") or {}).get("other_cpu_share")
    busy = f"others {share:.0%} of the CPU" if share is not None else "host load unknown"
    rate = record.get("throughput") or {}
    rate_text = f"  {rate['value']:,.0f} {rate['unit']}" if rate else ""
    return (f"{ttt:>12}  step {record.get('steps_to_target')}  final {quality:.4f}  "
            f"{record['config']['precision']}  train {record['train_time_s']:.1f} s{rate_text}  ({busy})")


def race(task_cls: type, seeds: int, results: Path, only: str | None) -> dict[str, list[dict]]:
    variants = {"old": (old_task(task_cls), OLD[task_cls.name][2]), "new": (task_cls, "auto")}
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for seed in range(seeds):
        order = ("old", "new") if seed % 2 == 0 else ("new", "old")
        for name in order:
            if only and name != only:
                continue
            cls, precision = variants[name]
            opts = SuiteOptions(profile="quick", device="cpu", precision=precision, results=results / name)
            record = run_one(cls, task_cls.default_model, seed, opts, log=lambda _m: None)
            runs[name].append(record)
            print(f"  seed {seed} {name}: {line(record)}", flush=True)
    return runs


def summary(runs: dict[str, list[dict]]) -> None:
    times = {k: [r["time_to_target_s"] for r in v if r.get("reached_target")] for k, v in runs.items()}
    shares = [(r.get("host") or {}).get("other_cpu_share") for v in runs.values() for r in v]
    shares = [s for s in shares if s is not None]
    for k in ("old", "new"):
        if runs[k]:
            print(f"  {k}: reached {len(times[k])}/{len(runs[k])}, time-to-target {median_range(times[k], '.1f', ' s')}")
    if all(runs[k] and len(times[k]) == len(runs[k]) for k in ("old", "new")):
        print(f"  ratio old / new (medians): {statistics.median(times['old']) / statistics.median(times['new']):.2f}x")
    elif runs["old"] and runs["new"]:
        print("  ratio: - (a recipe missed the target on some seed: its median is not a time-to-target)")
    if shares:
        print(f"  host: other processes used {min(shares):.0%}-{max(shares):.0%} of the CPU during these runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated tasks (default models run)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per recipe (default 3)")
    parser.add_argument("--only", choices=("old", "new"), help="run one recipe only (trying a candidate)")
    parser.add_argument("--results", type=Path, default=None, help="keep the records here")
    args = parser.parse_args()
    import torch

    results = args.results or Path(tempfile.mkdtemp(prefix="dlbench-quick-recipes-"))
    registry.load_tasks()
    print(f"{torch.get_num_threads()} torch threads; records: {results}", flush=True)
    for name in (t.strip() for t in args.tasks.split(",")):
        task = registry.get_task(name)
        if name not in OLD:
            raise SystemExit(f"no old recipe for task {name!r}: use one of {', '.join(OLD)}")
        print(f"{name} / {task.default_model}", flush=True)
        summary(race(task, args.seeds, results, args.only))


if __name__ == "__main__":
    main()
