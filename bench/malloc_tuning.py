"""Does keeping freed memory (suite.running.allocator) speed training up? glibc defaults against the tuning.

Each rep runs the same quick run twice, each in a fresh `python run_all.py` process (the
allocator is set once per process and cannot be put back): once with `DLBENCH_MALLOC=default`
(glibc as it comes), once as dlbench runs by default (freed memory kept), the order alternating
between reps. Per run: throughput, train time, time-to-target, peak memory and the process's
minor page faults (from the records and `resource.getrusage` of the child), and how busy the host
was (the record's `host.other_cpu_share`). Medians and spreads (min..max) over reps; the ratio
tuned / default is taken within each rep.

    python bench/malloc_tuning.py --tasks atari_rl --reps 3
    python bench/malloc_tuning.py --tasks keyword_spotting,image_classification --reps 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from suite.results.stats import median_range  # noqa: E402
from suite.errors import DlbenchError, script_exit_code  # noqa: E402

SIDES = {"default": "default", "tuned": ""}  # DLBENCH_MALLOC per side ("" = dlbench's tuning)


def run_side(side: str, tasks: str, models: str, precision: str, results: Path, extra: list[str]) -> tuple[list[dict], int]:
    """One `run_all.py` process; its records and its minor page faults."""
    env = dict(os.environ, DLBENCH_MALLOC=SIDES[side])
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    done = subprocess.run([sys.executable, str(ROOT / "run_all.py"), "--profile", "quick", "--device", "cpu",
                           "--tasks", tasks, "--models", models, "--precision", precision, "--results", str(results),
                           *extra], env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
    if done.returncode != 0:  # run_all.py has printed its own one-line reason on stderr
        raise DlbenchError(f"run_all.py exited {done.returncode} on the {side} side: see its error above")
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
    return [r for r in records if "task" in r], faults


def figures(record: dict) -> dict:
    host = record.get("host") or {}
    return {"throughput": (record.get("throughput") or {}).get("value"), "unit": (record.get("throughput") or {}).get("unit"),
            "train_s": record.get("train_time_s"), "time_to_target_s": record.get("time_to_target_s"),
            "peak_mb": record.get("peak_mem_mb"), "other_cpu_share": host.get("other_cpu_share"),
            "malloc": host.get("malloc"), "status": record.get("status")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--tasks", default="atari_rl", help="comma-separated task names (run_all.py --tasks)")
    parser.add_argument("--models", default="default", help="run_all.py --models")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--reps", type=int, default=3, help="repetitions (order alternates)")
    parser.add_argument("--results", type=Path, default=None, help="records folder (default: a temporary one)")
    parser.add_argument("extra", nargs="*", help="more run_all.py arguments, after --")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error(f"--reps {args.reps}: give at least 1")
    base = args.results or Path(tempfile.mkdtemp(prefix="dlbench-malloc-"))
    rows: dict[tuple[str, str], list[dict]] = {}
    faults: dict[str, list[int]] = {side: [] for side in SIDES}
    for rep in range(args.reps):
        order = list(SIDES) if rep % 2 == 0 else list(SIDES)[::-1]
        for side in order:
            records, side_faults = run_side(side, args.tasks, args.models, args.precision,
                                            base / f"rep{rep}" / side, args.extra)
            faults[side].append(side_faults)
            for record in records:
                f = figures(record)
                rows.setdefault((f"{record['task']}/{record['model']}", side), []).append(f)
                print(f"rep {rep} {side:7s} {record['task']}/{record['model']}: {f['status']}, "
                      f"{f['throughput'] or 0:,.0f} {f['unit']}, train {f['train_s'] or 0:.1f} s, "
                      f"time-to-target {f['time_to_target_s']}, peak {f['peak_mb'] or 0:,.0f} MB, "
                      f"other cpu {f['other_cpu_share']}; malloc: {f['malloc']}", flush=True)
    print("\nmedian (min..max) over reps")
    for side in SIDES:
        print(f"{side:7s} minor page faults per process: {median_range(faults[side])}")
    for cell in sorted({cell for cell, _ in rows}):
        default, tuned = rows.get((cell, "default"), []), rows.get((cell, "tuned"), [])
        for key in ("throughput", "train_s", "time_to_target_s", "peak_mb", "other_cpu_share"):
            print(f"{cell:40s} {key:17s} default {median_range([r[key] for r in default]):28s} "
                  f"tuned {median_range([r[key] for r in tuned])}")
        ratios = [t["throughput"] / d["throughput"] for d, t in zip(default, tuned)
                  if d["throughput"] and t["throughput"]]
        print(f"{cell:40s} throughput tuned / default: {median_range(ratios)}")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "malloc_tuning"))
