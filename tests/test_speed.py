"""The speed profile (suite.measuring.speed): full-size models on synthetic data, no target, throughput and utilisation.

Each task's full-size model is slow on a CPU, so these run one timed step of the cheaper
models; `python run_all.py --profile speed` runs them all (README).
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from suite.measuring import speed
from suite.results import check, compare, records
from suite.taskapi import registry
from suite.running.config import SuiteOptions
from suite.training.loop import FlopScale
from suite.running.runner import run_one

TASKS = registry.load_tasks()


@pytest.fixture
def speed_options(results_dir, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cpu", speed.Steps(pool=2, warmup=1, measured=2, env_steps=5))
    return SuiteOptions(profile="speed", device="cpu", results=results_dir)


@pytest.mark.parametrize("task,model", [("image_classification", "mlp"), ("keyword_spotting", "ds_cnn"),
                                        ("sentiment", "minilm_finetune"), ("atari_rl", "dqn_cnn")])
def test_speed_run_measures_throughput_and_utilisation(task, model, speed_options, monkeypatch):
    # minilm_finetune must not need its weights package: point the pretrained encoder nowhere
    monkeypatch.setenv("DLBENCH_PRETRAINED", "/nonexistent/encoder")
    record = run_one(registry.load_tasks()[task], model, 0, speed_options, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert records.validate(record) == []
    assert record["target"] is None and record["reached_target"] is None
    assert record["dataset"].startswith("synthetic:")
    assert record["throughput"]["unit"] == "samples/s" and record["throughput"]["value"] > 0
    timing = record["speed"]
    assert timing["steps"] == 2 and 0 < timing["step_time_median_s"] <= timing["step_time_p90_s"]
    # Tests measure the CPU peak at one small size (conftest.py), which a full-size model can beat:
    # then the figure is null with the reason, never above 1.
    use, note = record["utilisation"], record["utilisation_note"]
    assert (use is not None and 0 < use <= 1) or (use is None and "peak" in note), (use, note)
    assert record["flops_per_sample"] > 0 and "distinct batch shape" in record["flops_method"]
    assert record["peak_mem_mb"] > 0
    if task == "atari_rl":
        assert record["throughput"]["extra"]["env_steps/s"] > 0  # the real ALE environments
    assert check.assess(record) == ([], [])
    frame = compare.to_frame([record])
    table = compare.to_table(frame, "model")
    assert table["time_to_target_s"].tolist() == ["no target"]
    assert table["utilisation"].iloc[0] == "-" if use is None else table["utilisation"].iloc[0].startswith(f"{use * 100:.3g}%")


def test_synthetic_batches_have_the_full_shapes():
    def batch(task, model):
        cls = registry.load_tasks()[task]
        t = cls(cls.spec_for("speed", model), data_dir=".")
        return t.synthetic_batch(4, torch.device("cpu"), torch.Generator().manual_seed(0))

    assert batch("image_classification", "cnn")["x"].shape == (4, 3, 32, 32)
    assert batch("keyword_spotting", "ds_cnn")["audio"].shape == (4, 16000)
    text = batch("sentiment", "bilstm")
    assert 3 <= text["ids"].shape[1] <= 66 and (text["mask"].sum(1) == text["lengths"]).all()
    asr = batch("speech_recognition", "ctc_bigru")
    assert 1.3 * 16000 <= asr["audio"].shape[1] <= 24.5 * 16000
    assert (asr["target_lengths"] <= (asr["lengths"] // 160 + 1) // 4).all()


def test_a_task_without_speed_profile_or_synthetic_batch_is_skipped(speed_options):
    from tests.toy_tasks import ToyLinear

    record = run_one(ToyLinear, "linear", 0, speed_options, log=lambda _m: None)
    assert record["status"] == "skipped" and "no 'speed' profile" in record["error"]

    class NoShapes(ToyLinear):
        profiles = {**ToyLinear.profiles, "speed": speed.speed_profile(ToyLinear.profiles["full"])}

    record = run_one(NoShapes, "linear", 0, speed_options, log=lambda _m: None)
    assert record["status"] == "skipped" and "no synthetic batch" in record["error"]


def test_flops_of_variable_length_batches_scale_with_the_lengths_trained():
    counted = {"ids": torch.zeros(4, 10, dtype=torch.long), "y": torch.zeros(4)}
    scale = FlopScale(counted)
    scale.add({"ids": torch.zeros(8, 5, dtype=torch.long), "y": torch.zeros(8)})
    scale.add({"ids": torch.zeros(8, 15, dtype=torch.long), "y": torch.zeros(8)})
    per_sample, how = scale.per_sample(4 * 10 * 100.0)  # 100 FLOPs per position
    assert per_sample == pytest.approx(100.0 * 10)  # mean length trained: 10
    assert "per padded position" in how
    images = FlopScale({"x": torch.zeros(4, 1, 8, 8)})
    images.add({"x": torch.zeros(2, 1, 8, 8)})
    assert images.per_sample(400.0)[0] == 100.0
    # Cached audio features (batch, frames, features) vary in frames, dim 1, as waveforms vary in samples.
    feats = FlopScale({"feats": torch.zeros(4, 10, 40), "lengths": torch.zeros(4)})
    feats.add({"feats": torch.zeros(8, 30, 40), "lengths": torch.zeros(8)})
    assert feats.per_sample(4 * 10 * 100.0)[0] == pytest.approx(100.0 * 30)


def test_speed_profile_reuses_the_full_recipes():
    for cls in registry.load_tasks().values():
        if cls.__module__.startswith("tests."):
            continue
        full, fast = cls.profiles["full"], cls.profiles["speed"]
        assert fast.target is None and fast.dataset == "synthetic:" + full.dataset
        for name, recipe in full.recipes.items():
            assert dataclasses.replace(recipe, budget=None) == fast.recipes[name]


def test_timed_steps_take_about_the_minimum_time_then_stop_at_the_cap(results_dir, monkeypatch):
    """A small model's few steps would be timed for milliseconds: the rule times it for about
    `min_time_s`, at most `max_measured` steps; `--max-steps N` times exactly N."""
    task = registry.load_tasks()["image_classification"]

    def run(plan: speed.Steps, max_steps: int | None = None) -> dict:
        monkeypatch.setitem(speed.STEPS, "cpu", plan)
        opts = SuiteOptions(profile="speed", device="cpu", results=results_dir, max_steps=max_steps)
        record = run_one(task, "mlp", 0, opts, log=lambda _m: None)
        assert record["status"] == "ok", record["error"]
        return record

    timed = run(speed.Steps(pool=2, warmup=1, measured=1, env_steps=5, max_batch=8, min_time_s=1.0, max_measured=100_000))
    # as many steps as the first one's pace says take 1 s: about that long (the first step may be the slowest)
    assert timed["speed"]["steps"] > 1 and timed["train_time_s"] >= 0.5
    assert timed["speed"]["min_steps"] == 1 and timed["speed"]["min_time_s"] == 1.0
    low, mid, high = (timed["speed"][f"step_time_{q}_s"] for q in ("p10", "median", "p90"))
    assert 0 < low <= mid <= high
    assert timed["samples"] == timed["speed"]["steps"] * timed["speed"]["batch_size"]
    assert check.assess(timed) == ([], [])  # the profile's budget covers the steps the rule may take

    capped = run(speed.Steps(pool=2, warmup=1, measured=2, env_steps=5, max_batch=8, min_time_s=600.0, max_measured=5))
    assert capped["speed"]["steps"] == 5

    exact = run(speed.Steps(pool=2, warmup=1, measured=2, env_steps=5, max_batch=8, min_time_s=600.0, max_measured=50),
                max_steps=3)
    assert exact["speed"]["steps"] == 3 and exact["speed"]["min_time_s"] == 0.0


def test_real_environments_are_stepped_to_the_minimum_time_too(results_dir, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cpu", speed.Steps(pool=2, warmup=1, measured=1, env_steps=2, min_time_s=0.5,
                                                        max_measured=1))
    opts = SuiteOptions(profile="speed", device="cpu", results=results_dir)
    record = run_one(registry.load_tasks()["atari_rl"], "dqn_cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    envs = int(record["speed"]["envs"].split()[0])
    vector_steps = record["speed"]["env_steps"] / envs
    assert vector_steps == int(vector_steps) and 2 < vector_steps <= 2 * speed.ENV_STEP_CAP
    assert record["speed"]["steps"] == 1  # the learner's cap holds whatever the time


def test_the_speed_budget_holds_every_step_the_rule_may_take():
    """A run's record must stay within its budget (`dlbench check`), however long the time rule runs."""
    cls = registry.load_tasks()["image_classification"]
    budget = cls.spec_for("speed", "cnn").budget
    assert all(plan.most_steps() <= budget.max_steps for plan in speed.STEPS.values())
    assert speed.STEPS["cpu"].most_steps() > speed.STEPS["cpu"].measured  # the rule goes past the minimum
