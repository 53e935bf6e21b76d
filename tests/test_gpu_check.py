"""scripts/gpu_check.sh runs here with `--device cpu --tiny`, so the GPU check cannot rot between
the machines that have a GPU: every step must exit 0 and leave its records and report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu(tmp_path):
    bundle = tmp_path / "bundle"  # empty: everything is installed here already
    bundle.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "DLBENCH_DATA": str(tmp_path / "data")}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu", "--tiny",
                           str(bundle), str(out)], env=env, capture_output=True, text=True, timeout=600)
    log = (out / "gpu_check.log").read_text()
    steps = log.split("== steps")[-1]
    assert done.returncode == 0, steps[:2000] + "\n...\n" + log[-2000:]
    assert "smoke suite" in steps and "speed fp32" in steps and "harness overhead" in steps
    assert all(" exit   0 " in line for line in steps.splitlines()[1:] if " exit " in line), steps
    records = [json.loads(p.read_text()) for p in (out / "results" / "runs").glob("*.json")]
    assert {r["profile"] for r in records} >= {"smoke", "speed"}
    assert {r["task"] for r in records if r["profile"] == "smoke"} >= {
        "image_classification", "sentiment", "speech_recognition", "keyword_spotting", "atari_rl"}
    assert all(r["hardware"]["device"] == "cpu" for r in records)
    assert (out / "report.html").stat().st_size > 1000
    overhead = json.loads((out / "harness_overhead.json").read_text())
    assert len(overhead["reps"]) == 1 and overhead["summary"]["median"] == overhead["reps"][0]["ratio"] > 0
    assert "| task |" in log.split("== steps")[1]  # the comparison table closes the log


def run_cuda_step(tmp_path: Path, step: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run one of the check's CUDA-only steps (`--only STEP --device cuda`); its exit and the records it left."""
    out = tmp_path / "out"
    (tmp_path / "bundle").mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "DLBENCH_DATA": str(tmp_path / "data")}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cuda", "--only",
                           step, str(tmp_path / "bundle"), str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    log = (out / "gpu_check.log").read_text()
    assert step in log.split("== steps")[-1], log[-2000:]
    return done, [json.loads(p.read_text()) for p in (out / "results" / "runs").glob("*.json")]


def skipped_for_want_of_cuda(done: subprocess.CompletedProcess, records: list[dict]) -> bool:
    """On a machine without CUDA: exit 0 and every run `skipped` with the reason (True); on one with CUDA
    nothing to say here (False)."""
    import torch

    if torch.cuda.is_available():
        return False
    assert done.returncode == 0 and {r["status"] for r in records} == {"skipped"}
    assert all("no CUDA device" in r["error"] for r in records)
    return True


def test_resnet9_step_runs_its_four_configurations(tmp_path):
    """The CUDA-only step that measures ResNet-9 against 40% of the peak: captured and compiled + captured
    at the recipe's batch, and eager, captured and compiled + captured at 1,024, each a run of its own. Asked for CUDA on a machine
    without one, each run is a `skipped` record with the reason; the records' settings are checked."""
    done, records = run_cuda_step(tmp_path, "resnet9 utilisation")
    seen = sorted((r["config"]["recipe"]["batch_size"], bool(r["config"].get("cuda_graphs")), r["config"]["compile"])
                  for r in records)
    assert seen == [(512, True, False), (512, True, True), (1024, False, False), (1024, True, False),
                    (1024, True, True)], seen
    assert {(r["task"], r["model"], r["profile"], r["config"]["precision"]) for r in records} == {
        ("image_classification", "cnn", "speed", "bf16")}
    skipped_for_want_of_cuda(done, records)


def test_quick_captured_step_asks_for_graphs_on_the_three_quick_tasks(tmp_path):
    """The CUDA-only step that times the quick profile with captured steps: one run per task whose data
    travels in the bundle, each keyed `cuda_graphs`. On a machine without CUDA each is `skipped` with the
    reason, before any data is built."""
    done, records = run_cuda_step(tmp_path, "quick captured")
    assert sorted((r["task"], r["model"], r["profile"], r["config"].get("cuda_graphs")) for r in records) == [
        ("atari_rl", "ppo_cnn", "quick", True), ("image_classification", "cnn", "quick", True),
        ("keyword_spotting", "ds_cnn", "quick", True)]
    if skipped_for_want_of_cuda(done, records):
        assert not any(p.is_file() for p in (tmp_path / "data").rglob("*")), "no data built for a skipped run"


def test_gpu_check_rejects_bad_flags(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "tpu", "a", "b"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "use cuda or cpu" in done.stderr
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "only-one-arg"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage" in done.stderr
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--only", "cuda tests,smoke", "a", "b"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "no step 'smoke'" in done.stderr


def test_harness_overhead_figure_is_the_median_with_its_interval():
    """bench/harness_overhead.py's verdicts: the median of the per-rep ratios; from 5 reps on its spread
    is the bootstrap interval of that median (narrower than the reps' range), below that the range."""
    from tests.helpers import load_script

    bench = load_script("bench/harness_overhead.py", "harness_overhead")
    ratios = [0.90, 0.975, 0.98, 0.985, 0.99, 0.995, 1.05]
    figure = bench.summary(ratios)
    assert figure["median"] == 0.985 and figure["meets_goal"]
    assert figure["spread_kind"] == "95% CI" and 0.90 < figure["low"] < figure["high"] < 1.05
    assert figure["precision"] == (figure["high"] - figure["low"]) / 0.985 and figure["precise"]
    few = bench.summary([0.92, 0.973])  # the two reps a cut-off H200 run left: a range, 5.5% wide
    assert few["spread_kind"] == "range" and (few["low"], few["high"]) == (0.92, 0.973)
    assert not few["precise"] and not few["meets_goal"]
    assert not bench.summary([0.99])["precise"]  # one rep says nothing of its noise
