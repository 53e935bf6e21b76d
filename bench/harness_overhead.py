"""How much does the harness cost? Harness vs a minimal hand-written PyTorch loop.

Both train the same model (image_classification / cnn by default) on the
same data tensors, with the same optimizer, schedule, batch size and number
of steps, in the same process, alternating, several repetitions. The
harness's figure is its recorded throughput (train time only: its warm-up
and evaluation are timed apart); the plain loop gets the same warm-up steps
untimed.

The figure is the median of the per-rep ratios harness / plain (goal: >= 0.97), with its 95%
percentile bootstrap interval (`suite.results.stats.spread`, from 5 reps on; fewer give the
range). Its precision ("spread") is that interval's width over the median, goal under 5%: the
interval says how well the median is known, where the range of single reps says how noisy one
rep is (on a 2-core VM consecutive 5-s runs differ by up to 10%, idle) and only widens with
more reps. One untimed pair runs first (`--warmup-reps`): the first run in a process pays for
the allocator's first growth and the kernel libraries' caches (cuDNN autotuning, oneDNN
primitives), which read 7-22% slow on a CPU and an H200 (docs/results-cpu.md).

On CUDA both sides keep the data on the GPU and use the same precision (bf16
autocast under `auto`); the plain loop synchronises before its clock stops.
Both sides use the memory layout the harness picks (channels_last on CUDA, and
on a CPU where the recipe declares `cpu_channels_last`), so the ratio is what
the harness's bookkeeping costs. A step of the quick cnn takes about 40 ms on a 2-core CPU and
under 2 ms on an H100/H200, so the default run length is per device (120 steps on a CPU, 1,000 on
CUDA: seconds of training either way), and CUDA takes 7 repetitions: at 120 steps a GPU run lasts
0.2 s and the ratio swings by 20% from rep to rep (docs/results-h200.md). `--out FILE` writes
the reps and the summary as JSON.

    python bench/harness_overhead.py [--device cpu|cuda] [--precision auto|bf16|fp32]
                                     [--profile quick|smoke] [--model cnn] [--steps N] [--reps N]
                                     [--warmup-reps N] [--out FILE]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from suite.measuring.contention import HostLoad  # noqa: E402
from suite.results import stats  # noqa: E402
from suite.results.safe_io import atomic_write_text  # noqa: E402
from suite.running.config import SuiteOptions  # noqa: E402
from suite.taskapi.data import data_dir  # noqa: E402
from suite.running.device import (autocast, resolve_device, resolve_precision, seed_everything, synchronize,  # noqa: E402
                                 use_channels_last)
from suite.training.loop import WARMUP_STEPS  # noqa: E402
from suite.training.optim import build_optimizer, build_scheduler  # noqa: E402
from suite.running.runner import run_one  # noqa: E402
from suite.taskapi.spec import Budget, Target  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402
from tasks.image_classification import ImageClassification  # noqa: E402

GOAL = 0.97  # the harness keeps at least 97% of a plain loop's throughput
PRECISE = stats.PRECISE  # the figure means something when its spread is under 5% of it


def fixed_steps_variant(profile: str, steps: int) -> type[ImageClassification]:
    """The task with one eval at the end and a target never met, so every run does `steps` steps."""
    prof = ImageClassification.profiles[profile]
    batch = prof.recipes["cnn"].batch_size  # one evaluation, after the last step
    prof = dataclasses.replace(prof, budget=Budget(max_steps=steps, max_time_s=3600, eval_every=steps * batch),
                               target=Target(prof.target.metric, 2.0, True, "unreachable: fixed-step bench"),
                               recipes={m: dataclasses.replace(r, budget=None) for m, r in prof.recipes.items()})
    return type("FixedSteps", (ImageClassification,), {"profiles": {**ImageClassification.profiles, profile: prof}})


def harness_throughput(task_cls, model: str, profile: str, results: Path, device: str, precision: str) -> float:
    opts = SuiteOptions(profile=profile, device=device, precision=precision, results=results)
    record = run_one(task_cls, model, 0, opts, log=lambda _m: None)
    if record["status"] != "ok":
        raise SystemExit(f"harness run {record['status']}: {record['error']}")
    return record["throughput"]["value"]


def plain_throughput(task_cls, model: str, profile: str, steps: int, device: torch.device, precision: str) -> float:
    """The loop a user would write by hand: nothing but forward, backward, step."""
    spec = task_cls.spec_for(profile, model)
    task = task_cls(spec, data_dir())
    generator = seed_everything(0, device)
    train = task.load("train")
    x, y = train.tensors["x"].to(device), train.tensors["y"].to(device)
    net = task.build_model().to(device)
    if use_channels_last(device, spec.recipe.cpu_channels_last):  # the harness's layout (suite.training.loop)
        x, net = x.contiguous(memory_format=torch.channels_last), net.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(net, spec.recipe)
    scheduler = build_scheduler(optimizer, spec.recipe, steps)
    bs = spec.recipe.batch_size

    def step(idx):
        with autocast(device, precision):
            loss = task.loss(net, {"x": x[idx], "y": y[idx]})
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(WARMUP_STEPS):
        step(torch.arange(bs, device=device))
    order = torch.randperm(len(x), generator=generator).to(device)
    synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        begin = (i * bs) % (len(x) - bs + 1)
        step(order[begin:begin + bs])
        scheduler.step()
    synchronize(device)
    return steps * bs / (time.perf_counter() - start)


def summary(ratios: list[float]) -> dict:
    """The figure of per-rep ratios harness / plain: median, range, its spread (`stats.spread`: the 95%
    bootstrap interval of the median from `stats.MIN_FOR_CI` reps on, else the range) and that spread's
    width over the median (`precision`), with the two verdicts: precise (under 5%) and the goal (>= 0.97)."""
    figure = stats.precision(ratios)
    return {**figure, "meets_goal": figure["median"] >= GOAL}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick"))
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default: 120 CPU, 1000 CUDA)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default: 5 CPU, 7 CUDA)")
    parser.add_argument("--warmup-reps", type=int, default=1, help="untimed pairs run first (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="write the reps and the summary here as JSON")
    args = parser.parse_args()
    for name in ("steps", "reps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: give 1 or more")
    if args.warmup_reps < 0:
        parser.error(f"--warmup-reps {args.warmup_reps}: give 0 or more")
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    args.steps = args.steps or (1000 if on_gpu else 120)
    args.reps = args.reps or (7 if on_gpu else 5)
    task_cls = fixed_steps_variant(args.profile, args.steps)
    precision = resolve_precision(args.precision, device)
    reps: list[dict] = []
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"image_classification/{args.model} on {args.profile}, {args.steps} steps, {where}, {precision}; "
          f"{args.warmup_reps} untimed + {args.reps} timed reps")
    with tempfile.TemporaryDirectory() as tmp, HostLoad() as load:
        measure = {"harness": lambda: harness_throughput(task_cls, args.model, args.profile, Path(tmp), str(device),
                                                         precision),
                   "plain": lambda: plain_throughput(task_cls, args.model, args.profile, args.steps, device, precision)}
        for rep in range(args.warmup_reps + args.reps):
            # Alternate which goes first, so drift in machine load does not favour one side.
            order = ("harness", "plain") if rep % 2 == 0 else ("plain", "harness")
            sides = {side: measure[side]() for side in order}
            warmup = rep < args.warmup_reps
            ratio = sides["harness"] / sides["plain"]
            if not warmup:
                reps.append({**sides, "ratio": ratio})
            print(f"{'warm-up' if warmup else 'rep ' + str(rep - args.warmup_reps)}: harness {sides['harness']:9.1f} "
                  f"samples/s   plain {sides['plain']:9.1f} samples/s   ratio {ratio:.3f}"
                  + ("   (not counted)" if warmup else ""))
    result, host = summary([r["ratio"] for r in reps]), load.summary()
    print(f"median ratio harness/plain: {result['median']:.3f} (goal >= {GOAL}: "
          f"{'met' if result['meets_goal'] else 'NOT met'}); reps {result['min']:.3f}..{result['max']:.3f}; "
          f"{result['spread_kind']} {result['low']:.3f}..{result['high']:.3f}, {result['precision']:.1%} of the median "
          f"({'under' if result['precise'] else 'NOT under'} {PRECISE:.0%}: "
          f"{'a' if result['precise'] else 'no'} meaningful figure); others' CPU share {host['other_cpu_share']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps({
            "device": where, "profile": args.profile, "model": args.model, "precision": precision,
            "steps": args.steps, "warmup_reps": args.warmup_reps, "reps": reps, "summary": result,
            "host": host}, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "harness_overhead"))
