"""dlbench's PPO against a plain loop stepping the same environments with the same network.

Both sides, in the same process one after the other: the atari_rl task's
vectorised environments and agent network. The reference loop only picks
actions (forward pass + sampling) and steps the environments: no storage,
no advantages, no updates. The ratio shows what learning costs on top of
acting. Evaluation time is excluded from dlbench's figure (it is timed apart).

    python bench/rl_throughput.py --profile quick --env-steps 200000
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.running.context import RunContext  # noqa: E402
from suite.training.rl import cpu_threads, train_rl  # noqa: E402
from suite.training.rl.envs import make_vector_env  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402
from tasks.atari_rl import AtariRL  # noqa: E402


def task_for(profile: str, model: str, env_steps: int, num_envs: int | None) -> AtariRL:
    spec = AtariRL.spec_for(profile, model)
    algo = spec.recipe.algo if num_envs is None else dataclasses.replace(spec.recipe.algo, num_envs=num_envs)
    budget = dataclasses.replace(spec.budget, max_env_steps=env_steps, eval_every=env_steps, max_time_s=1e9)
    return AtariRL(dataclasses.replace(spec, eval_every=env_steps, recipe=dataclasses.replace(spec.recipe, algo=algo), budget=budget),
                   Path("."))


@torch.no_grad()
def reference_steps_per_s(task: AtariRL, env_steps: int, device: torch.device) -> float:
    cfg = task.spec.recipe.algo
    envs = make_vector_env(task.make_env, cfg.num_envs, asynchronous=cfg.asynchronous)
    model = task.build_agent(envs.single_observation_space, envs.single_action_space).to(device)
    obs, _ = envs.reset(seed=0)
    began = time.perf_counter()
    for _ in range(env_steps // cfg.num_envs):
        logits, _value = model(torch.as_tensor(obs, device=device))
        actions = torch.distributions.Categorical(logits=logits).sample()
        obs, *_ = envs.step(actions.cpu().numpy())
    spent = time.perf_counter() - began
    envs.close()
    return (env_steps // cfg.num_envs) * cfg.num_envs / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="quick", help="atari_rl profile whose environments and recipe to use")
    parser.add_argument("--model", default="ppo_cnn", help="a PPO model of atari_rl")
    parser.add_argument("--env-steps", type=int, default=200_000, help="env steps for each side")
    parser.add_argument("--num-envs", type=int, default=None, help="override the recipe's environment count")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    task = task_for(args.profile, args.model, args.env_steps, args.num_envs)
    cfg = task.spec.recipe.algo
    torch.manual_seed(0)
    ctx = RunContext(device=device, precision="fp32", compile=False, generator=torch.Generator().manual_seed(0),
                     seed=0, log=lambda _m: None)
    result = train_rl(task, ctx)
    with cpu_threads(cfg.torch_threads if device.type == "cpu" else None):
        reference = reference_steps_per_s(task, args.env_steps, device)
    dlbench = result.throughput["value"]
    print(f"{task.spec.dataset}, {cfg.num_envs} envs x {cfg.num_steps} steps, {result.samples} env steps each side")
    print(f"dlbench PPO (acting + learning): {dlbench:10,.0f} env steps/s")
    print(f"reference loop (acting only):    {reference:10,.0f} env steps/s")
    print(f"ratio dlbench / reference:       {dlbench / reference:10.2f}")


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "rl_throughput"))
