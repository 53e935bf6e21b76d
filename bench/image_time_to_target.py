"""Does the harness's recipe reach the quick image target sooner than a plain loop?

Issue #2's reference: a plain PyTorch loop (small CNN, AdamW, batch 256) reaches
0.90 Fashion-MNIST test accuracy after about 40 s on 2 CPU cores. This script
races that loop against `image_classification` (default model `cnn`, its quick
recipe, run by the harness) on the same data tensors, in the same process,
alternating which goes first. Both are timed the same way: training time
until the first evaluation that meets the target, evaluations not counted, and
both evaluate test accuracy 8 times per epoch.

The plain side trains the same small CNN (the task's `cnn` model, built with
the same seed) the way a plain loop does: AdamW at its default learning rate,
no weight decay, a constant schedule, plain cross-entropy, batches cut from
in-memory tensors (no DataLoader workers to slow it down). So the speed-up is
what the harness's recipe buys, net of whatever the harness costs. Prints each
side's time-to-target and the speed-up plain / harness (> 1: the harness's
recipe gets there sooner).

    python bench/image_time_to_target.py [--reps 2] [--model cnn] [--max-epochs 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from suite.running.config import SuiteOptions  # noqa: E402
from suite.taskapi.data import data_dir  # noqa: E402
from suite.running.device import seed_everything  # noqa: E402
from suite.running.runner import run_one  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402
from tasks.image_classification import ImageClassification  # noqa: E402

TARGET = ImageClassification.profiles["quick"].target.value
EVAL_EVERY = ImageClassification.profiles["quick"].budget.eval_every  # training samples, as the harness


def accuracy(task: ImageClassification, net: nn.Module, val) -> float:
    """Validation accuracy by the task's own evaluation, as the harness computes it."""
    net.eval()
    with torch.no_grad():
        acc = task.evaluate(net, val)["accuracy"]
    net.train()
    return acc


def plain_time_to_target(model: str, max_epochs: int, seed: int) -> tuple[float | None, float]:
    """Train-time seconds until validation accuracy >= TARGET (None if never), and the last accuracy."""
    task = ImageClassification(ImageClassification.spec_for("quick", model), data_dir())
    train, val = task.load("train"), task.load("val")
    x, y = train.tensors["x"], train.tensors["y"]
    generator = seed_everything(seed, torch.device("cpu"))
    net = task.build_model()  # built after seeding, as the harness does
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    batch, steps_per_epoch = 256, len(x) // 256
    eval_every = max(1, round(EVAL_EVERY / batch))
    train_s, acc = 0.0, 0.0
    for _epoch in range(max_epochs):
        order = torch.randperm(len(x), generator=generator)
        for step in range(steps_per_epoch):
            start = time.perf_counter()
            idx = order[step * batch:(step + 1) * batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            train_s += time.perf_counter() - start
            if (step + 1) % eval_every == 0:
                acc = accuracy(task, net, val)
                if acc >= TARGET:
                    return train_s, acc
    return None, acc


def harness_time_to_target(model: str, seed: int, results: Path) -> tuple[float | None, float]:
    opts = SuiteOptions(profile="quick", device="cpu", results=results)
    record = run_one(ImageClassification, model, seed, opts, log=lambda _m: None)
    if record["status"] != "ok":
        raise SystemExit(f"harness run {record['status']}: {record['error']}")
    return record["time_to_target_s"], record["final_metrics"]["val/accuracy"]


def show(name: str, seconds: float | None, acc: float) -> str:
    reached = f"{seconds:7.1f} s" if seconds is not None else "  never "
    return f"{name} {reached} (validation accuracy {acc:.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", default="cnn", choices=tuple(ImageClassification.models))
    parser.add_argument("--reps", type=int, default=2, help="races, each with its own seed")
    parser.add_argument("--max-epochs", type=int, default=5, help="the plain loop's budget")
    args = parser.parse_args()
    print(f"time to test accuracy {TARGET} on Fashion-MNIST, CPU, {torch.get_num_threads()} threads; "
          f"harness: image_classification/{args.model} quick recipe; plain: same model, AdamW lr 1e-3, batch 256")
    speedups = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            # Alternate which goes first, so drift in machine load does not favour one side.
            sides = [("plain", lambda: plain_time_to_target(args.model, args.max_epochs, rep)),
                     ("harness", lambda: harness_time_to_target(args.model, rep, Path(tmp) / str(rep)))]
            got = dict((name, run()) for name, run in (sides if rep % 2 == 0 else sides[::-1]))
            (plain_s, plain_acc), (harness_s, harness_acc) = got["plain"], got["harness"]
            line = f"seed {rep}: {show('plain', plain_s, plain_acc)}   {show('harness', harness_s, harness_acc)}"
            if plain_s and harness_s:
                speedups.append(plain_s / harness_s)
                line += f"   speed-up {plain_s / harness_s:.2f}"
            print(line, flush=True)
    if speedups:
        print(f"median speed-up plain/harness: {statistics.median(speedups):.2f} (> 1: the harness recipe is faster)")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "image_time_to_target"))
