"""suite.running.allocator: freed memory is kept and reused, so a training step stops faulting its buffers in again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A fresh process each: the thresholds are set once per process and glibc cannot be put back.
# 40 MB is above glibc's largest dynamic mmap threshold (32 MiB), so by default every such block
# is mapped on allocation and unmapped on free: each of the 20 steps faults its 10k pages in again.
STEPS = """
import json, resource, sys, torch
from suite.running.allocator import keep_freed_memory
state = keep_freed_memory()
def step():
    buffer = torch.empty(10_000_000).fill_(1.0)  # 40 MB, touched like an activation
    del buffer
for _ in range(6):  # warm-up: the heap grows to hold the block (glibc 2.36: 4 steps)
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(json.dumps({"state": state, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def in_fresh_process(code: str, malloc: str) -> dict:
    """Run `code` in a new Python with DLBENCH_MALLOC=`malloc`; the JSON its last line prints."""
    env = dict(os.environ, DLBENCH_MALLOC=malloc, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_kept_memory_is_reused_instead_of_faulted_in_every_step():
    default, tuned = in_fresh_process(STEPS, "default"), in_fresh_process(STEPS, "")
    assert default["state"] == "glibc defaults (DLBENCH_MALLOC=default)"
    assert tuned["state"].startswith("glibc, freed memory kept (mmap threshold 64 MiB")
    # after warm-up, measured: default ~195k faults (20 steps x 9.8k pages), tuned 0 to one step's 9.8k
    # (glibc still grows the heap once in a while as the block lands in a new place)
    assert default["faults"] > 20 * 5_000, default
    assert tuned["faults"] * 5 < default["faults"], (tuned, default)


def test_the_state_is_set_once_per_process_and_said_the_same_way_after(monkeypatch):
    from suite.running import allocator

    monkeypatch.setattr(allocator, "_state", None)
    monkeypatch.setattr(allocator, "_kept", False)
    monkeypatch.setenv(allocator.ENV, "Default ")
    first = allocator.keep_freed_memory()
    monkeypatch.setenv(allocator.ENV, "")
    assert allocator.keep_freed_memory() == first, "a later call reports what the first did"
    assert "defaults" in first
    assert allocator.release_freed_memory() is False, "nothing is kept, so nothing to hand back"


# 200 blocks of 1 MB, freed: with freed memory kept they stay in the process until released.
KEPT = """
import json, torch
from suite.running.allocator import keep_freed_memory, release_freed_memory
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
keep_freed_memory()
blocks = [torch.ones(250_000) for _ in range(200)]
held = rss_mb()
del blocks
kept = rss_mb()
released = release_freed_memory()
print(json.dumps({"held": held, "kept": kept, "after": rss_mb(), "released": released}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc: Linux only")
def test_memory_kept_by_one_run_is_handed_back_before_the_next():
    mb = in_fresh_process(KEPT, "")
    assert mb["kept"] > mb["held"] - 20, f"freed blocks stay with the process while kept: {mb}"
    assert mb["released"] and mb["after"] < mb["kept"] - 150, f"release hands the ~200 MB back: {mb}"


def test_the_bench_runs_each_side_in_a_fresh_process_with_its_allocator(tmp_path):
    """bench/malloc_tuning.py: one run_all.py process per side; the records say which allocator ran."""
    from tests.helpers import load_script

    bench = load_script("bench/malloc_tuning.py", "malloc_tuning_bench")
    sides = {side: bench.run_side(side, "atari_rl", "default", "fp32", tmp_path / side, ["--profile", "smoke"])
             for side in bench.SIDES}
    for side, (records, faults) in sides.items():
        assert [r["task"] for r in records] == ["atari_rl"] and records[0]["status"] == "ok", side
        assert faults > 0, "the child's page faults are counted"
    default, tuned = (bench.figures(sides[side][0][0]) for side in ("default", "tuned"))
    assert default["malloc"].startswith("glibc defaults") or "platform" in default["malloc"]
    assert tuned["malloc"] != default["malloc"]
    assert default["throughput"] > 0 and tuned["throughput"] > 0
