"""Data-parallel runs under torchrun (gloo on CPU): rank 0 writes one record with the world size."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_torchrun_two_processes_write_one_record(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         "run_all.py", "--profile", "smoke", "--tasks-from", "tests.toy_tasks", "--tasks", "toy_linear",
         "--device", "cpu", "--results", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = list((tmp_path / "runs").glob("*.json"))
    assert len(files) == 1, "only rank 0 writes the record"
    record = json.loads(files[0].read_text())
    assert record["status"] == "ok" and record["world_size"] == 2
    assert record["config"]["world_size"] == 2
    # each rank trains on half of every global batch of 32; samples count the global batch
    assert record["samples"] == 32 * record["steps"]
