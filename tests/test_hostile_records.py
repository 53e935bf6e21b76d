"""Hostile records and faults at the wrong moment: records that contradict themselves, runs counted twice,
signals during the record's write, fields over the schema's limits. Each case ends as one line and the right
exit status, or as a kept record; an inconsistent record is unfit with its reason and never reaches a table.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_record, write_all

from suite import cli
from suite.measuring import peak
from suite.results import check, compare, records, stats
from suite.running import runner, sweep
from suite.running.config import SuiteOptions
from suite.errors import ConfigError, Terminated
from suite.running.runner import run_one
from tests.toy_tasks import ToyLinear, ToySignalled

ROOT = Path(__file__).resolve().parent.parent
TOYS = ["--tasks-from", "tests.toy_tasks", "--device", "cpu", "--profile", "smoke"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def runs_in(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]


# -- a record is written only if its readers accept it ------------------------------------------------------
def test_a_hardware_label_longer_than_the_schema_takes_is_refused_before_any_run(tmp_path, capsys):
    results = tmp_path / "r"
    assert cli.main_run_all([*TOYS, "--tasks", "toy_linear", "--results", str(results),
                             "--hardware-label", "x" * 201]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "hardware_label" in err and "at most 200" in err
    assert not (results / "runs").exists() or not runs_in(results)


def test_a_field_over_the_schema_limit_is_cut_with_a_note_when_written(tmp_path):
    record = make_record()
    record["hardware"]["label"] = "y" * 300
    record["train_time_s"] = 1e305  # over the schema's bound: readers could not sum it
    path = records.write_record(record, tmp_path)
    written = json.loads(path.read_text())
    assert records.validate(written) == [] and len(written["hardware"]["label"]) == 200
    assert written["train_time_s"] is None and len(written["write_notes"]) == 2
    assert [r["run_id"] for r in records.read_records([tmp_path])] == [record["run_id"]]


def test_a_record_that_cannot_fit_its_schema_is_not_written(tmp_path):
    with pytest.raises(records.UnwritableRecord, match="throughput"):
        records.write_record({**make_record(), "throughput": "fast"}, tmp_path)
    assert not list((tmp_path / "runs").glob("*.json"))


@pytest.mark.parametrize("signal_exc", [KeyboardInterrupt(), Terminated("terminated by SIGTERM")])
def test_an_interrupt_while_the_peak_is_measured_leaves_an_interrupted_record(smoke_options, monkeypatch, signal_exc):
    def interrupted(*_a, **_k):
        raise signal_exc

    monkeypatch.setattr(peak, "machine_peak", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None)
    [record] = records.read_records([smoke_options.results])
    assert record["status"] == "interrupted" and "peak" in record["error"]
    assert record["steps"] > 0 and record["train_time_s"] > 0 and records.validate(record) == []
    assert check.assess(record)[0][0].startswith("status interrupted")


def test_a_peak_that_cannot_be_measured_costs_the_figure_not_the_run(smoke_options, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("no matmul today")

    monkeypatch.setattr(peak, "machine_peak", broken)
    record = run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None)
    assert record["status"] == "ok" and record["utilisation"] is None and "no matmul" in record["utilisation_note"]


def test_a_second_ctrl_c_while_the_interrupted_record_is_written_never_loses_it(smoke_options, monkeypatch):
    real_write, writes = records.write_record, []

    def second_ctrl_c_then_write(record, results):
        writes.append(record["status"])
        os.kill(os.getpid(), signal.SIGINT)  # lands in the middle of writing the first one's record
        return real_write(record, results)

    monkeypatch.setattr(records, "write_record", second_ctrl_c_then_write)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run_one(ToySignalled, "linear", 0, smoke_options, log=lambda _m: None)
    [record] = runs_in(smoke_options.results)
    assert writes == ["interrupted"] and record["status"] == "interrupted" and record["steps"] >= 7
    assert signal.getsignal(signal.SIGINT) is before  # the run gave the handler back


def test_a_ctrl_c_during_the_interpreter_exit_prints_no_traceback(tmp_path):
    code = ("import atexit, os, signal, sys\n"
            "from suite import cli\n"
            "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))  # a second Ctrl-C as it exits\n"
            "sys.exit(cli.main_run_all(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", code, *TOYS, "--tasks", "toy_signalled", "--results",
                           str(tmp_path / "r")], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-2000:]
    assert [r["status"] for r in runs_in(tmp_path / "r")] == ["interrupted"]


# -- records that contradict themselves are unfit, with the reason --------------------------------------------
def _with(**fields) -> dict:
    record = make_record(seed=9, run_id="toy.mlp.A.v1.s9.2.11.0")
    for key, value in fields.items():
        if callable(value):
            value(record)
        else:
            record[key] = value
    return record


def _curve_backwards(r):
    r["curve"][0]["time_s"], r["curve"][1]["time_s"] = 9.0, 2.0
    r["time_to_target_s"] = 2.0


def _never_reaches(r):
    r["curve"][1]["test/accuracy"] = 0.10
    r["final_metrics"]["test/accuracy"] = 0.10


def _misses(r):
    r["curve"][1]["test/accuracy"] = 0.5
    r["final_metrics"]["test/accuracy"] = 0.5


INCONSISTENT = {
    "time_to_target_500s_against_0.06s_of_training": (_with(time_to_target_s=500.0, train_time_s=0.06),
                                                     "time_to_target_s 500 is more than train_time_s"),
    "reached_with_final_0.10_under_0.8": (_with(final_metrics={"test/accuracy": 0.10}), "misses"),
    "reached_with_a_curve_that_never_reaches": (_with(_never_reaches=_never_reaches), "no curve point"),
    "curve_time_runs_backwards": (_with(_backwards=_curve_backwards), "runs backwards"),
    "with_eval_below_train_only": (_with(time_to_target_with_eval_s=5.0), "time_to_target_s 10 is more than "
                                                                          "time_to_target_with_eval_s"),
    "steps_to_target_1e6_against_12_steps": (_with(steps_to_target=10 ** 6, steps=12, samples=768),
                                             "steps_to_target 1000000 is more than the run did"),
    "finished_before_started": (_with(finished_at="2025-12-31T23:00:00+00:00"), "before started_at"),
    "accuracy_7.5": (_with(final_metrics={"test/accuracy": 7.5}), "outside [0, 1]"),
    "negative_loss": (_with(final_metrics={"test/accuracy": 0.9, "test/loss": -0.3}), "negative"),
    "accuracy_target_lower_is_better": (_with(target={"metric": "test/accuracy", "value": 0.8,
                                                      "higher_is_better": False, "source": "x"}),
                                        "higher is better"),
    "other_cpu_share_7": (_with(host={"other_cpu_share": 7.0}), "not a share in [0, 1]"),
    "config_hash_mismatch": (_with(config_hash="000000000000"), "does not match the config"),
    "seed_minus_5": (_with(seed=-5, config={"budget": {"max_steps": 20}, "seed": -5}), "seed is -5: negative"),
    "unit_bananas_per_fortnight": (_with(throughput={"value": 3.0, "unit": "bananas/fortnight"}), "bananas"),
    "wall_to_target_below_with_eval": (_with(time_to_target_with_eval_s=11.0, wall_to_target_s=10.5),
                                       "is more than wall_to_target_s"),
    "negative_data_time": (_with(data_s=-1.0), "data_s is -1.0"),
    "zero_seconds_per_step": (_with(seconds_per_step=0.0), "seconds_per_step is 0.0"),
    "steps_past_the_budget": (_with(steps=25, config={"budget": {"max_steps": 20}, "seed": 9}),
                              "more than its budget of 20"),
    "eval_cadence_in_bananas": (_with(eval_cadence={"every": 100, "unit": "bananas"}), "eval_cadence"),
    "not_reached_but_the_curve_meets_the_target": (_with(reached_target=False, time_to_target_s=None,
                                                         stop_reason="budget"), "reached_target is false but"),
    "negative_wer": (_with(final_metrics={"test/accuracy": 0.9, "test/wer": -0.1}), "negative"),
    "run_id_names_another_seed": (_with(run_id="toy.mlp.smoke.s7.20260101T000000.abcdef"), "names seed 7"),
    "not_reached_with_steps_to_target": (_with(reached_target=False, time_to_target_s=None, stop_reason="budget",
                                               steps_to_target=5, _miss=_misses), "steps_to_target is 5"),
    "curve_step_negative": (_with(_negative=lambda r: r["curve"][0].update(step=-10)), "has step -10: negative"),
    "curve_past_the_runs_samples": (_with(_past=lambda r: r["curve"][1].update(samples=99_999)),
                                    "last samples 99999 is past the run's 1280"),
    "curve_past_the_runs_steps": (_with(steps=15, _past=lambda r: r["curve"][1].update(step=20)),
                                  "last step 20 is past the run's 15"),
    "started_at_yesterday": (_with(started_at="yesterday"), "'yesterday' is not an ISO 8601 time"),
    "world_size_0": (_with(world_size=0), "world_size is 0: not a count >= 1"),
    "zero_cores": (_with(_cores=lambda r: r["hardware"].update(cores=0)), "hardware.cores is 0"),
    "negative_gpus": (_with(_gpus=lambda r: r["hardware"].update(gpus=-1)), "hardware.gpus is -1"),
    "negative_ram": (_with(_ram=lambda r: r["hardware"].update(ram_gb=-8.0)), "hardware.ram_gb is -8.0"),
    "negative_peak_flops": (_with(_peak=lambda r: r["hardware"].update(peak_flops={"fp32": -1e9, "bf16": None})),
                            "hardware.peak_flops.fp32 is -1000000000.0"),
    "stop_reason_bananas": (_with(stop_reason="bananas"), "stop_reason 'bananas' is not one"),
}


@pytest.mark.parametrize("name", sorted(INCONSISTENT))
def test_an_inconsistent_record_is_unfit_with_its_reason_and_left_out_of_every_table(tmp_path, capsys, name):
    bad, reason = INCONSISTENT[name]
    folder = write_all(tmp_path / "r", [make_record(seed=0), make_record(seed=1, ttt=12.0)])
    (folder / "runs" / f"{bad['run_id']}.json").write_text(json.dumps(bad))
    assert cli.main(["check", str(folder)]) == 1
    unfit = [line for line in capsys.readouterr().out.splitlines() if line.startswith("unfit")]
    assert unfit and any(reason in line for line in unfit), unfit
    assert sorted(compare.pool([folder]).frame["seed"]) == [0, 1]


def test_a_file_named_for_seed_7_holding_a_seed_0_record_is_unfit(tmp_path, capsys):
    folder = write_all(tmp_path / "r", [make_record(seed=1)])
    (folder / "runs" / "toy.mlp.smoke.s7.20260101T000000.abcdef.json").write_text(json.dumps(make_record(seed=0)))
    assert cli.main(["check", str(folder)]) == 1
    assert "holds run" in capsys.readouterr().out
    assert list(compare.pool([folder]).frame["seed"]) == [1]


def test_resume_runs_again_a_record_that_contradicts_itself(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, resume=True, max_steps=5)
    first = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    path = Path(first["_path"])
    broken = json.loads(path.read_text())
    broken["time_to_target_s"] = broken["train_time_s"] + 500.0
    broken["reached_target"] = True
    path.write_text(json.dumps(broken))
    again = run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert again["run_id"] != first["run_id"]


def test_the_runners_records_are_consistent(smoke_options):
    record = run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None)
    assert check.assess(record) == ([], [])


def test_an_rl_curve_counting_env_steps_past_its_update_count_is_fit():
    """An RL run's curve steps are env steps and its `steps` are updates: the curve is not past the run."""
    record = make_record(steps=8, samples=2048, config={"budget": {"max_env_steps": 4096}, "seed": 0})
    record["curve"][0].update(step=1024, samples=1024)
    record["curve"][1].update(step=2048, samples=2048)
    assert check.assess(record)[0] == []


def test_a_speed_run_stopped_by_its_step_count_is_fit():
    assert check.assess(make_record(ttt=None, stop_reason="steps"))[0] == []


def test_a_plot_labels_each_row_once_however_many_series(monkeypatch):
    """20,000 records make plots of hundreds of rows and many series: each row's label is computed once."""
    import pandas as pd

    from suite.reporting import plots

    rows = 40
    group = pd.DataFrame({"time_to_target_s": [1.0 + i % 7 for i in range(rows)],
                          "train_time_s": [2.0 + i % 5 for i in range(rows)],
                          "final_quality": [0.8 + (i % 3) / 100 for i in range(rows)],
                          "higher_is_better": True, "target_value": 0.8, "target_metric": "test/accuracy",
                          "model": [f"m{i % 8}" for i in range(rows)]})
    calls = []

    def series(row):
        calls.append(row)
        return row.model

    for draw in (plots.time_to_target, plots.quality_vs_time):
        calls.clear()
        assert draw(group, series, "t").startswith(b"\x89PNG")
        assert len(calls) == rows


# -- each (configuration, seed) counted once --------------------------------------------------------------------
def test_a_task_named_twice_in_the_flags_runs_once(tmp_path, capsys):
    results = tmp_path / "r"
    assert cli.main_run_all([*TOYS, "--tasks", "toy_linear,toy_linear", "--models", "linear,linear",
                             "--max-steps", "5", "--results", str(results)]) == 0
    assert len(runs_in(results)) == 1


def test_a_rerun_of_one_configuration_seed_and_commit_counts_once_as_its_newest(tmp_path, capsys):
    older = make_record(seed=0, ttt=10.0, run_id="toy.mlp.smoke.s0.20260101T000000.aaaaaa",
                        finished_at="2026-01-01T00:01:00+00:00")
    newer = make_record(seed=0, ttt=12.0, run_id="toy.mlp.smoke.s0.20260101T000500.bbbbbb",
                        started_at="2026-01-01T00:05:00+00:00", finished_at="2026-01-01T00:06:00+00:00")
    other_seed = make_record(seed=1, ttt=20.0, run_id="toy.mlp.smoke.s1.20260101T000000.cccccc")
    folder = write_all(tmp_path / "r", [older, newer, other_seed])
    frame = compare.pool([folder]).frame
    assert sorted(frame["time_to_target_s"]) == [12.0, 20.0]  # two seeds, not three runs
    assert cli.main(["check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "rerun of the same configuration, seed and commit" in out and "1 reruns counted once" in out


def test_two_processes_on_one_folder_without_resume_never_double_a_cell(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path, max_steps=5)
    for _ in range(2):  # what two run_all.py processes on one folder leave: one record each of seed 0
        run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)
    assert len(runs_in(tmp_path)) == 2
    assert len(compare.pool([tmp_path]).frame) == 1


def test_runs_of_another_commit_are_not_reruns(tmp_path):
    a = make_record(seed=0, run_id="a")
    b = make_record(seed=0, run_id="b", software={**a["software"], "git_commit": "def"})
    assert check.reruns([a, b]) == {}


def test_sweep_values_compare_as_values():
    with pytest.raises(ConfigError, match="0.1 and 1e-1 are the same value"):
        sweep.parse_axes(["recipe.lr=0.1,1e-1"])
    with pytest.raises(ConfigError, match="same value"):
        sweep.parse_axes(["model.depth=4,4.0"])


def test_a_cell_of_fewer_than_5_values_shows_its_range_named_so(tmp_path):
    three = [make_record(seed=s, ttt=t) for s, t in enumerate((10.0, 11.0, 13.0))]
    five = [make_record(seed=s, ttt=10.0 + s, model="cnn") for s in range(5)]
    table = compare.to_table(compare.pool([write_all(tmp_path, three + five)]).frame, "model")
    cells = dict(zip(table["model"], table["time_to_target_s"]))
    assert cells["mlp"] == "11 range [10, 13] n=3"
    assert cells["cnn"].startswith("12 CI [") and cells["cnn"].endswith("n=5")
    assert stats.spread([1.0, 2.0]) == (1.0, 2.0, stats.RANGE) and stats.spread([1.0]) is None


def test_runs_in_another_precision_or_thread_count_never_share_a_cell():
    def rec(seed, precision, threads, run_id):
        return make_record(seed=seed, run_id=run_id, host={"torch_threads": threads},
                           config={"budget": {"max_steps": 20}, "seed": seed, "precision": precision,
                                   "precision_request": "auto"})
    frame = compare.fit_only(compare.to_frame([rec(0, "bf16", 2, "a"), rec(1, "fp32", 2, "b"),
                                               rec(2, "fp32", 4, "c")]))
    table = compare.to_table(frame, "model")
    assert len(table) == 3 and sorted(table["precision"]) == ["bf16", "fp32", "fp32"]
    assert sorted(set(frame["hardware"])) == ["A (2 threads)", "A (4 threads)"]


def test_a_changed_recipe_keys_a_cell_of_its_own():
    a = make_record(seed=0, run_id="a", config={"recipe": {"lr": 0.1}, "seed": 0})
    b = make_record(seed=1, run_id="b", config={"recipe": {"lr": 0.2}, "seed": 1})
    c = make_record(seed=2, run_id="c", config={"recipe": {"lr": 0.1}, "seed": 2})
    table = compare.to_table(compare.fit_only(compare.to_frame([a, b, c])), "model")
    assert sorted(table["reached"]) == ["1/1", "2/2"] and "config" in table.columns


# -- check: the shipped references, skips by design, --json ------------------------------------------------------
def test_check_exits_0_on_the_shipped_references_and_lists_skips_as_skips(capsys):
    reference = ROOT / "results" / "reference"
    assert cli.main(["check", str(reference)]) == 0
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if line.startswith("unfit")]
    assert "15 skipped" in out.splitlines()[-1]


def test_check_json_is_one_document_with_the_same_status(tmp_path, capsys):
    folder = write_all(tmp_path / "r", [make_record(seed=0), make_record(seed=1, status="failed", ttt=None),
                                        make_record(seed=2, status="skipped", ttt=None)])
    assert cli.main(["check", str(folder), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["exit_status"] == 1 and (document["records"], document["fit"], document["unfit"],
                                             document["skipped"]) == (3, 1, 1, 1)
    assert sorted({f["kind"] for f in document["findings"]}) == ["skipped", "unfit"]


def test_the_results_commands_do_not_import_torch(tmp_path):
    folder = write_all(tmp_path / "r", [make_record(seed=0)])
    code = ("import sys\nfrom suite import cli\n"
            "for command in ('check', 'compare'):\n"
            "    cli.main([command, sys.argv[1]])\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]


def test_hardware_fingerprint_copies_do_not_share_state():
    import torch

    from suite.measuring import fingerprint

    first = fingerprint.hardware(torch.device("cpu"), "box")
    first["peak_flops"] = {"fp32": 1.0}
    assert "peak_flops" not in fingerprint.hardware(torch.device("cpu"), "box")
    assert runner.fingerprint.software() == fingerprint.software()
