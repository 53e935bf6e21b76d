"""How runs end: target, budget, divergence, crash, missing device, resume. Each ends as a record."""
from __future__ import annotations

import torch

from suite.results import records
from suite.running.config import SuiteOptions
from suite.running.runner import run_one
import pytest

from tests.toy_tasks import ToyCrash, ToyDiverge, ToyInterrupt, ToyLinear, ToyUnreachable


def test_run_stops_at_the_first_eval_that_meets_the_target(smoke_options):
    record = run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "ok" and record["reached_target"]
    assert record["stop_reason"] == "target"
    hit = [p for p in record["curve"] if p["val/accuracy"] >= 0.95]
    # the run stopped at the first eval point that met the target: it is the last point, and the only hit
    assert hit == [record["curve"][-1]] and len(record["curve"]) >= 2
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
    record = run_one(ToyUnreachable, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok" and record["stop_reason"] == "budget"
    assert not record["reached_target"] and record["time_to_target_s"] is None
    assert record["steps"] == 7 and record["samples"] == 7 * 32
    assert [p["step"] for p in record["curve"]] == [5, 7], "eval every 5 steps, and once more at the budget's end"
    assert record["config"]["max_steps"] == 7


def test_train_time_cap_stops_a_run_with_stop_reason_time(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_time_s=1e-6)
    record = run_one(ToyUnreachable, "linear", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok" and record["stop_reason"] == "time"
    assert record["steps"] == 1 and len(record["curve"]) == 1, "the first step spends the cap; one eval point"


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the path needs a machine without it")
def test_missing_cuda_gives_a_skipped_record(tmp_path):
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
    from suite.running.benchmark import summary_line

    line = summary_line(run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None))
    assert line.startswith("reached val/accuracy 0.95 in ")
    assert "samples/s, " in line and " coords/s)" in line


def test_heartbeat_prints_the_step_rate_and_eta_between_eval_points(tmp_path, monkeypatch):
    import functools

    from suite.training import loop
    from suite.measuring.timing import Heartbeat

    lines = []
    beat = Heartbeat(lines.append, total=100, unit="steps", cap_s=1000.0, every_s=0.0)
    beat.beat(25, 5.0)
    assert lines == ["  ... 25/100 steps, 5.0 steps/s, train 5s, ETA 15s"]
    Heartbeat(lines.append, total=100, unit="steps", cap_s=1000.0, every_s=3600.0).beat(25, 5.0)
    assert len(lines) == 1, "not due yet: nothing printed"

    monkeypatch.setattr(loop, "Heartbeat", functools.partial(Heartbeat, every_s=0.0))
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=7)
    messages = []
    run_one(ToyUnreachable, "linear", 0, opts, log=messages.append)
    beats = [m for m in messages if m.startswith("  ... ")]
    assert [m.split()[1] for m in beats] == ["1/7", "2/7", "3/7", "4/7", "6/7"], "every step that is no eval point"
