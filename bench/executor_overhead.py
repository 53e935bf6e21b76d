"""What does `--executor ray` cost per run? The smoke suite through Ray against the local executor.

Both executors run the same planned runs (the smoke profile, each task's
default model, on CPU) in this one process: first the local executor, then
Ray on this machine (a local instance: each CPU run takes every CPU, so
runs go one at a time, as locally). Ray's start and shutdown are timed
apart: paid once per suite, not per run.

Data comes first: the local executor runs first and builds or fetches any
smoke data not yet in the data folder, so compare gaps, not run walls.
Per run, the gap is the driver's time between one record and the next
minus the run's own wall time (`wall_time_s`, measured inside `run_one`):
everything the executor adds around a run (scheduling, a worker process
and its imports, shipping the record back, writing it). Prints the gap of
each run under both executors, their medians and ranges, Ray's overhead
per run (median Ray gap - median local gap; goal: under 2 s on CPU), and
the host load, since other processes inflate every figure.

    python bench/executor_overhead.py [--tasks a,b] [--results DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.running import executors  # noqa: E402
from suite.running.benchmark import plan  # noqa: E402
from suite.running.config import SuiteOptions  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402


def timed_suite(opts: SuiteOptions, executor) -> list[tuple[str, float, float]]:
    """(run, gap s, the run's own wall s) per run, in the order the records arrived."""
    runs, _ = plan(opts)
    rows = []
    last = time.perf_counter()
    for _label, record in executor.run(runs, log=lambda _line: None):
        now = time.perf_counter()
        wall = record["wall_time_s"] or 0.0
        name = f"{record['task']}/{record['model']}/{record['seed']} {record['status']}"
        rows.append((name, now - last - wall, wall))
        last = now
    return rows


def summary(rows: list[tuple[str, float, float]]) -> str:
    gaps = [gap for _, gap, _ in rows]
    return (f"median {statistics.median(gaps):.2f} s, mean {statistics.mean(gaps):.2f} s, "
            f"range {min(gaps):.2f}..{max(gaps):.2f} s over {len(gaps)} runs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--tasks", default="", help="comma-separated tasks (default: every smoke task)")
    parser.add_argument("--results", type=Path, default=None, help="results folder (default: a temporary one)")
    args = parser.parse_args()
    root = args.results or Path(tempfile.mkdtemp(prefix="dlbench-executor-overhead-"))
    tasks = [t for t in args.tasks.split(",") if t]

    def options(name: str, executor: str) -> SuiteOptions:
        return SuiteOptions(profile="smoke", device="cpu", tasks=tasks, results=root / name, executor=executor)

    load_before = os.getloadavg()
    local = timed_suite(options("local", "local"), executors.make(options("local", "local")))

    ray_exec = executors.make(options("ray", "ray"))
    start = time.perf_counter()
    ray_exec.connect()
    started_s = time.perf_counter() - start
    try:
        remote = timed_suite(options("ray", "ray"), ray_exec)
    finally:
        start = time.perf_counter()
        ray_exec.ray.shutdown()
        stopped_s = time.perf_counter() - start
    load_after = os.getloadavg()

    print(f"{'run':<44} {'local gap s':>11} {'ray gap s':>10} {'run wall s (local / ray)':>25}")
    by_name = {name: (gap, wall) for name, gap, wall in remote}
    for name, gap, wall in local:
        rgap, rwall = by_name.get(name, (float("nan"), float("nan")))
        print(f"{name:<44} {gap:>11.2f} {rgap:>10.2f} {wall:>12.2f} / {rwall:.2f}")
    print(f"\nlocal executor: gap {summary(local)}")
    print(f"ray executor:   gap {summary(remote)}")
    overhead = statistics.median(g for _, g, _ in remote) - statistics.median(g for _, g, _ in local)
    mean = statistics.mean(g for _, g, _ in remote) - statistics.mean(g for _, g, _ in local)
    print(f"ray overhead per run, mean (the first run's worker start and imports spread over all): {mean:.2f} s")
    print(f"ray start {started_s:.1f} s and shutdown {stopped_s:.1f} s, once per suite")
    print(f"ray overhead per run (median gap ray - local): {overhead:.2f} s  (goal: under 2 s on CPU)")
    print(f"host load (1-min average) {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
          f"on {os.cpu_count()} CPUs; records in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "executor_overhead"))
