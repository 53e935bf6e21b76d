"""GPU-first code paths exercised on CPU where torch allows: channels_last, torch.compile, bf16."""
from __future__ import annotations

import pytest
import torch

from suite.running.config import SuiteOptions
from suite.taskapi.data import TensorSource
from suite.running.runner import run_one
from tasks.image_classification import ImageClassification, cnn
from tests.helpers import compile_spy


def test_channels_last_placement_keeps_batches_nhwc_and_results_equal():
    torch.manual_seed(0)
    # 3 channels: a 1-channel NCHW tensor is channels_last-contiguous too, so it would prove nothing
    source = TensorSource(x=torch.randn(64, 3, 28, 28), y=torch.randint(0, 10, (64,)))
    assert not next(source.batches(16))["x"].is_contiguous(memory_format=torch.channels_last)
    nhwc = source.to(torch.device("cpu"), channels_last=True)
    batch = next(nhwc.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert batch["x"].is_contiguous(memory_format=torch.channels_last) and not batch["x"].is_contiguous()
    assert batch["y"].dtype == torch.long
    model = cnn(3, 28, 10, width=8).eval()
    reference = model(next(source.batches(16))["x"])
    model_nhwc = model.to(memory_format=torch.channels_last)
    out = model_nhwc(next(nhwc.batches(16))["x"])
    assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.slow
def test_compiled_run_on_cpu_matches_the_contract(tmp_path, monkeypatch):
    """`--compile` wraps the training model in torch.compile, once per run (how long compiling takes
    is measured by bench/, not asserted here)."""
    compiled = compile_spy(monkeypatch)
    opts = SuiteOptions(profile="smoke", device="cpu", compile=True, results=tmp_path)
    record = run_one(ImageClassification, "mlp", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["compile"] is True
    assert compiled == ["Sequential"], "the mlp, compiled once"


@pytest.mark.slow
def test_compile_reaches_the_rl_learners(tmp_path, monkeypatch):
    """`--compile` compiles the PPO learner in a training run and the PPO and DQN learners in the speed
    profile (a record that says compiled was compiled); acting stays eager."""
    from suite.measuring import speed
    from tasks.atari_rl import AtariRL

    compiled = compile_spy(monkeypatch)
    opts = SuiteOptions(profile="smoke", device="cpu", compile=True, results=tmp_path)
    record = run_one(AtariRL, "ppo_cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["compile"] is True and compiled == ["ActorCritic"]
    monkeypatch.setitem(speed.STEPS, "cpu", speed.Steps(pool=2, warmup=1, measured=2, env_steps=5))
    for model in ("ppo_cnn", "dqn_cnn"):
        compiled.clear()
        opts = SuiteOptions(profile="speed", device="cpu", compile=True, results=tmp_path)
        record = run_one(AtariRL, model, 0, opts, log=lambda _m: None)
        assert record["status"] == "ok", record["error"]
        assert len(compiled) == 1 and record["flops_per_sample"] > 0, (model, compiled)


def test_compile_skips_a_fitted_model_with_the_reason(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", compile=True, results=tmp_path)
    record = run_one(ImageClassification, "logreg_pixels", 0, opts, log=lambda _m: None)
    assert record["status"] == "skipped" and record["config"]["compile"] is True
    assert record["error"] == "--compile: logreg_pixels is fitted, not trained by steps: there is no network to compile"


def test_bf16_autocast_on_cpu_with_a_conv_model(tmp_path):
    """bf16 really runs the convolutions in bf16: the same seed gives other losses than fp32."""
    curves = {}
    for precision in ("fp32", "bf16"):
        opts = SuiteOptions(profile="smoke", device="cpu", precision=precision, results=tmp_path / precision,
                            max_steps=4)
        record = run_one(ImageClassification, "cnn", 0, opts, log=lambda _m: None)
        assert record["status"] == "ok", record["error"]
        assert record["config"]["precision"] == precision
        curves[precision] = [p["train/loss"] for p in record["curve"]]
    assert len(curves["bf16"]) == len(curves["fp32"]) >= 1
    assert curves["bf16"] != curves["fp32"], "bf16 autocast changed nothing: it was not applied"
    assert curves["bf16"] == pytest.approx(curves["fp32"], rel=0.05), "yet it trains the same model"
