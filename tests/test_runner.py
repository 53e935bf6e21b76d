"""How runs end: target, budget, divergence, crash, missing device, resume. Each ends as a record."""
from __future__ import annotations

import torch

from suite import records
from suite.config import SuiteOptions
from suite.runner import run_one
import pytest

from tests.toy_tasks import ToyCrash, ToyDiverge, ToyInterrupt, ToyLinear


def test_run_stops_at_the_first_eval_that_meets_the_target(smoke_options):
    record = run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "ok" and record["reached_target"]
    assert record["stop_reason"] == "target"
    hit = [p for p in record["curve"] if p["test/accuracy"] >= 0.95]
    assert hit and record["curve"][-1] is not None
    # time-to-target is the train time of the first eval that met the target, and the run stopped there
    assert record["time_to_target_s"] == hit[0]["time_s"] == record["curve"][-1]["time_s"]
    assert record["steps_to_target"] == hit[0]["step"] and record["steps"] == hit[0]["step"]
    assert record["steps"] % 5 == 0
    assert record["eval_time_s"] > 0 and record["warmup_s"] > 0
    assert record["samples"] == 32 * record["steps"]
    assert record["params"] == 6
    assert record["flops_per_sample"] and record["flops_per_sample"] > 0
    # the task's own unit (two coordinates per sample) is reported beside samples/s
    tput = record["throughput"]
    assert tput["unit"] == "samples/s"
    assert tput["extra"]["coords/s"] == pytest.approx(2 * tput["value"], rel=1e-3)


def test_ctrl_c_writes_an_interrupted_record_with_the_partial_figures(smoke_options):
    with pytest.raises(KeyboardInterrupt):
        run_one(ToyInterrupt, "linear", 0, smoke_options, log=lambda _m: None)
    [record] = records.read_records([smoke_options.results])
    assert record["status"] == "interrupted" and not record["reached_target"]
    assert record["steps"] == 11 and record["samples"] == 11 * 32  # step 12 never finished
    assert record["train_time_s"] > 0 and record["warmup_s"] > 0
    assert [p["step"] for p in record["curve"]] == [5, 10]
    assert record["data_info"]["train"]["samples"] == 256
    assert records.validate(record) == []


def test_budget_end_without_target(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=7)
    record = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert record["stop_reason"] in ("budget", "target")
    assert record["steps"] <= 7
    assert record["config"]["max_steps"] == 7


def test_non_finite_loss_is_recorded_as_diverged(smoke_options):
    record = run_one(ToyDiverge, "linear", 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "diverged"
    assert "non-finite" in record["error"]
    assert not record["reached_target"] and record["time_to_target_s"] is None


def test_crash_becomes_a_failed_record_with_a_one_line_error(smoke_options):
    record = run_one(ToyCrash, "linear", 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: disk on fire"
    assert records.validate(records.read_records([smoke_options.results])[0]) == []


def test_missing_cuda_gives_a_skipped_record(tmp_path):
    if torch.cuda.is_available():
        return  # this machine has CUDA: the skip path is exercised on machines without it
    opts = SuiteOptions(profile="smoke", device="cuda", results=tmp_path)
    record = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "skipped"
    assert "no CUDA device" in record["error"]
    assert records.read_records([tmp_path])[0]["status"] == "skipped"


def test_same_seed_gives_the_same_curve(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=10)
    first = run_one(ToyLinear, "linear", 3, opts, log=lambda _m: None)
    second = run_one(ToyLinear, "linear", 3, opts, log=lambda _m: None)
    strip = lambda curve: [{k: v for k, v in p.items() if k != "time_s"} for p in curve]  # noqa: E731
    assert strip(first["curve"]) == strip(second["curve"])
    other = run_one(ToyLinear, "linear", 4, opts, log=lambda _m: None)
    assert strip(other["curve"]) != strip(first["curve"])


def test_resume_skips_a_finished_run_with_the_same_config(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, resume=True)
    first = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    messages = []
    again = run_one(ToyLinear, "linear", 0, opts, log=messages.append)
    assert again["run_id"] == first["run_id"]
    assert any("resume" in m for m in messages)
    other_seed = run_one(ToyLinear, "linear", 1, opts, log=lambda _m: None)
    assert other_seed["run_id"] != first["run_id"]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2


def test_bf16_autocast_runs_on_cpu(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", precision="bf16", results=tmp_path, max_steps=5)
    record = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok" and record["config"]["precision"] == "bf16"


def test_summary_line_shows_the_task_units_beside_samples_per_second(smoke_options):
    from suite.benchmark import summary_line

    line = summary_line(run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None))
    assert line.startswith("reached test/accuracy 0.95 in ")
    assert "samples/s, " in line and " coords/s)" in line
