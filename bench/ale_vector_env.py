"""Env steps/s of ale-py's vector env against gymnasium's AsyncVectorEnv, both with the reference preprocessing.

Both sides step the atari_rl full profile's training environments (Breakout, frame skip 4,
max-pool, 84x84 grey, 4-frame stack, up to 30 no-op starts, life-loss episodes, clipped rewards)
with the same number of sub-envs and the same pre-drawn random actions: gymnasium's wrapper stack
(`tasks.atari_rl.atari_env`) in an AsyncVectorEnv (one process per env, same-step autoreset, as
the harness builds it), and `suite.training.rl.ale_vector` (ale-py's C++ threads). Building the envs, the
reset and the first step are not timed. Sides alternate which goes first in each rep; the
ratio is ale / gymnasium per rep, then its median. The host's load average is printed before
and after, since other jobs on the machine move both figures. Beside steps per second of wall
time, steps per CPU second (user + system time of the stepping processes, every gymnasium
worker and ale-py's threads included) shows the cost of a step on a machine other jobs share,
where a side's wall-clock rate follows how many runnable threads it has (gymnasium: one
process per env; ale-py: its thread pool) more than how fast it steps.

    python bench/ale_vector_env.py --num-envs 8 --steps 2000 --reps 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.training.rl.ale_vector import make_ale_vector_env  # noqa: E402
from suite.results.stats import median_range  # noqa: E402
from suite.training.rl.envs import make_vector_env  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402
from tasks.atari_rl import ALE, atari_env  # noqa: E402


def build(side: str, num_envs: int, threads: int):
    if side == "ale":
        return make_ale_vector_env(ALE, num_envs, evaluation=False, num_threads=threads)
    return make_vector_env(lambda evaluation: atari_env(ALE, evaluation), num_envs, asynchronous=True)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes, all their threads included (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def steps_per_s(side: str, num_envs: int, steps: int, threads: int, seed: int) -> tuple[float, float]:
    """(env steps per second of wall time, env steps per CPU second of every process that steps them)."""
    envs = build(side, num_envs, threads)
    try:
        actions = np.random.default_rng(seed).integers(0, envs.single_action_space.n, (steps + 1, num_envs))
        envs.reset(seed=seed)
        envs.step(actions[0])  # processes / threads started, buffers allocated
        pids = [os.getpid()] + [p.pid for p in getattr(envs, "processes", [])]  # gymnasium: one process per env
        cpu, began = cpu_seconds(pids), time.perf_counter()
        for action in actions[1:]:
            envs.step(action)
        wall, cpu = time.perf_counter() - began, cpu_seconds(pids) - cpu
        return steps * num_envs / wall, steps * num_envs / max(cpu, 1e-9)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--num-envs", type=int, default=8, help="sub-environments on each side")
    parser.add_argument("--steps", type=int, default=2000, help="vector steps timed per side and rep")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (sides alternate which goes first)")
    parser.add_argument("--threads", type=int, default=0, help="ale-py's worker threads (0: one per core)")
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} cores, load average before {os.getloadavg()}")
    rates: dict[str, list[float]] = {"gymnasium": [], "ale": []}
    per_cpu: dict[str, list[float]] = {"gymnasium": [], "ale": []}
    for rep in range(args.reps):
        order = ("gymnasium", "ale") if rep % 2 == 0 else ("ale", "gymnasium")
        for side in order:
            rate, cpu_rate = steps_per_s(side, args.num_envs, args.steps, args.threads, seed=rep)
            rates[side].append(rate)
            per_cpu[side].append(cpu_rate)
        print(f"rep {rep}: gymnasium {rates['gymnasium'][-1]:8,.0f}  ale {rates['ale'][-1]:8,.0f} env steps/s "
              f"(ratio {rates['ale'][-1] / rates['gymnasium'][-1]:.2f}); per CPU second gymnasium "
              f"{per_cpu['gymnasium'][-1]:,.0f}  ale {per_cpu['ale'][-1]:,.0f}  (ratio "
              f"{per_cpu['ale'][-1] / per_cpu['gymnasium'][-1]:.2f})")
    print(f"{ALE}, training wrappers, {args.num_envs} envs, {args.steps} vector steps per side and rep")
    for name, figures in (("env steps/s", rates), ("env steps per CPU second", per_cpu)):
        ratios = [a / g for a, g in zip(figures["ale"], figures["gymnasium"])]
        print(f"{name}:")
        print(f"  gymnasium AsyncVectorEnv:  {median_range(figures['gymnasium'], ',.0f')}")
        print(f"  ale-py AtariVectorEnv:     {median_range(figures['ale'], ',.0f')}")
        print(f"  ratio ale / gymnasium:     {median_range(ratios)}")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "ale_vector_env"))
