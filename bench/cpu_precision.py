"""Does bf16 autocast reach the quick targets sooner than fp32 on this CPU? (issue #16, goal 3)

For each task's default model on the quick profile, the harness runs it once in fp32 and once in
bf16 autocast, in one process, alternating which goes first from task to task so drift in the
machine's load does not favour one precision. Prints time-to-target (train time, AlgoPerf rule),
final quality and throughput of both, and the speed-up bf16 / fp32. Records go to --results
(a temporary folder by default), so `dlbench compare DIR` shows the same runs in separate cells.

    python bench/cpu_precision.py [--tasks image_classification,keyword_spotting,...] [--results DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.taskapi import registry  # noqa: E402
from suite.running.config import SuiteOptions  # noqa: E402
from suite.taskapi.data import data_dir  # noqa: E402
from suite.measuring.peak import machine_peak  # noqa: E402
from suite.running.runner import run_one  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402

DEFAULT_TASKS = "image_classification,keyword_spotting,sentiment,speech_recognition"


def line(record: dict) -> str:
    """One run of the race: time-to-target, steps, final quality, precision, train time, throughput and
    how busy the host was."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated tasks (default models run)")
    parser.add_argument("--results", type=Path, default=None, help="keep the records here")
    args = parser.parse_args()
    registry.load_tasks()
    tasks = [registry.get_task(name.strip()) for name in args.tasks.split(",")]  # a bad name fails before the peak
    import torch

    peak = machine_peak(torch.device("cpu"), data_dir())
    print(f"CPU peak: fp32 {peak.get('fp32', 0) / 1e9:,.0f} GFLOP/s, bf16 {peak.get('bf16', 0) / 1e9:,.0f} GFLOP/s "
          f"({torch.get_num_threads()} threads)")
    results = args.results or Path(tempfile.mkdtemp(prefix="dlbench-cpu-precision-"))
    for i, task in enumerate(tasks):
        order = ("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")
        runs = {}
        for precision in order:
            opts = SuiteOptions(profile="quick", device="cpu", precision=precision, results=results)
            runs[precision] = run_one(task, task.default_model, 0, opts, log=lambda _m: None)
        print(f"{task.name} / {task.default_model}")
        for precision in ("fp32", "bf16"):
            print(f"  {precision}: {line(runs[precision])}")
        a, b = runs["fp32"], runs["bf16"]
        if a.get("reached_target") and b.get("reached_target"):
            print(f"  speed-up bf16 / fp32 (time-to-target): {a['time_to_target_s'] / b['time_to_target_s']:.2f}x")
        else:
            print("  speed-up: - (a precision did not reach the target)")
    print(f"records: {results}")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "cpu_precision"))
