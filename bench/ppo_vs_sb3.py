"""dlbench's PPO against Stable-Baselines3's PPO on MinAtar Breakout, in one process.

Issue #16's configuration: SB3 PPO (MlpPolicy, 8 envs, n_steps 128, batch 256, 4 epochs,
SB3's other defaults, CPU, 2 torch threads) against dlbench's PPO at the atari_rl quick
recipe (its own env count, rollout, epochs and torch threads). Both train on
`MinAtar/Breakout-v1` made by `suite.training.rl.envs.make` (SB3 through its DummyVecEnv).
SB3's MlpPolicy (two 64-unit tanh layers per head) costs about a third of the FLOPs per
sample of dlbench's conv net, so that ratio mixes the implementations with the networks.
Like for like: `--recipe sb3 --sb3-network cnn` trains dlbench's MinAtar conv net on both
sides (SB3: as its features extractor, linear heads) with SB3's hyper-parameters on both;
`--recipe sb3 --dlbench-network mlp` trains SB3's MlpPolicy architecture on both (dlbench:
`SB3Mlp`, the same layers, initialisation and heads, run by dlbench's PPO).

Per repetition, the two sides run one after the other (order alternating between reps):
  steps  each trains for `--env-steps` env steps: env steps/s = steps / train wall time.
         dlbench evaluates once, at the end, and that evaluation is timed apart (its
         record's eval_time_s) and excluded; SB3 does not evaluate inside `learn`.
  wall   each trains for `--wall-s` seconds of train time (SB3: a callback stops `learn`;
         dlbench: the run's time cap, its budget the quick profile's, which sets how the
         learning rate anneals), then both policies are evaluated by the same rule,
         `suite.training.rl.evaluation.evaluate_policy` (greedy, `--eval-episodes` episodes on
         `EVAL_ENVS` evaluation envs with the task's 5,000-step cap, the run's eval seeds): eval
         return at equal wall time. dlbench's side gets that rule by running with its recipe's
         `eval_envs` and `eval_episodes` replaced (`wall_eval`): its one evaluation, at the time
         cap, is the return reported.
Both sides run with the memory allocator dlbench sets (`suite.running.allocator`: glibc keeps freed
memory; `DLBENCH_MALLOC=default` leaves glibc's defaults, for both). The host's load is
reported per side: `host.other_cpu_share` (suite.measuring.contention: the share of the machine's CPU
that other processes used meanwhile) and the 1-min load average. Medians and spreads
(min..max) over reps; the ratio is taken within each rep.

`--profile` adds a breakdown of dlbench's train time by phase (simple perf_counter
timers, `suite.measuring.timing.PhaseTimer`, switched on by `RunContext.phase_times`): store
(observations, rewards, ends into rollout storage), act (forward + sampling), env
(vector env step), gae, update; evaluation is the run's eval_time_s.

SB3 is not a dlbench dependency: install it (`pip install 'dlbench[sb3]'`, or
`pip install --target DIR stable-baselines3 --no-deps` and put DIR on PYTHONPATH).

    python bench/ppo_vs_sb3.py --reps 3 --env-steps 200000 --wall-s 60 --profile [--sb3-threads 1]
    python bench/ppo_vs_sb3.py --recipe sb3 --sb3-network cnn --wall-s 0 --profile
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.running.allocator import keep_freed_memory  # noqa: E402
from suite.measuring.contention import HostLoad  # noqa: E402
from suite.results.stats import median_range  # noqa: E402
from suite.running.context import RunContext  # noqa: E402
from suite.training.rl import train_rl  # noqa: E402
from suite.training.rl.common import EVAL_SEED_OFFSET  # noqa: E402
from suite.training.rl.envs import make, make_vector_env  # noqa: E402
from suite.training.rl.evaluation import evaluate_policy  # noqa: E402
from tasks.atari_rl import MINATAR, AtariRL  # noqa: E402
from tasks.atari_rl import QUICK_PPO  # noqa: E402
from suite.training.rl import PPOConfig  # noqa: E402
from suite.training.rl.networks import fp32_head, layer_init  # noqa: E402
from suite.errors import MissingExtraError, script_exit_code  # noqa: E402
from tasks.atari_rl import MinAtarEncoder  # noqa: E402

SB3_MISSING = "the SB3 side needs Stable-Baselines3: pip install 'dlbench[sb3]'"
QUICK_RECIPES = {"new": QUICK_PPO}  # the task's quick recipe

# dlbench's PPO at SB3's PPO defaults and the issue's sizes (8 envs x 128 steps, minibatches of 256,
# 4 epochs, constant lr 3e-4, clip 0.2, no entropy bonus, no value clipping), with the quick recipe's
# threads: with `--sb3-network cnn` both sides then train the same network the same way.
# vf_coef 1.0 is SB3's value weight (vf_coef 0.5 on `F.mse_loss`) in dlbench's loss, which is CleanRL's
# `vf_coef * 0.5 * mse`: the same 0.5 x squared error on both sides.
SB3_LIKE = PPOConfig(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, lr=3e-4, anneal_lr=False,
                     clip_coef=0.2, ent_coef=0.0, vf_coef=1.0, clip_vloss=False, eval_envs=8, eval_episodes=16,
                     act_threads=QUICK_RECIPES["new"].act_threads, torch_threads=QUICK_RECIPES["new"].torch_threads)
RECIPES = {**QUICK_RECIPES, "sb3": SB3_LIKE}
EVAL_ENVS = 8  # evaluation envs of the equal-wall comparison, both sides


def wall_eval(algo: PPOConfig, eval_episodes: int) -> PPOConfig:
    """`algo` evaluating by the equal-wall rule SB3's side is scored by: `eval_episodes` episodes on
    `EVAL_ENVS` envs (the seeds are the run's eval seeds on both sides)."""
    return dataclasses.replace(algo, eval_envs=EVAL_ENVS, eval_episodes=eval_episodes)


class SB3Mlp(torch.nn.Module):
    """SB3's MlpPolicy for PPO, layer for layer: flattened observations into separate 64-64 tanh
    networks for the policy and the value, orthogonal initialisation (gain sqrt 2, policy head 0.01,
    value head 1), heads in float32 like dlbench's own (`fp32_head`)."""

    def __init__(self, n_inputs: int, n_actions: int):
        super().__init__()

        def trunk() -> torch.nn.Sequential:
            return torch.nn.Sequential(layer_init(torch.nn.Linear(n_inputs, 64)), torch.nn.Tanh(),
                                       layer_init(torch.nn.Linear(64, 64)), torch.nn.Tanh())

        self.pi, self.vf = trunk(), trunk()
        self.actor = layer_init(torch.nn.Linear(64, n_actions), std=0.01)
        self.critic = layer_init(torch.nn.Linear(64, 1), std=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = obs.flatten(1).float()
        return fp32_head(self.actor, self.pi(x)), fp32_head(self.critic, self.vf(x)).squeeze(-1)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return fp32_head(self.actor, self.pi(obs.flatten(1).float())).argmax(-1)  # no value trunk to evaluate


class AtariRLWithSB3Mlp(AtariRL):
    """atari_rl whose PPO agent is `SB3Mlp` instead of the MinAtar conv net."""

    def build_agent(self, obs_space: gym.Space, action_space: gym.Space) -> torch.nn.Module:
        return SB3Mlp(int(np.prod(obs_space.shape)), int(action_space.n))


def dlbench_task(env_steps: int, wall_s: float, recipe: str, network: str = "cnn",
                 eval_episodes: int | None = None) -> AtariRL:
    """atari_rl quick with dlbench's side's budget and recipe; `eval_episodes` set: evaluated by `wall_eval`."""
    spec = AtariRL.spec_for("quick", "ppo_cnn")
    budget = dataclasses.replace(spec.budget, max_env_steps=env_steps, eval_every=env_steps, max_time_s=wall_s)
    algo = RECIPES[recipe] if eval_episodes is None else wall_eval(RECIPES[recipe], eval_episodes)
    spec = dataclasses.replace(spec, budget=budget, eval_every=env_steps, recipe=dataclasses.replace(spec.recipe, algo=algo))
    return (AtariRLWithSB3Mlp if network == "mlp" else AtariRL)(spec, Path("."))


def run_dlbench(env_steps: int, wall_s: float, seed: int, recipe: str, phases: dict | None = None,
                precision: str = "fp32", network: str = "cnn", eval_episodes: int | None = None) -> dict:
    """Train dlbench's PPO; its figures (train time excludes the evaluation, timed apart). `eval_episodes`
    set: the return is of that many episodes by SB3's side's rule (`wall_eval`), else the recipe's own."""
    task = dlbench_task(env_steps, wall_s, recipe, network, eval_episodes)
    torch.manual_seed(seed)
    np.random.seed(seed)
    ctx = RunContext(device=torch.device("cpu"), precision=precision, compile=False,
                     generator=torch.Generator().manual_seed(seed), seed=seed, log=lambda _m: None,
                     phase_times=phases)
    with HostLoad() as load:
        result = train_rl(task, ctx)
    return {"steps": result.samples, "train_s": result.train_time_s, "eval_s": result.eval_time_s,
            "params": result.params,
            "steps_per_s": result.samples / result.train_time_s,
            "return": result.curve[-1]["val/return"] if result.curve else float("nan"),
            "other_cpu_share": load.summary()["other_cpu_share"], "load1": os.getloadavg()[0]}


class SB3Greedy(torch.nn.Module):
    """An SB3 policy behind dlbench's evaluation interface (`greedy(obs)`)."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        actions, _ = self.policy.predict(obs.numpy(), deterministic=True)
        return torch.as_tensor(actions)


def sb3_policy(network: str) -> tuple[str, dict]:
    """SB3's policy: its MlpPolicy (the issue's), or dlbench's MinAtar conv net as the shared features
    extractor with linear policy and value heads on it (dlbench's ppo_cnn agent, layer for layer)."""
    if network == "mlp":
        return "MlpPolicy", {}
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinAtarFeatures(BaseFeaturesExtractor):
        def __init__(self, observation_space):
            encoder = MinAtarEncoder(observation_space.shape[2], observation_space.shape[0])
            super().__init__(observation_space, encoder.out_dim)
            self.encoder = encoder

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.encoder(obs)

    return "MlpPolicy", {"features_extractor_class": MinAtarFeatures, "net_arch": {"pi": [], "vf": []}}


def run_sb3(env_steps: int, wall_s: float, seed: int, threads: int, eval_episodes: int, network: str = "mlp") -> dict:
    """Train SB3's PPO for `env_steps` or `wall_s` seconds, whichever comes first."""
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError as err:
        raise MissingExtraError(SB3_MISSING) from err

    class WallClock(BaseCallback):
        def __init__(self):
            super().__init__()
            self.began = time.perf_counter()

        def _on_step(self) -> bool:
            return time.perf_counter() - self.began < wall_s

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        env = make_vec_env(lambda: make(MINATAR), n_envs=8, seed=seed)
        policy, policy_kwargs = sb3_policy(network)
        model = PPO(policy, env, n_steps=128, batch_size=256, n_epochs=4, device="cpu", seed=seed, verbose=0,
                    policy_kwargs=policy_kwargs)
        with HostLoad() as load:
            clock = WallClock()
            began = time.perf_counter()
            model.learn(total_timesteps=env_steps, callback=clock)
            train_s = time.perf_counter() - began
        steps = model.num_timesteps
        figures = {"steps": steps, "train_s": train_s, "steps_per_s": steps / train_s,
                   "other_cpu_share": load.summary()["other_cpu_share"], "load1": os.getloadavg()[0]}
        if eval_episodes:
            eval_envs = make_vector_env(AtariRL(AtariRL.spec_for("quick", "ppo_cnn"), Path(".")).make_env,
                                        EVAL_ENVS, evaluation=True)
            t = time.perf_counter()
            figures["return"] = evaluate_policy(SB3Greedy(model.policy), eval_envs, eval_episodes,
                                                torch.device("cpu"), seed=seed + EVAL_SEED_OFFSET)["return"]
            figures["eval_s"] = time.perf_counter() - t
            eval_envs.close()
        env.close()
        return figures
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--reps", type=int, default=3, help="repetitions (order alternates)")
    parser.add_argument("--env-steps", type=int, default=200_000, help="env steps per side, steps comparison")
    parser.add_argument("--wall-s", type=float, default=60.0, help="train seconds per side, wall comparison (0: skip)")
    parser.add_argument("--sb3-threads", type=int, default=2, help="torch threads for SB3")
    parser.add_argument("--sb3-network", choices=("mlp", "cnn"), default="mlp",
                        help="SB3's policy: its MlpPolicy (the issue's) or dlbench's MinAtar conv net (like for like)")
    parser.add_argument("--eval-episodes", type=int, default=16, help="episodes of the equal-wall evaluation")
    parser.add_argument("--recipe", default="new", choices=sorted(RECIPES),
                        help="dlbench's PPO config: new = atari_rl's quick recipe, sb3 = SB3's PPO defaults (SB3_LIKE)")
    parser.add_argument("--dlbench-network", choices=("cnn", "mlp"), default="cnn",
                        help="dlbench's agent: atari_rl's ppo_cnn, or SB3's MlpPolicy architecture (like for like)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="dlbench's precision (SB3 trains in fp32)")
    parser.add_argument("--profile", action="store_true", help="time dlbench's phases in the steps comparison")
    parser.add_argument("--only", choices=("dlbench", "sb3"), default=None, help="run one side only")
    args = parser.parse_args()
    sides = [s for s in ("dlbench", "sb3") if args.only in (None, s)]
    if "sb3" in sides and importlib.util.find_spec("stable_baselines3") is None:  # before any run, not after
        raise MissingExtraError(SB3_MISSING + " (or --only dlbench)")
    rows: dict[str, list[dict]] = {f"{s}/{m}": [] for s in sides for m in ("steps", "wall")}
    phase_rows: list[dict] = []
    print(f"dlbench recipe {args.recipe}, {args.dlbench_network} network, {args.precision}: {RECIPES[args.recipe]}")
    print(f"SB3: {args.sb3_network} network, {args.sb3_threads} torch threads")
    # Both sides share this process and its memory allocator: dlbench's runs keep freed memory
    # (suite.running.allocator, set once per process), so SB3 runs with it too.
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()}; torch {torch.__version__}; "
          f"malloc: {keep_freed_memory()}")
    for rep in range(args.reps):
        order = sides if rep % 2 == 0 else sides[::-1]
        for side in order:
            if side == "dlbench":
                phases = {} if args.profile else None
                r = run_dlbench(args.env_steps, 1e9, rep, args.recipe, phases=phases, precision=args.precision,
                                network=args.dlbench_network)
                if rep == 0:
                    print(f"dlbench agent: {r['params']:,} parameters")
                if phases is not None:
                    phases["eval"] = r["eval_s"]
                    phases["train (total)"] = r["train_s"]
                    phase_rows.append(phases)
            else:
                r = run_sb3(args.env_steps, 1e9, rep, args.sb3_threads, eval_episodes=0, network=args.sb3_network)
            rows[f"{side}/steps"].append(r)
            print(f"rep {rep} {side:7s} steps: {r['steps']:>8} in {r['train_s']:6.1f}s = {r['steps_per_s']:8,.0f}/s "
                  f"(other cpu {r['other_cpu_share']:.2f}, load {r['load1']:.2f})", flush=True)
        if args.wall_s > 0:
            for side in order:
                if side == "dlbench":
                    # the quick budget's env steps, so the learning rate anneals as in the task's runs
                    r = run_dlbench(AtariRL.spec_for("quick", "ppo_cnn").budget.max_env_steps, args.wall_s, rep,
                                    args.recipe, precision=args.precision, network=args.dlbench_network,
                                    eval_episodes=args.eval_episodes)
                else:
                    r = run_sb3(10**9, args.wall_s, rep, args.sb3_threads, args.eval_episodes, args.sb3_network)
                rows[f"{side}/wall"].append(r)
                print(f"rep {rep} {side:7s} wall:  {r['steps']:>8} in {r['train_s']:6.1f}s = "
                      f"{r['steps_per_s']:8,.0f}/s return {r['return']:.2f} "
                      f"(other cpu {r['other_cpu_share']:.2f}, load {r['load1']:.2f})", flush=True)
    print("\nmedian (min..max) over reps")
    for key, figures in rows.items():
        if figures:
            print(f"{key:14s} env steps/s {median_range([f['steps_per_s'] for f in figures])}"
                  + (f"  return {median_range([f['return'] for f in figures])}" if key.endswith("wall") else "")
                  + f"  other cpu {median_range([f['other_cpu_share'] for f in figures])}")
    for mode in ("steps", "wall"):
        if len(sides) == 2 and rows[f"dlbench/{mode}"]:
            ratios = [d["steps_per_s"] / s["steps_per_s"] for d, s in zip(rows[f"dlbench/{mode}"], rows[f"sb3/{mode}"])]
            print(f"ratio dlbench / SB3 env steps/s ({mode}): {median_range(ratios)}")
    if phase_rows:
        print("\ndlbench PPO phases, seconds per 100k env steps: median (min..max)")
        steps = [r["steps"] for r in rows["dlbench/steps"]]
        for name in phase_rows[0]:
            values = [p.get(name, 0.0) * 1e5 / n for p, n in zip(phase_rows, steps)]
            share = statistics.median(p.get(name, 0.0) / p["train (total)"] for p in phase_rows)
            print(f"  {name:14s} {median_range(values)}  {share:6.1%}")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "ppo_vs_sb3"))
