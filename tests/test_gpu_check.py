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
    assert "| task |" in log.split("== steps")[1]  # the comparison table closes the log


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
