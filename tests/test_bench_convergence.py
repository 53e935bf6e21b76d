"""bench/convergence.py: the seeds shared out over --jobs processes, and the command a reference records."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench/convergence.py", "bench_convergence")


def namespace(**kw) -> argparse.Namespace:
    base = dict(task="toy", profile="quick", seeds=10, model=None, candidates="", precision="auto",
                results=Path("/tmp/r"), jobs=1)
    return argparse.Namespace(**{**base, **kw})


def test_jobs_start_that_many_resuming_run_all_processes_with_a_share_of_the_cores(bench, monkeypatch):
    started = []

    class FakePopen:
        def __init__(self, command, cwd, env):
            started.append((command, env["OMP_NUM_THREADS"]))

        def wait(self):
            return 0

    monkeypatch.setattr(bench.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 4)
    bench.run_seeds("toy", "m", namespace(jobs=2), 0.9)
    assert len(started) == 2
    assert all(threads == "2" for _, threads in started)
    command = started[0][0]
    assert "--resume" in command and command[command.index("--seeds") + 1] == "10"
    assert command[command.index("--target-value") + 1] == "0.9"


def test_the_recorded_command_names_jobs_only_when_more_than_one(bench):
    assert "--jobs" not in bench.run_command(namespace())
    assert bench.run_command(namespace(jobs=4)).endswith("--jobs 4")


def test_jobs_below_one_is_a_usage_error(bench):
    with pytest.raises(SystemExit) as exc:
        bench.main(["sentiment", "--jobs", "0", "--no-run"])
    assert exc.value.code == 2
