"""CUDA only: every task x model trains on the GPU with no host sync inside its train steps,
and the speed profile runs there. Without CUDA every test here skips (tests/conftest.py).

The harness wraps each train step (batch, forward, backward, optimizer; PPO's and DQN's learner
updates) in `torch.cuda.set_sync_debug_mode($DLBENCH_SYNC_DEBUG)` (`suite.running.device.no_host_sync`);
eval points, logging and RL acting (environments live on the CPU) stay outside. With "error"
a host sync inside a step raises, so the run is recorded as failed and the test names it.
A few models sync inside their own code or loss, not in the harness (`MODEL_SYNCS`, with the
reason); they run under "warn" and must still finish.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from suite.measuring import speed
from suite.taskapi import registry
from suite.running.config import SuiteOptions
from suite.taskapi.models import is_estimator
from suite.running.run_record import ESTIMATOR_UTILISATION_NOTE
from suite.running.runner import SYNC_DEBUG_ENV, run_one

pytestmark = pytest.mark.cuda

TASKS = {name: cls for name, cls in registry.load_tasks().items() if not cls.__module__.startswith("tests.")}
CASES = [(name, model) for name, cls in sorted(TASKS.items()) for model in cls.models]
# Fitted estimators and rules (suite.training.estimator) take no torch training steps: no speed run, no utilisation.
LOOP_CASES = [(name, model) for name, model in CASES if not is_estimator(TASKS[name], model)]
_HF_MASK = "transformers tests attention_mask.all() on the host to skip the mask (masking_utils)"
MODEL_SYNCS = {
    ("sentiment", "bilstm"): "pack_padded_sequence takes the lengths on the host (graphs.host_values)",
    ("sentiment", "tiny_bert"): _HF_MASK,
    ("sentiment", "minilm_finetune"): _HF_MASK,
    ("speech_recognition", "ctc_bigru"): "F.ctc_loss copies input and target lengths to the host on CUDA",
    ("speech_recognition", "conformer_ctc"): "F.ctc_loss's lengths; torchaudio's Conformer takes lengths.max().item()",
    ("speech_recognition", "mfcc_linear_ctc"): "F.ctc_loss copies input and target lengths to the host on CUDA",
}


def _run(name: str, model: str, profile: str, results, monkeypatch, precision: str = "bf16") -> dict:
    mode = "warn" if (name, model) in MODEL_SYNCS else "error"
    monkeypatch.setenv(SYNC_DEBUG_ENV, mode)
    opts = SuiteOptions(profile=profile, device="cuda", precision=precision, results=results)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "warn" mode: the known syncs of MODEL_SYNCS
        record = run_one(TASKS[name], model, 0, opts, log=lambda _m: None)
    assert torch.cuda.get_sync_debug_mode() == 0, "the sync debug mode must be restored after the steps"
    if record["status"] == "skipped":
        pytest.skip(record["error"])  # e.g. minilm_finetune's weights package is not on this machine
    assert record["status"] == "ok", f"{name}/{model} ({profile}, sync debug {mode}): {record['error']}"
    assert record["hardware"]["device"].startswith("cuda")
    if is_estimator(TASKS[name], model):
        assert record["utilisation"] is None and record["utilisation_note"] == ESTIMATOR_UTILISATION_NOTE
        return record
    assert record["utilisation"] is not None, record["utilisation_note"]
    assert 0 < record["utilisation"] <= 1
    assert record["hardware"]["peak_flops"][precision] > 0
    assert record["peak_mem_mb"] > 0
    return record


@pytest.mark.parametrize("name,model", CASES)
def test_smoke_steps_on_cuda_never_wait_on_the_host(name, model, results_dir, monkeypatch):
    record = _run(name, model, "smoke", results_dir, monkeypatch)
    if is_estimator(TASKS[name], model):
        assert record["train_time_s"] >= 0 and record["final_metrics"]  # a rule trains for 0 s
    else:
        assert record["train_time_s"] > 0 and record["throughput"]["value"] > 0


@pytest.mark.parametrize("name,model", LOOP_CASES)
def test_speed_profile_on_cuda(name, model, results_dir, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cuda", speed.Steps(pool=2, warmup=2, measured=3, env_steps=20))
    record = _run(name, model, "speed", results_dir, monkeypatch)
    assert record["target"] is None and record["reached_target"] is None
    assert record["speed"]["steps"] == 3
    assert 0 < record["speed"]["step_time_median_s"] <= record["speed"]["step_time_p90_s"]
    if TASKS[name].kind == "rl":
        assert record["throughput"]["extra"]["env_steps/s"] > 0


def test_speed_profile_on_cuda_in_fp32(results_dir, monkeypatch):
    monkeypatch.setitem(speed.STEPS, "cuda", speed.Steps(pool=2, warmup=2, measured=3, env_steps=20))
    record = _run("image_classification", "cnn", "speed", results_dir, monkeypatch, precision="fp32")
    assert record["config"]["precision"] == "fp32"
