"""How much does the harness cost? Harness vs a minimal hand-written PyTorch loop.

Both train the same model (image_classification / cnn by default) on the
same data tensors, with the same optimizer, schedule, batch size and number
of steps, in the same process, alternating, several repetitions. The
harness's figure is its recorded throughput (train time only: its warm-up
and evaluation are timed apart); the plain loop gets the same warm-up steps
untimed. Prints both throughputs per repetition and the median ratio
harness / plain with its spread (max - min over the median) (goal: >= 0.97, spread under 5%).

On CUDA both sides keep the data on the GPU and use the same precision (bf16
autocast under `auto`); the plain loop synchronises before its clock stops.
Both sides use the memory layout the harness picks (channels_last on CUDA, and
on a CPU where the recipe declares `cpu_channels_last`), so the ratio is what
the harness's bookkeeping costs. A step of the quick cnn takes about 40 ms on a 2-core CPU and
under 2 ms on an H100/H200, so the default run length is per device (120 steps on a CPU, 2,000 on
CUDA: seconds of training either way), and CUDA takes 5 repetitions: at 120 steps a GPU run lasts
0.2 s and the ratio swings by 20% from rep to rep (docs/results-h200.md).

    python bench/harness_overhead.py [--device cpu|cuda] [--precision auto|bf16|fp32]
                                     [--profile quick|smoke] [--model cnn] [--steps N] [--reps N]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from suite.running.config import SuiteOptions  # noqa: E402
from suite.taskapi.data import data_dir  # noqa: E402
from suite.running.device import (autocast, resolve_device, resolve_precision, seed_everything, synchronize,  # noqa: E402
                                 use_channels_last)
from suite.training.loop import WARMUP_STEPS  # noqa: E402
from suite.training.optim import build_optimizer, build_scheduler  # noqa: E402
from suite.running.runner import run_one  # noqa: E402
from suite.taskapi.spec import Budget, Target  # noqa: E402
from tasks.image_classification import ImageClassification  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick"))
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default: 120 CPU, 2000 CUDA)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default: 3 CPU, 5 CUDA)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    args.steps = args.steps or (2000 if on_gpu else 120)
    args.reps = args.reps or (5 if on_gpu else 3)
    task_cls = fixed_steps_variant(args.profile, args.steps)
    precision = resolve_precision(args.precision, device)
    ratios = []
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"image_classification/{args.model} on {args.profile}, {args.steps} steps, {where}, {precision}")
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            # Alternate which goes first, so drift in machine load does not favour one side.
            if rep % 2 == 0:
                harness = harness_throughput(task_cls, args.model, args.profile, Path(tmp), str(device), precision)
                plain = plain_throughput(task_cls, args.model, args.profile, args.steps, device, precision)
            else:
                plain = plain_throughput(task_cls, args.model, args.profile, args.steps, device, precision)
                harness = harness_throughput(task_cls, args.model, args.profile, Path(tmp), str(device), precision)
            ratios.append(harness / plain)
            print(f"rep {rep}: harness {harness:9.1f} samples/s   plain {plain:9.1f} samples/s   "
                  f"ratio {harness / plain:.3f}")
    median = statistics.median(ratios)
    spread = (max(ratios) - min(ratios)) / median
    print(f"median ratio harness/plain: {median:.3f} (goal >= 0.97), spread {spread:.1%} over {len(ratios)} reps "
          f"({'under' if spread < 0.05 else 'NOT under'} 5%: {'a' if spread < 0.05 else 'no'} meaningful figure)")


if __name__ == "__main__":
    main()
