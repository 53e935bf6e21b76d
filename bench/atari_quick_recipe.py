"""Race PPO recipes for atari_rl's quick profile: time-to-target on MinAtar Breakout, several seeds.

Each recipe trains `ppo_cnn` through the harness (`suite.runner.run_one`: the quick
profile's target eval/return >= 6.0, its evaluation rule, budget of 3M env steps and
300 s train-time cap, all unchanged); only `recipe.algo` differs. Records go to
`--results` (one JSON per run); the table gives per run: reached, time-to-target (train
time, s), env steps to target, best and last eval return, env steps/s and the host's
other_cpu_share. Time-to-target depends on the host's load; env steps to target does not.

Recipes race in one process, one run after another, seed by seed, the order of the
recipes rotating with the seed; `--parallel` runs one process per recipe at once instead
(all recipes then share the same contention).

A recipe name may carry a precision, `new@bf16` (default `auto`: what the harness picks).

    python bench/atari_quick_recipe.py --recipes old,new --seeds 0,1,2
    python bench/atari_quick_recipe.py --recipes new@fp32,new@bf16 --seeds 0,1,2
    python bench/atari_quick_recipe.py --recipes envs32@fp32,new@fp32,new@bf16 --seeds 0,1,2,3,4,5
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.config import RunOptions  # noqa: E402
from suite.rl import PPOConfig  # noqa: E402
from suite.runner import run_one  # noqa: E402
from tasks.atari_rl import QUICK_PPO, AtariRL  # noqa: E402

OLD = PPOConfig(num_envs=32, num_steps=32, num_minibatches=2, update_epochs=2, lr=1e-3, clip_coef=0.2,
                eval_envs=8, eval_episodes=16, torch_threads=1)  # atari_rl's quick recipe up to 2026-11-26
RECIPES = {
    "old": OLD,
    "mb4": dataclasses.replace(OLD, num_minibatches=4),
    "ep4": dataclasses.replace(OLD, update_epochs=4),  # the recipe from 2026-11-26 to the sixth session (1 thread)
    # the recipe from the sixth session to 2026-11-27: ep4 with the update on every core
    "envs32": dataclasses.replace(QUICK_PPO, num_envs=32, num_steps=32, num_minibatches=2),
    "envs64x16": dataclasses.replace(QUICK_PPO, num_envs=64, num_steps=16, num_minibatches=2),
    "new": QUICK_PPO,  # the task's recipe now: envs32 with 64 envs and 4 minibatches of 512
}
PRECISIONS = ("auto", "fp32", "bf16")


def task_with(algo: PPOConfig) -> type[AtariRL]:
    """atari_rl with `algo` as the quick profile's ppo_cnn recipe (a subclass: the registry is untouched)."""
    quick = AtariRL.profiles["quick"]
    recipes = dict(quick.recipes, ppo_cnn=dataclasses.replace(quick.recipes["ppo_cnn"], algo=algo))
    return type("AtariRLRecipe", (AtariRL,), {"profiles": dict(AtariRL.profiles,
                                                                quick=dataclasses.replace(quick, recipes=recipes))})


def race(recipes: list[str], seeds: list[int], results: Path) -> list[dict]:
    rows = []
    for i, seed in enumerate(seeds):
        for name in recipes[i % len(recipes):] + recipes[:i % len(recipes)]:
            recipe, precision = parse(name)
            opts = RunOptions(profile="quick", device="cpu", precision=precision, results=results / name)
            record = run_one(task_with(RECIPES[recipe]), "ppo_cnn", seed, opts, log=lambda _m: None)
            rows.append(summary(name, record))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def parse(name: str) -> tuple[str, str]:
    """'new@bf16' -> ('new', 'bf16'); 'new' -> ('new', 'auto')."""
    recipe, _, precision = name.partition("@")
    return recipe, precision or "auto"


def summary(name: str, record: dict) -> dict:
    curve = record.get("curve") or [{}]
    returns = [p.get("eval/return", float("nan")) for p in curve]
    return {"recipe": name, "seed": record["seed"], "status": record["status"],
            "precision": (record.get("config") or {}).get("precision"),
            "reached": record.get("reached_target"), "time_to_target_s": record.get("time_to_target_s"),
            "steps_to_target": record.get("steps_to_target"),
            "best_return": max(returns), "last_return": returns[-1], "train_time_s": record.get("train_time_s"),
            "env_steps_per_s": (record.get("throughput") or {}).get("value"),
            "other_cpu_share": (record.get("host") or {}).get("other_cpu_share")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="old,new", help=f"comma-separated, of {sorted(RECIPES)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--results", type=Path, default=Path("/tmp/atari_quick_recipe"), help="records folder")
    parser.add_argument("--parallel", action="store_true", help="one process per recipe, all at once")
    args = parser.parse_args()
    recipes, seeds = args.recipes.split(","), [int(s) for s in args.seeds.split(",")]
    unknown = sorted(name for name in recipes if parse(name)[0] not in RECIPES or parse(name)[1] not in PRECISIONS)
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}: pick from {sorted(RECIPES)}, optionally @{'|'.join(PRECISIONS)}")
    if args.parallel:
        procs = [subprocess.Popen([sys.executable, __file__, "--recipes", r, "--seeds", args.seeds,
                                   "--results", str(args.results)]) for r in recipes]
        sys.exit(max(p.wait() for p in procs))
    race(recipes, seeds, args.results)


if __name__ == "__main__":
    main()
