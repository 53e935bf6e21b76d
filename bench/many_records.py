"""How long do `dlbench compare`, `check` and `report` take on many records, and how much memory?

Writes N small, valid records (default 20,000: 20 tasks x 5 models x 2 machines x 100 seeds, a
few of them not reached, failed or skipped) into a temporary results folder, then runs each
command in a fresh process, several times, and prints the median wall time, the median CPU time
(user + system of the command's process, which a busy host inflates less than wall time) and the
largest resident memory of the command's process. Goal on a 2-core CPU: compare and check under 5 s,
report under 15 s, each within 1 GB.

    python bench/many_records.py [--records 20000] [--reps 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suite.results import records  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402

TASKS, MODELS, MACHINES = 20, 5, 2


def small_record(task: int, model: int, machine: int, seed: int) -> dict:
    """A valid, consistent record of one run: two evaluations, the second reaching the target (mostly)."""
    name, model_name, label = f"task{task:02d}", f"model{model}", f"machine{machine}"
    kind = (task + model + machine + seed) % 50
    status = "failed" if kind == 0 else "skipped" if kind == 1 else "ok"
    reached = status == "ok" and kind != 2
    train = 10.0 + model + machine * 5 + (seed % 7) * 0.3
    quality = 0.91 if reached else 0.7
    config = {"task": name, "task_version": 1, "profile": "quick", "model": model_name, "dataset": "digits",
              "target": {"metric": "test/accuracy", "value": 0.9, "higher_is_better": True, "source": "bench"},
              "budget": {"max_steps": 20, "max_time_s": 60}, "recipe": {"lr": 0.01, "batch_size": 64},
              "seed": seed, "device": "cpu", "precision": "fp32", "precision_request": "auto", "compile": False,
              "world_size": 1, "max_time_s": None, "max_steps": None}
    run_id = f"{name}.{model_name}.quick.s{seed}.20260101T0000{machine:02d}.{task:02x}{model:02x}{seed % 256:02x}"
    return {
        "schema": records.SCHEMA, "run_id": run_id, "task": name, "task_version": 1, "model": model_name,
        "family": "deep", "variant": None, "profile": "quick", "dataset": "digits", "seed": seed,
        "status": status, "error": None if status == "ok" else "RuntimeError: bench",
        "target": config["target"], "reached_target": reached,
        "time_to_target_s": train if reached else None, "time_to_target_with_eval_s": train + 1 if reached else None,
        "steps_to_target": 20 if reached else None, "train_time_s": train, "warmup_s": 0.5, "eval_time_s": 1.0,
        "wall_time_s": train + 3, "stop_reason": "target" if reached else "budget", "steps": 20, "samples": 1280,
        "final_metrics": {"test/accuracy": quality, "test/loss": 0.3},
        "throughput": {"value": 1280 / train, "unit": "samples/s"} if status == "ok" else None,
        "peak_mem_mb": 500.0 + model, "params": 1000 * (model + 1), "utilisation": 0.01 if status == "ok" else None,
        "curve": [{"step": 10, "time_s": train / 2, "samples": 640, "test/accuracy": 0.5},
                  {"step": 20, "time_s": train, "samples": 1280, "test/accuracy": quality}],
        "hardware": {"label": label, "device": "cpu", "device_name": "cpu", "cpu": "x86", "cores": 2, "gpus": 0,
                     "hostname": label},
        "software": {"python": "3.11.7", "torch": "2.11.0", "dlbench": "0.1.0", "git_commit": "abc"},
        "host": {"other_cpu_share": 0.01, "torch_threads": 2},
        "config": config, "config_hash": records.config_hash(config),
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
    }


def write_records(folder: Path, n: int) -> int:
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    seeds = max(1, -(-n // (TASKS * MODELS * MACHINES)))
    written = 0
    for task in range(TASKS):
        for model in range(MODELS):
            for machine in range(MACHINES):
                for seed in range(seeds):
                    if written == n:
                        return written
                    record = small_record(task, model, machine, seed)
                    (runs / f"{record['run_id']}.json").write_text(json.dumps(record, indent=1))
                    written += 1
    return written


def timed(command: list[str]) -> tuple[float, float, int, float]:
    """(wall seconds, peak resident MB, exit status, CPU seconds) of `command` in a fresh process."""
    code = ("import resource, subprocess, sys, json\n"
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(json.dumps([p.returncode, u.ru_maxrss, u.ru_utime + u.ru_stime]))\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    wall = time.perf_counter() - start
    status, rss_kb, cpu = json.loads(out)
    return wall, rss_kb / 1024, status, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the records here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "results"
        start = time.perf_counter()
        n = write_records(folder, args.records)
        print(f"{n} records written to {folder} in {time.perf_counter() - start:.1f} s")
        dlbench = [sys.executable, "-m", "suite.cli"]
        commands = {"compare": [*dlbench, "compare", str(folder), "--format", "md"],
                    "check": [*dlbench, "check", str(folder)],
                    "report": [*dlbench, "report", str(folder), "--out", str(Path(tmp) / "report.html")]}
        print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} CPUs)")
        for name, command in commands.items():
            runs = [timed(command) for _ in range(args.reps)]
            walls, cpus = [r[0] for r in runs], [r[3] for r in runs]
            print(f"{name:8} {statistics.median(walls):6.1f} s median ({min(walls):.1f}..{max(walls):.1f}), "
                  f"CPU {statistics.median(cpus):5.1f} s median, peak {max(r[1] for r in runs):5.0f} MB, "
                  f"exit {runs[0][2]}")
        print(f"load after: {os.getloadavg()[0]:.2f}; uptime: "
              + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "many_records"))
