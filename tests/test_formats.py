"""Formats other tools read: MLPerf-style logs, TensorBoard events, --version; each read back by the tool's own reader."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from suite.reporting import mllog, tboard
from suite.cli import main
from tests.helpers import make_record, write_all
from tests.test_cli import ROOT, run

pytest.importorskip("mlperf_logging", reason="mlperf-logging is in the `all` extra")


def parse_mllog(path: Path):
    """The log through mlperf_logging's own parser: (lines, errors)."""
    from mlperf_logging.compliance_checker.mlp_parser import parse_file

    return parse_file(str(path), ruleset="6.1.0")


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_mllog_from_a_record_is_read_by_mlperf_logging_parser(tmp_path):
    record = make_record(ttt=12.0)
    path = mllog.write_log(record, tmp_path / "run.log")
    lines, errors = parse_mllog(path)
    assert errors == []
    keys = [line.key for line in lines]
    assert keys[0] == "submission_benchmark" and lines[0].value["value"] == "toy"
    assert {"submission_org", "submission_division", "submission_status", "submission_platform", "seed"} <= set(keys)
    assert keys.index("run_start") < keys.index("eval_accuracy") < keys.index("run_stop") == len(keys) - 1
    evals = [(line.value["metadata"]["step_num"], line.value["value"]) for line in lines if line.key == "eval_accuracy"]
    assert evals == [(point["step"], point["test/accuracy"]) for point in record["curve"]]
    samples = [line.value["value"] for line in lines if line.key == "samples"]
    assert samples == [640.0, 1280.0]  # every other metric of each evaluation, under its own key
    stop = lines[-1].value["metadata"]
    assert stop["status"] == "success" and stop["dlbench_status"] == "ok"
    # times come from the record: run_start at started_at, the second evaluation at started_at + its time_s
    assert lines[keys.index("run_start")].timestamp == 1767225600000
    assert [line.timestamp for line in lines if line.key == "eval_accuracy"][-1] == 1767225600000 + 12000
    assert mllog.to_lines(record) == path.read_text().splitlines()  # a pure function of the record


def test_a_missed_target_stops_as_aborted():
    lines = mllog.to_lines(make_record(ttt=None))
    stop = json.loads(lines[-1].removeprefix(":::MLLOG "))
    assert stop["key"] == "run_stop" and stop["metadata"]["status"] == "aborted"


def test_export_mllog_writes_a_log_beside_every_record(tmp_path, capsys):
    folder = write_all(tmp_path / "results", [make_record(seed=s) for s in range(3)])
    assert main(["export", "mllog", str(folder)]) == 0
    logs = sorted((folder / "mllog").glob("*.log"))
    assert [p.stem for p in logs] == sorted(p.stem for p in (folder / "runs").glob("*.json"))
    for log in logs:
        assert parse_mllog(log)[1] == []
    assert "3 run(s) written" in capsys.readouterr().out


def test_tensorboard_events_from_a_record_are_read_by_event_accumulator(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is in the `all` extra")
    record = make_record(ttt=12.0)
    folder = tboard.write_events(record, tmp_path / "tb")
    assert folder == tmp_path / "tb" / record["run_id"] and [p.name for p in (tmp_path / "tb").iterdir()] == [
        record["run_id"]]  # no staging folder left behind
    acc = events(folder)
    curve = [(e.step, pytest.approx(e.value)) for e in acc.Scalars("test/accuracy")]
    assert curve == [(p["step"], p["test/accuracy"]) for p in record["curve"]]
    assert acc.Scalars("outcome/time_to_target_s")[0].value == pytest.approx(12.0)
    text = acc.Tensors("settings/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| model | mlp |" in text and "| profile | smoke |" in text


def test_a_run_writes_its_mllog_and_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is in the `all` extra")
    results, tb = tmp_path / "results", tmp_path / "tb"
    done = run("run_all.py", "--profile", "smoke", "--tasks", "toy_linear", "--tasks-from", "tests.toy_tasks",
               "--results", str(results), "--device", "cpu", "--tensorboard", str(tb))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    record = json.loads(next((results / "runs").glob("*.json")).read_text())
    lines, errors = parse_mllog(results / "mllog" / f"{record['run_id']}.log")
    assert errors == []
    metric = record["target"]["metric"]
    assert [line.value["value"] for line in lines if line.key == "eval_accuracy"] == pytest.approx(
        [point[metric] for point in record["curve"]])
    acc = events(tb / record["run_id"])
    assert [e.step for e in acc.Scalars(metric)] == [point["step"] for point in record["curve"]]


def test_tensorboard_flag_refuses_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    done = run("run_all.py", "--profile", "smoke", "--tasks", "toy_linear", "--tasks-from", "tests.toy_tasks",
               "--results", str(tmp_path / "r"), "--tensorboard", str(target))
    assert done.returncode == 2 and "tensorboard" in done.stderr and not (tmp_path / "r" / "runs").exists()


@pytest.mark.parametrize("argv", [["run_all.py"], ["-m", "suite.cli"]])
def test_version_names_the_package_version_and_commit(argv):
    from importlib import metadata

    done = run(*argv, "--version")
    assert done.returncode == 0, done.stderr
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    version = metadata.version("dlbench")
    assert re.fullmatch(rf"(run_all\.py|dlbench) {re.escape(version)} \(git {commit}\)\n", done.stdout)


def test_compare_writes_one_tidy_row_per_run_as_parquet_and_csv(tmp_path):
    import pandas as pd

    from suite import api

    folder = write_all(tmp_path / "results", [make_record(seed=s, hardware=h) for s in range(3) for h in "AB"])
    assert main(["compare", str(folder), "--format", "parquet", "--out", str(tmp_path / "runs.parquet")]) == 0
    assert main(["compare", str(folder), "--format", "csv", "--out", str(tmp_path / "runs.csv")]) == 0
    frame = pd.read_parquet(tmp_path / "runs.parquet")
    assert len(frame) == 6 and frame["run_id"].is_unique
    assert sorted(zip(frame["hardware"], frame["seed"])) == [(h, s) for h in "AB" for s in range(3)]
    assert list(pd.read_csv(tmp_path / "runs.csv")["run_id"]) == list(frame["run_id"])
    loaded = api.load_records(folder)
    assert list(loaded.columns) == list(frame.columns) and sorted(loaded["run_id"]) == sorted(frame["run_id"])
    assert loaded["time_to_target_s"].tolist() == pytest.approx([10.0] * 6)


def test_parquet_without_a_file_name_is_bad_input(tmp_path, capsys):
    folder = write_all(tmp_path / "results", [make_record()])
    assert main(["compare", str(folder), "--format", "parquet"]) == 2
    assert "--out FILE.parquet" in capsys.readouterr().err


def test_api_run_refuses_an_unknown_flag():
    from suite import api
    from suite.errors import ConfigError

    with pytest.raises(ConfigError, match="profil.*not a run flag.*profile"):
        api.run(profil="smoke")
