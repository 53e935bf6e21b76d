"""The RL harness: GAE, the replay buffer, evaluation, determinism, bad input, a failing env."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from suite.running.config import RunOptions
from suite.running.context import RunContext
from suite.errors import ConfigError
from suite.training.rl import train_rl
from suite.training.rl.dqn import ReplayBuffer, epsilon, DQNConfig
from suite.training.rl.envs import SAME_STEP, make
from suite.training.rl.evaluation import evaluate_policy
from suite.training.rl.ppo import gae, policy_terms, sample_actions
from suite.running.runner import run_one
from tasks.atari_rl import AtariRL

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_gae_matches_hand_computed_example():
    # gamma 0.9, lambda 0.8; the episode ends at t=1, so t=0 must not see past it.
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    ends = torch.tensor([[0.0], [1.0], [0.0]])
    adv, ret = gae(rewards, values, ends, torch.tensor([0.2]), gamma=0.9, gae_lambda=0.8)
    # t=2: 2 + 0.9*0.2 - 0.3 = 1.88; t=1: 0 - 0.4 = -0.4; t=0: (1 + 0.9*0.4 - 0.5) + 0.72*(-0.4) = 0.572
    assert adv.squeeze(1).tolist() == pytest.approx([0.572, -0.4, 1.88])
    assert ret.squeeze(1).tolist() == pytest.approx([1.072, 0.0, 2.18])


def reference_gae(rewards, values, ends, next_value, gamma, gae_lambda):
    """CleanRL's loop, element by element in plain Python: the reference `gae` must equal."""
    T, N = len(rewards), len(rewards[0])
    adv = [[0.0] * N for _ in range(T)]
    for n in range(N):
        last = 0.0
        for t in reversed(range(T)):
            following = next_value[n] if t == T - 1 else values[t + 1][n]
            alive = 1.0 - ends[t][n]
            delta = rewards[t][n] + gamma * following * alive - values[t][n]
            last = delta + gamma * gae_lambda * alive * last
            adv[t][n] = last
    return adv


def test_gae_equals_a_reference_on_random_rollouts():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(17, 5, generator=g), torch.randn(17, 5, generator=g)
    ends, next_value = (torch.rand(17, 5, generator=g) < 0.2).float(), torch.randn(5, generator=g)
    adv, ret = gae(rewards, values, ends, next_value, gamma=0.99, gae_lambda=0.95)
    expected = torch.tensor(reference_gae(rewards.tolist(), values.tolist(), ends.tolist(), next_value.tolist(),
                                          0.99, 0.95))
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_policy_terms_and_sampling_match_categorical():
    logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(1)) * 3
    dist = torch.distributions.Categorical(logits=logits)
    torch.manual_seed(7)
    expected = dist.sample()
    torch.manual_seed(7)
    actions, logprobs = sample_actions(logits)
    assert torch.equal(actions, expected)  # the same draw from the same generator state
    torch.testing.assert_close(logprobs, dist.log_prob(actions))
    torch.testing.assert_close(policy_terms(logits, actions)[1], dist.entropy())


def test_replay_buffer_wraps_around_and_keeps_dtypes():
    buf = ReplayBuffer(5, (2,), torch.bool, torch.device("cpu"))
    for start in (0, 3):  # 3 transitions, then 4: the first two are overwritten
        n = 3 if start == 0 else 4
        ids = np.arange(start, start + n)
        obs = np.stack([ids % 2 == 0, ids % 2 == 1], axis=1)
        buf.add(obs, ids, ids.astype(np.float32), ~obs, ids % 2 == 1)
    assert (buf.size, buf.pos) == (5, 2)
    assert sorted(buf.actions.tolist()) == [2, 3, 4, 5, 6]
    assert buf.obs.dtype == torch.bool
    batch = buf.sample(64, torch.Generator().manual_seed(0))
    assert set(batch["actions"].tolist()) <= {2, 3, 4, 5, 6}
    assert torch.equal(batch["rewards"], batch["actions"].float())
    assert torch.equal(batch["dones"], (batch["actions"] % 2 == 1).float())
    assert torch.equal(batch["next_obs"], ~batch["obs"])


def test_epsilon_decays_linearly_then_stays():
    cfg = DQNConfig(start_e=1.0, end_e=0.1, exploration_fraction=0.5)
    assert [round(epsilon(cfg, s, 100), 3) for s in (0, 25, 50, 90)] == [1.0, 0.55, 0.1, 0.1]


class Corridor(gym.Env):
    """Reward 1 per step; the episode terminates after `length` steps."""

    observation_space = gym.spaces.Box(0, 1, (10, 10, 4), bool)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, length: int):
        self.length, self.t = length, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((10, 10, 4), bool), {}

    def step(self, action):
        self.t += 1
        return np.zeros((10, 10, 4), bool), 1.0, self.t >= self.length, False, {}


class StandStill(torch.nn.Module):
    def greedy(self, obs):
        return torch.zeros(len(obs), dtype=torch.long)


def test_evaluation_counts_episodes_per_env_and_ends_truncated_ones():
    # env 0 terminates after 2 steps; env 1 would run 10 steps but a time limit cuts it at 3.
    envs = gym.vector.SyncVectorEnv(
        [lambda: Corridor(2), lambda: gym.wrappers.TimeLimit(Corridor(10), 3)], autoreset_mode=SAME_STEP)
    metrics = evaluate_policy(StandStill(), envs, episodes=4, device=torch.device("cpu"), seed=0)
    # Each env plays its quota of 2 episodes although env 0 finishes its episodes sooner.
    assert metrics["episodes"] == 4
    assert metrics["return"] == pytest.approx(2.5)  # returns 2, 2, 3, 3
    assert metrics["return_std"] == pytest.approx(0.5)
    assert metrics["episode_length"] == pytest.approx(2.5)


def smoke_task(model: str = "ppo_cnn", seed: int = 0, task_cls=AtariRL):
    return task_cls(task_cls.spec_for("smoke", model, seed), "/nonexistent")


def context(seed: int = 0, max_steps: int | None = None) -> RunContext:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return RunContext(device=torch.device("cpu"), precision="fp32", compile=False,
                      generator=torch.Generator().manual_seed(seed), seed=seed, max_steps=max_steps,
                      log=lambda _m: None)


def curve_without_time(result):
    return [{k: v for k, v in point.items() if k != "time_s"} for point in result.curve]


@pytest.mark.parametrize("model", ["ppo_cnn", "dqn_cnn"])
def test_same_seed_gives_the_same_curve(model):
    first = train_rl(smoke_task(model), context(0))
    again = train_rl(smoke_task(model), context(0))
    other = train_rl(smoke_task(model), context(1))
    assert first.status == "ok" and len(first.curve) == 2
    assert curve_without_time(first) == curve_without_time(again)
    assert [p["train/loss"] for p in first.curve] != [p["train/loss"] for p in other.curve]
    assert first.samples == 2048 and first.throughput["unit"] == "env_steps/s"


def test_ppo_phase_times_cover_the_iteration():
    ctx = context(0)
    ctx.phase_times = {}
    result = train_rl(smoke_task(), ctx)
    assert set(ctx.phase_times) == {"store", "act", "env", "gae", "update"}
    assert 0 < sum(ctx.phase_times.values()) <= result.train_time_s


class DtypeSpy(AtariRL):
    """atari_rl whose agents note the dtype of their encoder's and their last layer's output at every
    forward, by mode: acting / evaluating (no grad) and learning (grad)."""

    seen: dict[str, set] = {}

    def build_agent(self, obs_space, action_space):
        agent = super().build_agent(obs_space, action_space)
        last = agent.actor if hasattr(agent, "actor") else agent.head

        def noter(part):
            def note(_module, _inputs, output):
                mode = "learn" if torch.is_grad_enabled() else "act"
                DtypeSpy.seen.setdefault((part, mode), set()).add(output.dtype)
            return note

        agent.encoder.register_forward_hook(noter("encoder"))
        last.register_forward_hook(noter("head"))
        return agent


@pytest.mark.parametrize("model", ["ppo_cnn", "dqn_cnn"])
@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_rl_trains_acts_and_evaluates_in_the_runs_precision(model, precision, dtype):
    # A record that says bf16 must have trained in bf16: every encoder forward, acting and learning,
    # in autocast; the heads (log-probabilities, values, Q-values) stay float32 whatever the precision.
    DtypeSpy.seen = {}
    ctx = context(0)
    ctx.precision = precision
    result = train_rl(smoke_task(model, task_cls=DtypeSpy), ctx)
    assert result.status == "ok" and np.isfinite(result.curve[-1]["train/loss"])
    assert DtypeSpy.seen == {("encoder", "act"): {dtype}, ("encoder", "learn"): {dtype},
                             ("head", "act"): {torch.float32}, ("head", "learn"): {torch.float32}}


class ThreadSpy(AtariRL):
    """atari_rl whose PPO agent notes torch's CPU thread count at every forward: acting (no grad) or learning."""

    seen: dict[str, set] = {}

    def build_agent(self, obs_space, action_space):
        agent = super().build_agent(obs_space, action_space)

        def note(_module, _inputs, _output):
            ThreadSpy.seen.setdefault("learn" if torch.is_grad_enabled() else "act", set()).add(torch.get_num_threads())

        agent.actor.register_forward_hook(note)
        return agent


def test_ppo_acts_on_act_threads_and_learns_on_torch_threads():
    task = smoke_task(task_cls=ThreadSpy)
    task.spec = dataclasses.replace(task.spec, recipe=dataclasses.replace(
        task.spec.recipe, algo=dataclasses.replace(task.spec.recipe.algo, torch_threads=2, act_threads=1)))
    ThreadSpy.seen, before = {}, torch.get_num_threads()
    result = train_rl(task, context(0))
    assert result.status == "ok"
    # evaluation plays outside the rollout, on the run's threads
    assert ThreadSpy.seen == {"act": {1, 2}, "learn": {2}}
    assert torch.get_num_threads() == before  # restored after the run


def test_the_record_says_the_threads_the_learner_ran_on(tmp_path):
    """The smoke recipes train on one thread (`torch_threads=1`): the record's host.torch_threads says 1,
    not the process's count that is back in place when the record is written."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        record = run_one(AtariRL, "dqn_cnn", 0, RunOptions(profile="smoke", device="cpu", results=tmp_path),
                         log=lambda _m: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["recipe"]["algo"]["torch_threads"] == 1 and record["host"]["torch_threads"] == 1


def test_an_interrupted_run_says_the_threads_the_learner_ran_on(tmp_path, monkeypatch):
    """Ctrl-C during PPO's first update: the interrupted record's host.torch_threads is the recipe's 1 too."""
    from suite.results import records
    from suite.training.rl import ppo

    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ppo, "update", interrupt)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_one(AtariRL, "ppo_cnn", 0, RunOptions(profile="smoke", device="cpu", results=tmp_path),
                    log=lambda _m: None)
    finally:
        torch.set_num_threads(before)
    [record] = records.read_records([tmp_path])
    assert record["status"] == "interrupted" and record["host"]["torch_threads"] == 1


def test_unknown_env_id_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="MinAtar/Breakuot-v1.*registered") as err:
        make("MinAtar/Breakuot-v1")
    assert "\n" not in str(err.value)


class ContinuousRL(AtariRL):
    name = "continuous_rl_test"

    def make_env(self, evaluation):
        return make("Pendulum-v1")


def test_continuous_actions_to_ppo_is_a_config_error():
    with pytest.raises(ConfigError, match="PPO needs a discrete action space"):
        train_rl(smoke_task(task_cls=ContinuousRL), context())


def test_budget_smaller_than_one_rollout_is_a_config_error():
    rollout = r"--max-steps=100: smaller than one PPO rollout \(num_envs 4 x num_steps 64\) = 256 env steps"
    with pytest.raises(ConfigError, match=rollout):
        train_rl(smoke_task(), context(max_steps=100))


class Exploding(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps > 100:
            raise RuntimeError("emulator crashed")
        return self.env.step(action)


class BrokenRL(AtariRL):
    name = "broken_rl_test"

    def make_env(self, evaluation):
        return Exploding(super().make_env(evaluation))


def test_env_raising_mid_run_gives_a_failed_record_and_the_suite_goes_on(tmp_path):
    opts = RunOptions(profile="smoke", device="cpu", results=tmp_path)
    broken = run_one(BrokenRL, "ppo_cnn", 0, opts, log=lambda _m: None)
    assert broken["status"] == "failed"
    assert broken["error"] == "RuntimeError: emulator crashed"
    after = run_one(AtariRL, "dqn_cnn", 0, dataclasses.replace(opts, max_steps=1024), log=lambda _m: None)
    assert after["status"] == "ok"
    assert after["throughput"]["unit"] == "env_steps/s"
    assert set(after["final_metrics"]) == {f"{split}/{m}" for split in ("val", "test") for m in AtariRL.metrics}
    assert all(np.isfinite(p["train/loss"]) for p in after["curve"])


def test_rl_records_fingerprint_their_environment(smoke_options):
    from suite.taskapi import registry
    from suite.running.runner import run_one

    record = run_one(registry.get_task("atari_rl"), "ppo_cnn", 0, smoke_options, log=lambda _m: None)
    fingerprint = record["data_info"]["env"]["fingerprint"]
    assert fingerprint.startswith("MinAtar/Breakout") and "minatar==" in fingerprint and "gymnasium==" in fingerprint


def test_ppo_update_bench_times_each_precision():
    # bench/ppo_update.py backs the README's learner figures: it must keep running against the harness's update().
    bench = BENCH / "ppo_update.py"
    out = subprocess.run([sys.executable, str(bench), "--precisions", "fp32,bf16", "--reps", "1", "--calls", "1",
                          "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "ms per update" in line]
    assert [line.split()[0] for line in lines] == ["fp32", "bf16"]
    bad = subprocess.run([sys.executable, str(bench), "--precisions", "fp16"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown precision 'fp16'" in bad.stderr


@pytest.mark.parametrize("network", ["cnn", "mlp"])
def test_ppo_vs_sb3_bench_trains_dlbench_side_without_sb3(network):
    # bench/ppo_vs_sb3.py backs the README's PPO ratios; its dlbench side needs no SB3 installed.
    bench = BENCH / "ppo_vs_sb3.py"
    out = subprocess.run([sys.executable, str(bench), "--only", "dlbench", "--recipe", "sb3", "--dlbench-network",
                          network, "--reps", "1", "--env-steps", "2048", "--wall-s", "0", "--profile"],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    # ppo_cnn: MinAtar conv net + heads; mlp: SB3's MlpPolicy (two 400-64-64 trunks + heads) on Breakout's 3 actions
    params = {"cnn": 132_308, "mlp": 2 * (400 * 64 + 64 + 64 * 64 + 64) + 64 * 3 + 3 + 64 + 1}[network]
    assert f"dlbench agent: {params:,} parameters" in out.stdout
    steps = [line for line in out.stdout.splitlines() if line.startswith("rep 0 dlbench steps:")]
    assert len(steps) == 1 and int(steps[0].split()[4]) == 2048
    assert "update" in out.stdout.split("dlbench PPO phases")[1]
