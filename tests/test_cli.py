"""The command line end to end, in subprocesses, as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
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
    assert "legend: median" in text.stdout and "train + evaluation time" in text.stdout
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
        (["run_all.py", "--set", "task.nosuch=1"],
         "no selected task has this option; valid: task.feature_cache, task.pretrained"),
        (["-m", "suite.cli", "run", "image_classification", "--set", "task.pretrained=x"],
         "valid: (the selected tasks declare no options)"),
        (["run_all.py", "--set", "pretrained=x"], "use NAMESPACE.KEY=VALUE"),
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


def test_list_shows_tasks_models_targets_run_time_and_download_in_aligned_columns():
    done = run("-m", "suite.cli", "list", "--profile", "full")
    assert done.returncode == 0, done.stderr
    assert "image_classification" in done.stdout and "[default]" in done.stdout
    lines = done.stdout.splitlines()
    full = next(i for i, line in enumerate(lines) if line.startswith("  full ") and " cifar10 " in line)
    header = lines[full - 1]  # --profile full: the header, then the one row
    assert header.startswith("  profile ")
    assert lines[full].index("val/accuracy >= 0.94") == header.index("target"), "columns start under their header"
    assert lines[full][header.index("download"):].startswith("163 MB")
    speech = next(line for line in lines if " librispeech_100h " in line)
    assert speech.index("val/wer") == header.index("target"), "long dataset names keep the columns aligned"
    assert "option task.pretrained (str, default None):" in done.stdout

    as_json = run("-m", "suite.cli", "list", "--json")
    listing = json.loads(as_json.stdout)
    tasks = {t["name"]: t for t in listing["tasks"]}
    assert tasks["image_classification"]["profiles"]["full"]["download_mb"] == 163
    assert tasks["image_classification"]["profiles"]["quick"]["target"]["value"] == 0.9
    assert set(tasks["atari_rl"]["profiles"]) == {"smoke", "quick", "full", "speed"}
    assert tasks["atari_rl"]["profiles"]["speed"]["target"] is None
    assert tasks["sentiment"]["options"][0]["name"] == "pretrained"


def test_help_shows_choices_single_defaults_and_the_positional_task():
    done = run("-m", "suite.cli", "run", "--help")
    text = " ".join(done.stdout.split())
    assert done.returncode == 0
    assert "{smoke,quick,full,speed}" in text and "{auto,bf16,fp32}" in text
    assert "(default: None)" not in text and "default: default" not in text
    assert "the task to run" in text
    assert "--max-time-s MAX_TIME_S cap every run's train time" in text
    assert "--set KEY=VALUE" in text


def test_compare_on_an_empty_folder_says_so(tmp_path):
    done = run("-m", "suite.cli", "compare", str(tmp_path))
    assert done.returncode == 1 and "no comparable runs" in done.stderr


def test_dlbench_run_writes_the_report_as_run_all_does(tmp_path):
    done = run("-m", "suite.cli", "run", "toy_linear", "--tasks-from", "tests.toy_tasks", "--profile", "smoke",
               "--results", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "report.html").is_file() and f"report: {tmp_path / 'report.html'}" in done.stdout


def test_a_flag_that_is_not_spelt_out_is_an_error_not_a_longer_flag(capsys, tmp_path):
    from suite.cli.commands import main, main_run_all

    # argparse's prefix matching read `--seed 3` as `--seeds 3`: three seeds, 0..2, where seed 3 was meant
    toy = ["--profile", "smoke", "--tasks-from", "tests.toy_tasks", "--results", str(tmp_path)]
    for entry, argv, flag in [(main_run_all, ["--seed", "3", "--tasks", "toy_linear", *toy], "--seed"),
                              (main, ["run", "toy_linear", "--seed", "3", *toy], "--seed"),
                              (main, ["list", "--tasks", "sentiment"], "--tasks"),
                              (main, ["compare", str(tmp_path), "--fail", "0.9"], "--fail")]:
        with pytest.raises(SystemExit) as stop:
            entry(argv)
        assert stop.value.code == 2, argv
        assert f"unrecognized arguments: {flag}" in capsys.readouterr().err, argv
    assert not (tmp_path / "runs").exists()


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly():
    # `dlbench list | head -0`: the reading end is gone before the command writes its first line
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "suite.cli", "list"], cwd=ROOT, env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr
