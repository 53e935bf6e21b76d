"""GPU-first code paths exercised on CPU where torch allows: channels_last, torch.compile, bf16."""
from __future__ import annotations

import pytest
import torch

from suite.config import SuiteOptions
from suite.data import TensorSource
from suite.runner import run_one
from tasks.image_classification import ImageClassification, cnn


def test_channels_last_placement_keeps_batches_nhwc_and_results_equal():
    torch.manual_seed(0)
    source = TensorSource(x=torch.randn(64, 1, 28, 28), y=torch.randint(0, 10, (64,)))
    nhwc = source.to(torch.device("cpu"), channels_last=True)
    batch = next(nhwc.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert batch["x"].is_contiguous(memory_format=torch.channels_last)
    assert batch["y"].dtype == torch.long
    model = cnn(1, 28, 10, width=8).eval()
    reference = model(next(source.batches(16))["x"])
    model_nhwc = model.to(memory_format=torch.channels_last)
    out = model_nhwc(next(nhwc.batches(16))["x"])
    assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.slow
def test_compiled_run_on_cpu_matches_the_contract(tmp_path):
    """`--compile` wraps the model in torch.compile; compile time lands in warm-up, not train time."""
    opts = SuiteOptions(profile="smoke", device="cpu", compile=True, results=tmp_path)
    record = run_one(ImageClassification, "mlp", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["compile"] is True
    assert record["warmup_s"] > record["train_time_s"], "the first (compiling) steps are timed as warm-up"


def test_bf16_autocast_on_cpu_with_a_conv_model(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", precision="bf16", results=tmp_path)
    record = run_one(ImageClassification, "cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["config"]["precision"] == "bf16"
    assert 0.0 <= record["final_metrics"]["test/accuracy"] <= 1.0
