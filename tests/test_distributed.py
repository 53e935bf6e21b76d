"""Data-parallel runs under torchrun (gloo on CPU): rank 0 writes one record with the world size."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


TOY_SMOKE = ("--profile", "smoke", "--tasks-from", "tests.toy_tasks", "--tasks", "toy_linear")


def torchrun(ranks: int, port: int, results: Path, run: tuple[str, ...] = TOY_SMOKE,
             status: int = 0) -> subprocess.CompletedProcess:
    """`run_all.py RUN` (the toy task's smoke run) under torchrun with `ranks` CPU processes (gloo),
    expected to end with exit status `status`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", f"--master_port={port}",
         "run_all.py", *run, "--device", "cpu", "--results", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == status, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_torchrun_two_processes_write_one_record(tmp_path):
    done = torchrun(2, 29517, tmp_path)
    lines = done.stdout.splitlines()
    # rank 0 speaks for the run: one header, one summary, not one of each per rank
    assert sum(line.startswith("[1/1] toy_linear") for line in lines) == 1, done.stdout
    assert sum("-> " in line for line in lines) == 1, done.stdout
    files = list((tmp_path / "runs").glob("*.json"))
    assert len(files) == 1, "only rank 0 writes the record"
    record = json.loads(files[0].read_text())
    assert record["status"] == "ok" and record["world_size"] == 2
    assert record["config"]["world_size"] == 2
    # each rank trains on half of every global batch of 32; samples count the global batch
    assert record["samples"] == 32 * record["steps"]


def test_a_global_batch_that_does_not_divide_by_the_ranks_trains_even_slices(tmp_path):
    # 32 items over 3 ranks: every rank takes 10 of the batch cut to 30 and counts 30 samples a step, so the
    # three reach each evaluation point at the same step (uneven slices of 11/11/10 counted as slice x 3
    # sent rank 0 to evaluate while the others waited in the gradient all-reduce: a hang).
    torchrun(3, 29518, tmp_path)
    record = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    assert record["status"] == "ok" and record["world_size"] == 3
    assert record["samples"] == 30 * record["steps"]


def test_a_speed_run_times_the_same_steps_on_every_rank(tmp_path):
    # The speed profile times steps for a minimum wall time: ranks counting on their own clocks stopped
    # at different steps, and the one still stepping died in the all-reduce its peers had left.
    torchrun(2, 29519, tmp_path, ("--profile", "speed", "--tasks", "image_classification", "--models", "mlp"))
    record = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    assert record["status"] == "ok" and record["world_size"] == 2, record["error"]
    assert record["speed"]["steps"] > record["speed"]["min_steps"]
    assert record["samples"] == 2 * record["speed"]["batch_size"] * record["speed"]["steps"]


def test_every_rank_slice_of_a_batch_has_the_same_size():
    import torch

    from suite.taskapi.data import length_batches, rank_slice

    batch = torch.arange(64)
    slices = [rank_slice(batch, (rank, 3)) for rank in range(3)]
    assert [len(s) for s in slices] == [21, 21, 21]
    assert sorted(torch.cat(slices).tolist()) == list(range(63))  # disjoint: one item of 64 left out
    assert rank_slice(torch.arange(2), (0, 3)) is None  # smaller than the world: every rank skips it
    assert rank_slice(batch, (0, 1)) is batch
    lengths = torch.arange(1, 101)
    sizes = {rank: [len(idx) for idx, _ in length_batches(lengths, 32, 2, shuffle=True,
                                                          generator=torch.Generator().manual_seed(0),
                                                          drop_last=False, shard=(rank, 3))] for rank in range(3)}
    # 100 = 3 x 32 + 4: each 32 gives 10 a rank, the last 4 gives 1 a rank
    assert sizes[0] == sizes[1] == sizes[2] and sorted(sizes[0]) == [1, 10, 10, 10]


def test_a_rank_other_than_0_says_only_which_of_its_runs_failed(tmp_path, monkeypatch):
    from suite.running.benchmark import run_suite
    from suite.running.config import SuiteOptions

    monkeypatch.setenv("RANK", "1")
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=5, tasks_from=["tests.toy_tasks"],
                        tasks=["toy_linear", "toy_crash"])
    lines: list[str] = []
    records, code = run_suite(opts, log=lines.append)
    assert code == 1 and sorted(r["status"] for r in records) == ["failed", "ok"]
    assert lines == ["rank 1: toy_crash / linear seed 0 -> failed: RuntimeError: disk on fire"], lines


def test_a_failed_run_under_torchrun_leaves_rank_0_time_to_write_the_tables_and_report(tmp_path):
    # Each rank ends with status 1; torchrun stops the remaining ranks when the first one exits, which
    # cut rank 0 off before its tables and report were written.
    done = torchrun(2, 29520, tmp_path, ("--profile", "smoke", "--tasks-from", "tests.toy_tasks", "--tasks",
                                         "toy_linear,toy_crash"), status=1)
    assert "terminated" not in done.stderr, done.stderr[-2000:]
    assert (tmp_path / "report.html").is_file() and (tmp_path / "tables" / "by_model.csv").is_file()
    assert sorted(json.loads(p.read_text())["status"] for p in (tmp_path / "runs").glob("*.json")) == ["failed", "ok"]


def test_a_sweep_on_a_rank_other_than_0_prints_nothing_when_its_runs_succeed(tmp_path, monkeypatch):
    from suite.running import sweep
    from suite.running.config import SuiteOptions
    from suite.taskapi import registry

    registry.load_tasks(["tests.toy_tasks"])
    monkeypatch.setenv("RANK", "1")
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=5, tasks_from=["tests.toy_tasks"],
                        tasks=["toy_linear"], models="linear")
    lines: list[str] = []
    records, code = sweep.run_sweep(opts, sweep.parse_axes(["recipe.lr=0.1,0.2"]), log=lines.append)
    assert code == 0 and len(records) == 2 and lines == []
