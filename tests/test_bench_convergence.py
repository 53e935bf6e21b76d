"""bench/convergence.py: the seeds shared out over --jobs processes, recipe variants (--set), and the command a
reference records."""
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
                results=Path("/tmp/r"), jobs=1, set=[])
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


def test_a_variant_reaches_every_run_and_the_recorded_command(bench, monkeypatch):
    started = []
    monkeypatch.setattr(bench.subprocess, "run", lambda command, **_kw: started.append(command))
    args = namespace(set=["recipe.ema_decay=0.9", "recipe.lr=1e-4"])
    bench.run_seeds("toy", "m", args, None)
    command = started[0]
    assert [command[i + 1] for i, part in enumerate(command) if part == "--set"] == args.set
    assert bench.run_command(args).endswith("--set recipe.ema_decay=0.9 --set recipe.lr=1e-4")


def test_a_variant_is_not_written_as_the_tasks_reference(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["sentiment", "--set", "recipe.ema_decay=0.9", "--write", "--no-run"])
    assert exc.value.code == 2 and "--write stores the reference of the task's own recipe" in capsys.readouterr().err


def test_a_variant_reads_only_the_records_of_its_own_values(bench, tmp_path, capsys):
    from suite.taskapi import registry
    from tests.helpers import make_record, write_all

    ToyLinear = registry.load_tasks(["tests.toy_tasks"])["toy_linear"]  # registered again after any reset

    def record(seed: int, overrides: dict | None) -> dict:
        config = {"budget": {"max_steps": 20}, "seed": seed, "precision": "fp32",
                  **({"overrides": overrides} if overrides else {})}
        return make_record(task="toy_linear", model="linear", seed=seed, version=ToyLinear.version, target=0.95,
                           profile="quick", config=config, run_id=f"r{seed}")

    write_all(tmp_path / "runs", [record(0, {"recipe.lr": 0.05}), record(1, {"recipe.lr": 0.5}), record(2, None)])
    code = bench.main(["toy_linear", "--seeds", "3", "--no-run", "--results", str(tmp_path), "--set", "recipe.lr=0.05"])
    assert code == 0 and "toy_linear / linear, profile quick, 1 records" in capsys.readouterr().out
    assert bench.main(["toy_linear", "--seeds", "3", "--no-run", "--results", str(tmp_path)]) == 0
    assert ", 1 records" in capsys.readouterr().out  # the recipe's own: the run without --set
