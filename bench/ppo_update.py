"""PPO's learner update alone: `suite.training.rl.ppo.update` on one rollout, per precision, in one run.

Times atari_rl's quick-recipe update (its epochs of minibatches over one rollout of its size,
num_envs x num_steps, of random MinAtar Breakout observations, the ppo_cnn agent, fused Adam;
a 1,024-step rollout of 2 minibatches before 2026-11-27, 2,048 of 4 since) in each precision,
one after the other, `--reps` times `--calls` updates each: median and spread (min..max)
in milliseconds per update, and each precision's ratio to the first. `--compile` adds the
same with the loss under `torch.compile` (its first call, the compile, timed apart).
The host's load is reported (`suite.measuring.contention`: others' share of the CPU meanwhile).
`--ops` then prints where each precision's update spends its time: torch.profiler's table of the
operators with the most self time over `--calls` updates (the profiler's own overhead included).

    python bench/ppo_update.py --precisions fp32,bf16 --threads 2 --reps 5
    python bench/ppo_update.py --precisions bf16 --reps 3 --ops 12
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.running.allocator import keep_freed_memory  # noqa: E402
from suite.measuring.contention import HostLoad  # noqa: E402
from suite.training.rl import ppo  # noqa: E402
from suite.training.rl.envs import make  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402
from tasks.atari_rl import MINATAR, QUICK_PPO, AtariRL  # noqa: E402


def agent_and_rollout(seed: int) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """atari_rl's quick ppo_cnn agent, as the task builds it for MinAtar Breakout, and a rollout's worth
    of update inputs: sparse random observations of the env's shape, actions, old log-probs,
    advantages, returns, values."""
    env = make(MINATAR)
    obs_space, action_space = env.observation_space, env.action_space
    env.close()
    torch.manual_seed(seed)
    agent = AtariRL(AtariRL.spec_for("quick", "ppo_cnn"), Path(".")).build_agent(obs_space, action_space)
    g = torch.Generator().manual_seed(seed)
    n = QUICK_PPO.num_envs * QUICK_PPO.num_steps
    obs = torch.rand(n, *obs_space.shape, generator=g) < 0.1  # MinAtar: sparse boolean channels
    return agent, (obs, torch.randint(0, int(action_space.n), (n,), generator=g), -torch.rand(n, generator=g),
                   torch.randn(n, generator=g), torch.randn(n, generator=g), torch.randn(n, generator=g))


def one_update(precision: str):
    """A call that runs one update of a fresh quick agent (fused Adam) on its rollout, in `precision`."""
    model, batch = agent_and_rollout(0)
    optimizer = ppo.make_optimizer(model, QUICK_PPO, torch.device("cpu"))
    return lambda: ppo.update(model, optimizer, QUICK_PPO, *batch, precision=precision)


def time_updates(precision: str, reps: int, calls: int, compiled: bool) -> dict:
    update = one_update(precision)
    loss_fn = ppo.ppo_loss
    first_s = None
    if compiled:
        ppo.ppo_loss = torch.compile(loss_fn)
    try:
        began = time.perf_counter()
        update()
        first_s = time.perf_counter() - began
        for _ in range(3):
            update()
        times = []
        with HostLoad() as load:
            for _ in range(reps):
                began = time.perf_counter()
                for _ in range(calls):
                    update()
                times.append((time.perf_counter() - began) / calls * 1e3)
    finally:
        ppo.ppo_loss = loss_fn
    return {"ms": times, "first_s": first_s, "other_cpu_share": load.summary()["other_cpu_share"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated, of fp32, bf16")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per precision")
    parser.add_argument("--calls", type=int, default=20, help="updates per repetition")
    parser.add_argument("--compile", action="store_true", help="also time each precision with the loss compiled")
    parser.add_argument("--ops", type=int, default=0, metavar="N",
                        help="then print each precision's N operators with the most self time (torch.profiler)")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    for p in precisions:
        if p not in ("fp32", "bf16"):
            parser.error(f"--precisions: unknown precision {p!r} (use fp32, bf16)")
    torch.set_num_threads(args.threads)
    malloc = keep_freed_memory()  # as in a dlbench run
    print(f"PPO update, atari_rl quick recipe ({QUICK_PPO.num_envs}x{QUICK_PPO.num_steps} steps, "
          f"{QUICK_PPO.update_epochs} epochs x {QUICK_PPO.num_minibatches} minibatches), {args.threads} threads, "
          f"torch {torch.__version__}; malloc: {malloc}")
    base = None
    for compiled in (False, True) if args.compile else (False,):
        for precision in precisions:
            r = time_updates(precision, args.reps, args.calls, compiled)
            median = statistics.median(r["ms"])
            base = base or median
            label = precision + (" compiled" if compiled else "")
            extra = f", first call (compile) {r['first_s']:.1f} s" if compiled else ""
            print(f"{label:14s} {median:7.2f} ms per update ({min(r['ms']):.2f}..{max(r['ms']):.2f}), "
                  f"{base / median:4.2f}x the first{extra}; others' CPU share {r['other_cpu_share']:.2f}")
    for precision in precisions if args.ops else ():
        print(f"\n{precision}: operators by self time over {args.calls} updates (torch.profiler)")
        print(operator_table(precision, args.calls, args.ops))


def operator_table(precision: str, calls: int, rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    update = one_update(precision)
    for _ in range(3):  # warm: oneDNN primitives made, allocator settled
        update()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            update()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "ppo_update"))
