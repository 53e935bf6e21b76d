"""How precise is a speed-profile figure? The same speed runs repeated, each in a fresh process.

Runs `run_all.py --profile speed` `--reps` times for the chosen tasks and models (the default model
of each task unless --models) and gives, per model, the median throughput over the reps, their range
and the spread: the range's width over the median, or from `stats.MIN_FOR_CI` reps on the width of
the median's 95% bootstrap interval (`suite.results.stats.precision`), whose goal is under 5%.
With `--max-steps N` every rep also runs the same models timed for exactly N steps (a fixed count
against the time rule), the two sides alternating which goes first, so the two rules' spreads come
from the same hour of the host.
Every record's `host.other_cpu_share` is kept: the largest is printed with the figures. `--out FILE`
writes the reps and the summary as JSON.

    python bench/speed_spread.py [--tasks image_classification,keyword_spotting] [--models cnn,ds_cnn]
                                 [--reps 5] [--max-steps 3] [--device cpu] [--precision auto] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suite.results import stats  # noqa: E402
from suite.results.records import read_records  # noqa: E402
from suite.results.safe_io import atomic_write_text  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402

TIME_RULE = "time rule"


def side_name(max_steps: int | None) -> str:
    return TIME_RULE if max_steps is None else f"{max_steps} steps"


def run_side(args: argparse.Namespace, max_steps: int | None, results: Path) -> list[dict]:
    """One `run_all.py --profile speed` process; its ok records."""
    command = [sys.executable, str(ROOT / "run_all.py"), "--profile", "speed", "--device", args.device,
               "--precision", args.precision, "--results", str(results)]
    for flag, value in (("--tasks", args.tasks), ("--models", args.models)):
        if value:
            command += [flag, value]
    if max_steps is not None:
        command += ["--max-steps", str(max_steps)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"speed_spread: run_all.py exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return [r for r in read_records([results / "runs"]) if r.get("status") == "ok"]


def summary(reps: list[dict]) -> list[dict]:
    """Per side and model: median throughput, range, spread kind and the spread's width over the median."""
    values: dict[tuple[str, str, str], list[float]] = {}
    for rep in reps:
        for row in rep["runs"]:
            values.setdefault((row["side"], row["task"], row["model"]), []).append(row["throughput"])
    return [{"side": side, "task": task, "model": model, "reps": len(rates), **stats.precision(rates)}
            for (side, task, model), rates in sorted(values.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--tasks", default="", help="comma-separated tasks (default: every task)")
    parser.add_argument("--models", default="", help="comma-separated models (default: each task's default model)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="also time each model for exactly N steps, alternating with the time rule")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps {args.reps}: give 1 or more")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps {args.max_steps}: give 1 or more")
    sides = [None] + ([args.max_steps] if args.max_steps is not None else [])
    reps: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            order = sides if rep % 2 == 0 else sides[::-1]
            runs = []
            for max_steps in order:
                folder = Path(tmp) / f"rep{rep}-{side_name(max_steps).replace(' ', '-')}"
                for record in run_side(args, max_steps, folder):
                    runs.append({"side": side_name(max_steps), "task": record["task"], "model": record["model"],
                                 "throughput": record["throughput"]["value"], "steps": record["speed"]["steps"],
                                 "train_time_s": record["train_time_s"],
                                 "other_cpu_share": (record.get("host") or {}).get("other_cpu_share")})
            reps.append({"rep": rep, "order": [side_name(m) for m in order], "runs": runs})
            print(f"rep {rep + 1}/{args.reps}: " + ", ".join(
                f"{r['side']} {r['model']} {r['throughput']:,.1f}" for r in runs), flush=True)
    rows = summary(reps)
    shares = [r["other_cpu_share"] for rep in reps for r in rep["runs"] if r["other_cpu_share"] is not None]
    for row in rows:
        print(f"{row['side']:>10}  {row['task']}/{row['model']}: median {row['median']:,.1f} samples/s over "
              f"{row['reps']} reps, {row['spread_kind']} {row['low']:,.1f}..{row['high']:,.1f}, "
              f"{row['precision']:.1%} of the median")
    print(f"others' CPU share: at most {max(shares):.3f}" if shares else "others' CPU share: not recorded")
    if args.out:
        atomic_write_text(args.out, json.dumps({"reps": reps, "summary": rows,
                                                "max_other_cpu_share": max(shares, default=None)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "speed_spread"))
