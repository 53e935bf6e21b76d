"""The command line end to end, in subprocesses, as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def records_in(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


def test_smoke_suite_then_compare(tmp_path):
    results = tmp_path / "results"
    done = run("run_all.py", "--profile", "smoke", "--results", str(results), "--device", "cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = records_in(results)
    assert written and all(r["status"] == "ok" for r in written)
    assert "image_classification" in {r["task"] for r in written}
    table = done.stdout[done.stdout.index("time-to-target: train time only"):done.stdout.index("\ntables:")]
    assert "legend: median" in table and max(map(len, table.splitlines())) <= 100
    assert (results / "tables" / "by_model.csv").is_file()

    shown = run("-m", "suite.cli", "compare", str(results))
    assert shown.returncode == 0, shown.stderr
    assert "image_classification" in shown.stdout and "cnn" in shown.stdout
    text = run("-m", "suite.cli", "compare", str(results), "--format", "text", "--time", "train+eval")
    assert text.returncode == 0, text.stderr
    assert "legend: median" in text.stdout and "MLPerf rule" in text.stdout
    assert max(map(len, text.stdout.splitlines())) <= 100
    as_csv = run("-m", "suite.cli", "compare", str(results), "--format", "csv", "--by", "hardware")
    assert as_csv.returncode == 0 and as_csv.stdout.splitlines()[0].startswith("task,")


def test_a_crashing_run_does_not_stop_the_suite_and_the_exit_status_says_so(tmp_path):
    done = run("run_all.py", "--profile", "smoke", "--results", str(tmp_path), "--tasks-from", "tests.toy_tasks",
               "--tasks", "toy_crash,toy_linear", "--seeds", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    statuses = sorted((r["task"], r["seed"], r["status"]) for r in records_in(tmp_path))
    assert statuses == [("toy_crash", 0, "failed"), ("toy_crash", 1, "failed"),
                        ("toy_linear", 0, "ok"), ("toy_linear", 1, "ok")]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    cases = [
        (["run_all.py", "--tasks", "image_clasification"], "did you mean image_classification"),
        (["run_all.py", "--seeds", "0"], "seeds=0"),
        (["run_all.py", "--models", "nosuchmodel"], "unknown model"),
        (["-m", "suite.cli", "run", "image_classification", "--model", "cnnn"], "did you mean cnn"),
    ]
    for args, expected in cases:
        done = run(*args, "--results", str(tmp_path / "r"))
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    file = tmp_path / "file"
    file.write_text("x")
    done = run("run_all.py", "--results", str(file))
    assert done.returncode == 2 and "is a file" in done.stderr


def test_list_shows_tasks_models_and_targets():
    done = run("-m", "suite.cli", "list", "--profile", "quick")
    assert done.returncode == 0, done.stderr
    assert "image_classification" in done.stdout and "[default]" in done.stdout
    assert "test/accuracy >= 0.9" in done.stdout


def test_compare_on_an_empty_folder_says_so(tmp_path):
    done = run("-m", "suite.cli", "compare", str(tmp_path))
    assert done.returncode == 1 and "no comparable runs" in done.stderr
