"""Eager against CUDA-graph-captured training steps (`--cuda-graphs`), on one GPU, in one run.

For ds_cnn and resnet (keyword_spotting), bilstm and tiny_bert (sentiment), cnn (image_classification)
and the PPO learner (atari_rl's ppo_cnn): the speed profile's model, recipe and synthetic batches
(a pool of 8 per model: sentiment's lengths as bucketed batches hold them), the trainer's own step
(`suite.training.loop.make_train_step` with its learning-rate schedule, `suite.training.rl.ppo.make_update_step`),
run eager and captured (`suite.training.graphs.CapturedStep`: one graph per batch shape, per
batch for the BiLSTM) side by side, in bf16 autocast by default. Graphs are captured and cuDNN
tuned in an untimed warm-up that passes once over the pool (its time is reported as `warmup_s`).
Each rep then times `--steps` steps of each mode, the two interleaved, between CUDA events;
`--reps` reps give the median and range of samples/s, and the speed-up is the ratio of medians.
A table is printed and a JSON file written.

    python bench/cuda_graphs.py --out results/cuda_graphs.json

Needs only torch and this checkout (put on sys.path here); tiny_bert needs transformers and the
PPO learner gymnasium (ALE itself is not needed: without it the learner takes Breakout's
preprocessed shapes, 4x84x84 frames and 4 actions). A model that cannot be built or captured is
reported with the reason, not measured. `--budget-s` stops before a model that would start past
it (the whole run stays under two minutes on an H100 or H200). On a CPU: one line, exit 2.
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = [("keyword_spotting", "ds_cnn"), ("keyword_spotting", "resnet"), ("sentiment", "bilstm"),
         ("sentiment", "tiny_bert"), ("image_classification", "cnn"), ("atari_rl", "ppo_cnn")]
TASK_CLASSES = {"keyword_spotting": ("tasks.keyword_spotting", "KeywordSpotting"),
                "sentiment": ("tasks.sentiment", "Sentiment"),
                "image_classification": ("tasks.image_classification", "ImageClassification"),
                "atari_rl": ("tasks.atari_rl", "AtariRL")}
POOL = 8  # the speed profile's pool of synthetic batches on CUDA (suite.measuring.speed.STEPS)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--out", type=Path, default=Path("cuda_graphs.json"), help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N (graphs need CUDA)")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per rep and mode")
    parser.add_argument("--models", default=",".join(m for _, m in CASES),
                        help="comma-separated models of: " + ", ".join(m for _, m in CASES))
    parser.add_argument("--budget-s", type=float, default=90.0,
                        help="start no model after this many seconds since the script started")
    return parser.parse_args(argv)


def task_of(name: str, model: str):
    """The task `name` on its speed profile with `model` (its module imported directly: no install needed)."""
    module, cls_name = TASK_CLASSES[name]
    cls = getattr(importlib.import_module(module), cls_name)
    return cls(cls.spec_for("speed", model), ROOT)


def supervised_case(task, device, precision: str, batch_size: int | None = None):
    """(pool of batches, make(captured) -> step, samples of a batch) of a supervised task's speed run."""
    import torch

    from suite.running.context import RunContext
    from suite.running.device import use_channels_last
    from suite.training import graphs
    from suite.training.loop import make_train_step
    from suite.training.optim import build_optimizer, build_scheduler

    recipe = task.spec.recipe
    channels_last = use_channels_last(device, recipe.cpu_channels_last)
    generator = torch.Generator(device=device).manual_seed(0)
    pool = []
    for _ in range(POOL):
        batch = task.synthetic_batch(batch_size or recipe.batch_size, device, generator)
        pool.append({k: v.contiguous(memory_format=torch.channels_last) if channels_last and v.dim() == 4
                     and v.is_floating_point() else v for k, v in batch.items()})
    ctx = RunContext(device=device, precision=precision, compile=False, generator=torch.Generator(), seed=0)

    def make(captured: bool):
        torch.manual_seed(0)  # both modes start from the same weights (built afresh: an LSTM's stay flattened)
        model = task.build_model().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, recipe, capturable=captured)
        scheduler = build_scheduler(optimizer, recipe, 10_000)
        step = make_train_step(task, model, model, optimizer, recipe, ctx)
        if captured:
            step = graphs.CapturedStep(step, model, optimizer, repeating=True)

        def train(batch):
            loss = step(batch)
            scheduler.step()
            return loss
        return train, step
    return pool, make, task.batch_size


def ppo_case(task, device, precision: str, batch_size: int | None = None):
    """The same for the PPO learner: minibatches of random observations, PPO's gradient step."""
    import gymnasium as gym
    import numpy as np
    import torch

    from suite.measuring.speed import ppo_minibatch
    from suite.training import graphs
    from suite.training.rl import ppo

    cfg = task.spec.recipe.algo
    try:
        env = task.make_env(False)
        obs_space, action_space = env.observation_space, env.action_space
        env.close()
    except Exception:  # noqa: BLE001 - no ALE here: Breakout's preprocessed shapes (the task's wrappers)
        obs_space, action_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(4)
    size = batch_size or cfg.num_envs * cfg.num_steps // cfg.num_minibatches
    generator = torch.Generator(device=device).manual_seed(0)
    pool = [ppo_minibatch(obs_space, int(action_space.n), size, device, generator) for _ in range(POOL)]

    def make(captured: bool):
        torch.manual_seed(0)
        model = task.build_agent(obs_space, action_space).to(device)
        optimizer = ppo.make_optimizer(model, cfg, device, capturable=captured)
        step = ppo.make_update_step(model, optimizer, cfg, device, precision)
        if captured:
            step = graphs.CapturedStep(step, model, optimizer, repeating=True)
        return step, step
    return pool, make, lambda batch: len(batch["actions"])


def rate(train, pool, steps: int, samples_of, device) -> float:
    """Samples per second of `steps` steps cycling through `pool`: CUDA events around them on a GPU."""
    import torch

    cuda = device.type == "cuda"
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
    began = time.perf_counter()
    samples = 0
    for i in range(steps):
        train(pool[i % len(pool)])
        samples += samples_of(pool[i % len(pool)])
    if cuda:
        end.record()
        end.synchronize()
        return samples / (start.elapsed_time(end) / 1000.0)
    return samples / (time.perf_counter() - began)


def measure(name: str, model: str, device, precision: str, reps: int, steps: int,
            batch_size: int | None = None) -> dict:
    """One model's row: eager and captured samples/s (median, range, each rep), speed-up, graphs, warm-up."""
    import torch

    from suite.training import graphs

    task = task_of(name, model)
    build = ppo_case if name == "atari_rl" else supervised_case
    pool, make, samples_of = build(task, device, precision, batch_size)
    modes = {"eager": make(False), "captured": make(True)}
    row: dict = {"task": name, "model": model, "batch_size": samples_of(pool[0]), "pool": len(pool)}
    for mode, (train, _) in list(modes.items()):  # cuDNN tuning, and every graph captured, before any timing
        began = time.perf_counter()
        try:
            for batch in pool:
                train(batch)
        except graphs.Uncapturable as exc:  # the eager figure still stands; the reason is the row's
            row["captured_error"] = str(exc)
            del modes[mode]
            continue
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        row[f"{mode}_warmup_s"] = round(time.perf_counter() - began, 3)
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(reps):
        for mode, (train, _) in modes.items():
            rates[mode].append(rate(train, pool, steps, samples_of, device))
    for mode, values in rates.items():
        row[mode] = {"samples_per_s": round(statistics.median(values), 1), "min": round(min(values), 1),
                     "max": round(max(values), 1), "reps": [round(v, 1) for v in values]}
    if "captured" in modes:
        row["speedup"] = round(row["captured"]["samples_per_s"] / row["eager"]["samples_per_s"], 3)
        row["graphs"] = len(modes["captured"][1].graphs)
    return row


def table(rows: list[dict]) -> str:
    head = f"{'task / model':32} {'eager samples/s [range]':>28} {'captured samples/s [range]':>28} {'x':>6} graphs"
    lines = [head, "-" * len(head)]
    for r in rows:
        label = f"{r['task']} / {r['model']}"
        if "error" in r:
            lines.append(f"{label:32} not measured: {r['error']}")
            continue
        cells = [f"{r[m]['samples_per_s']:,.0f} [{r[m]['min']:,.0f}-{r[m]['max']:,.0f}]" if m in r else "-"
                 for m in ("eager", "captured")]
        tail = (f"{r['speedup']:>6.2f} {r['graphs']:>6}" if "captured" in r
                else f"{'-':>6} {'-':>6}  {r.get('captured_error', '')}")
        lines.append(f"{label:32} {cells[0]:>28} {cells[1]:>28} {tail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.device.startswith("cuda"):
        print(f"bench/cuda_graphs.py: CUDA graphs need a CUDA device; --device {args.device} has none to "
              "capture on", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print("bench/cuda_graphs.py: CUDA graphs need a CUDA device; torch sees none on this machine",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from suite.running.device import seed_everything

    device = torch.device(args.device)
    torch.cuda.set_device(torch.device(device).index or 0)
    seed_everything(0, device)  # the harness's CUDA settings: cuDNN autotuning, TF32
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    for name, model in [(n, m) for n, m in CASES if m in wanted]:
        if time.perf_counter() - STARTED > args.budget_s:
            rows.append({"task": name, "model": model, "error": f"over the {args.budget_s:g} s budget"})
            continue
        try:
            rows.append(measure(name, model, device, args.precision, args.reps, args.steps))
        except Exception as exc:  # noqa: BLE001 - one model's failure is its row's, not the run's
            text = str(exc).strip().splitlines()
            rows.append({"task": name, "model": model, "error": f"{type(exc).__name__}: {text[0] if text else ''}"})
        torch.cuda.empty_cache()
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    out = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "precision": args.precision,
           "reps": args.reps, "steps": args.steps, "results": rows,
           "wall_s": round(time.perf_counter() - STARTED, 1)}
    print()
    print(table(rows))
    print(f"{out['device']}, torch {out['torch']}, {args.precision}; {args.reps} reps of {args.steps} steps per mode; "
          f"{out['wall_s']} s in all")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
