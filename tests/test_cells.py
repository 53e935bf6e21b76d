"""Cells keyed by every run setting, both time-to-target rules, the terminal table and `check`'s lines,
on hand-written records with hand-computed answers."""
import io
import math

import pytest
from tests.helpers import make_record, write_all

from suite import cli
from suite.reporting import terminal
from suite.results import cells, check, compare
import torch

from suite.running.context import EvalPoints, TrainResult
from suite.taskapi.spec import Target
from suite.results import speedup


def new_record(seed=0, precision="fp32", compile=False, world=1, ttt=10.0, with_eval=None, pretrained=None,
               data=None, variant=None, overrides=None, **kw):
    """A record as the runner writes it now: the run settings in config, data_info, both times."""
    config = {"budget": {"max_steps": 20, "max_time_s": 60}, "seed": seed, "precision": precision,
              "compile": compile, "world_size": world}
    if overrides:
        config["overrides"] = overrides
    info = {"train": {"samples": 100}}
    if data:
        info["train"]["fingerprint"] = data
    if pretrained:
        info["train"]["pretrained"], info["train"]["pretrained_sha256"] = pretrained
    fields = {"config": config, "world_size": world, "data_info": info,
              "time_to_target_with_eval_s": with_eval if with_eval is not None else (ttt and ttt + 1.0)}
    if variant:
        fields["variant"] = variant
    run_id = f"toy.mlp.{precision}.{compile}.{world}.{data}.{variant}.{pretrained and pretrained[1]}.s{seed}"
    return make_record(seed=seed, ttt=ttt, run_id=kw.pop("run_id", run_id), **fields, **kw)


def _frame(recs):
    return compare.fit_only(compare.to_frame(recs))


def test_settings_of_an_old_record_read_as_unknown_and_it_still_loads():
    old = make_record()  # config without precision / compile, no world_size, no data_info
    assert cells.cell_settings(old) == {"precision": "-", "compile": "-", "cuda_graphs": "off", "world_size": "1",
                                        "pretrained": "-", "data": "-", "config": cells.config_key(old),
                                        "variant": "-"}
    assert compare.to_table(_frame([old]), "model")["time_to_target_s"].tolist() == ["10 n=1"]


def test_settings_of_a_new_record():
    r = new_record(precision="bf16", compile=True, world=4, pretrained=("/site/pkg/model", "abcdef0123456789"),
                   data="d" * 64, variant="wide", overrides={"recipe.lr": 0.1, "task.pretrained": "x"})
    got = cells.cell_settings(r)
    assert got["precision"] == "bf16" and got["compile"] == "compile" and got["world_size"] == "4"
    assert got["pretrained"] == "pkg/model@abcdef01"
    assert got["variant"] == "wide; recipe.lr=0.1"  # task.pretrained belongs to the pretrained key
    assert len(got["data"]) == 8 and got["data"] != cells.data_key(new_record(data="e" * 64))


def test_bf16_and_fp32_runs_of_one_model_get_separate_rows_with_a_precision_column():
    # fp32 seeds reach at 10, 20, 30 s: median 20; bf16 at 5, 7, 9 s: median 7
    recs = [new_record(seed=s, precision="fp32", ttt=t) for s, t in enumerate((10.0, 20.0, 30.0))]
    recs += [new_record(seed=s, precision="bf16", ttt=t) for s, t in enumerate((5.0, 7.0, 9.0))]
    table = compare.to_table(_frame(recs), "model")
    assert table["precision"].tolist() == ["bf16", "fp32"]
    assert [c.split(" range [")[0] for c in table["time_to_target_s"]] == ["7", "20"]
    assert not {"compile", "world_size", "pretrained", "data", "variant"} & set(table.columns)  # same everywhere
    notes = compare.incomparable_notes(_frame(recs))
    assert notes == ["toy / mlp (smoke): 2 separate rows, not comparable: precision bf16 (A) vs fp32 (A)"]


@pytest.mark.parametrize("setting, a, b", [
    ("compile", {"compile": True}, {"compile": False}),
    ("world_size", {"world": 1}, {"world": 2}),
    ("pretrained", {"pretrained": ("enc", "1111")}, {"pretrained": ("enc", "2222")}),
    ("data", {"data": "aa"}, {"data": "bb"}),
    ("variant", {"variant": "wide"}, {}),
])
def test_each_keyed_setting_splits_the_cell_and_never_crashes(setting, a, b):
    recs = [new_record(seed=0, ttt=10.0, **a), new_record(seed=1, ttt=12.0, **a),
            new_record(seed=0, ttt=30.0, **b)]
    frame = _frame(recs)
    table = compare.to_table(frame, "model")
    assert len(table) == 2 and setting in table.columns
    assert sorted(c.split(" ")[0] for c in table["time_to_target_s"]) == ["11", "30"]  # median(10, 12) = 11
    assert len(speedup.speedups(frame, "A").per_task) == 0  # one machine: nothing to pair, no merge either
    lines = check.setting_splits(recs)
    assert len(lines) == 1 and f"separate only by {setting}" in lines[0] and "3 runs in 2 cells" in lines[0]


def test_check_prints_one_line_per_case(tmp_path):
    recs = [new_record(seed=0, precision="fp32"), new_record(seed=0, precision="bf16"),
            new_record(seed=0, precision="fp32", model="cnn", run_id="cnn.fp32"),
            new_record(seed=1, precision="fp32", model="cnn", run_id="cnn.fp32.s1")]
    out = io.StringIO()
    assert check.check_paths([write_all(tmp_path, recs)], out) == 0
    lines = [line for line in out.getvalue().splitlines() if line.startswith("separate")]
    assert lines == ["separate    toy / mlp on A (torch 2.11.0): 2 runs in 2 cells, separate only by "
                     "precision bf16 (1 run) vs fp32 (1 run)"]


def test_time_rules_train_and_train_plus_eval():
    # train rule: 10, 20 -> 15; MLPerf rule: 12, 25 -> 18.5
    recs = [new_record(seed=0, ttt=10.0, with_eval=12.0), new_record(seed=1, ttt=20.0, with_eval=25.0)]
    frame = _frame(recs)
    assert compare.to_table(frame, "model")["time_to_target_s"].tolist() == ["15 range [10, 20] n=2"]
    mlperf, notes = compare.with_time_rule(frame, "train+eval")
    assert compare.to_table(mlperf, "model")["time_to_target_s"].tolist() == ["18.5 range [12, 25] n=2"] and notes == []


def test_train_plus_eval_over_old_records_says_so_and_shows_no_number():
    frame = _frame([make_record(seed=0, ttt=10.0), make_record(seed=1, ttt=None)])
    mlperf, notes = compare.with_time_rule(frame, "train+eval")
    assert notes == ["1 reached runs have no time_to_target_with_eval_s (older records): "
                     "no time-to-target from them under the train+eval rule"]
    cell = compare.to_table(mlperf, "model")["time_to_target_s"].iloc[0]
    assert cell == "not reached (0/1 reached)"  # only the run that missed has a figure under this rule


def test_eval_points_record_both_rules():
    from suite.measuring.timing import SegmentClock

    result = TrainResult()
    clock = SegmentClock(torch.device("cpu"), totals={"train": 4.0, "eval": 1.0})
    tracker = EvalPoints(Target("val/acc", 0.9, True, "test"), result, torch.device("cpu"))
    assert not tracker.record(1, clock, {"val/acc": 0.5})
    clock.totals.update(train=8.0, eval=2.5)
    assert tracker.record(2, clock, {"val/acc": 0.95})
    assert (result.time_to_target_s, result.time_to_target_with_eval_s) == (8.0, 10.5)


def test_by_software_with_one_version_says_so_in_one_line(tmp_path, capsys):
    folder = write_all(tmp_path, [new_record(seed=0), new_record(seed=1)])
    assert cli.main(["compare", str(folder), "--by", "software"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["compare --by software: one torch version (2.11.0) in these records, nothing to compare"]


def test_by_software_speedups_against_the_oldest_version(tmp_path, capsys):
    # 2.11: 10, 10, 10 s; 2.14: 5, 5, 5 s -> speed-up 2x with a degenerate interval [2, 2]
    recs = [new_record(seed=s, ttt=10.0, torch="2.11.0", run_id=f"old{s}") for s in range(3)]
    recs += [new_record(seed=s, ttt=5.0, torch="2.14.1", run_id=f"new{s}", throughput=150.0) for s in range(3)]
    frame = _frame(recs)
    assert compare.torch_versions(frame) == ["2.11.0", "2.14.1"]
    result = speedup.speedups(frame, "2.11.0", "torch")
    assert result.per_task["speedup"].tolist() == [2.0]
    per_task, suite = speedup.speedup_tables(result)
    assert per_task["speedup"].tolist() == ["2x range [2, 2]"] and suite["torch"].tolist() == ["2.14.1"]
    assert per_task["throughput_ratio"].tolist() == ["1.5x range [1.5, 1.5]"]  # 150 / 100 samples/s
    folder = write_all(tmp_path, recs)
    assert cli.main(["compare", str(folder), "--by", "software", "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "2x range [2, 2]" in out and "legend: median" in out and max(map(len, out.splitlines())) <= 100


def test_torch_versions_sort_numerically():
    frame = compare.to_frame([make_record(torch=v, run_id=v) for v in ("2.9.1", "2.14.1+cu130", "2.11.0+cpu")])
    assert compare.torch_versions(frame) == ["2.9.1", "2.11.0+cpu", "2.14.1+cu130"]


def test_terminal_table_fits_100_columns_and_names_what_it_left_out():
    recs = [new_record(seed=s, precision=p, ttt=t, throughput=123456.0, run_id=f"{p}{s}")
            for s, (p, t) in enumerate([("fp32", 10.0), ("bf16", 5.0), ("fp32", 20.0), ("bf16", 6.0)])]
    text = terminal.render(compare.to_table(_frame(recs), "model"), "## by_model")
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100 and len(terminal.legend()) <= 100
    assert lines[1].startswith("where: ") and "hardware=A" in text.split("precision")[0]  # the where: lines
    assert any(line.startswith("precision") for line in lines) and lines[-1].startswith("left out to fit 100")
    assert terminal.render(compare.to_table(_frame([]), "model")) == "(no comparable runs)"


def test_varying_settings_ignore_differences_between_tasks():
    # only task "b" was fine-tuned from an encoder: across tasks that is no reason for a column
    recs = [new_record(seed=0), new_record(seed=0, task="b", pretrained=("enc", "1234"), run_id="b0")]
    assert "pretrained" not in compare.to_table(_frame(recs), "model").columns
    assert math.isinf(compare._rule_time(make_record(ttt=None), "time_to_target_with_eval_s", False))


def test_cells_key_the_precision_that_ran_whether_auto_chose_it_or_not():
    # GPU: auto -> bf16, 5 s; CPU: auto -> fp32, 20 s, and an explicit bf16 run at 15 s: only bf16 pairs, 15 / 5
    def auto(hw, used, ttt):
        r = new_record(precision=used, ttt=ttt, hardware=hw, run_id=f"auto.{hw}")
        r["config"]["precision_request"] = "auto"
        return r
    frame = _frame([auto("gpu", "bf16", 5.0), auto("cpu", "fp32", 20.0),
                    new_record(precision="bf16", ttt=15.0, hardware="cpu", run_id="explicit")])
    result = speedup.speedups(frame, "cpu")
    assert result.per_task["speedup"].tolist() == [3.0]
    assert "the machines ran in different precisions (separate rows, never one cell): cpu: bf16, fp32; gpu: bf16" \
        in result.caveats
    assert sorted(compare.to_table(frame, "model")["precision"]) == ["bf16", "bf16", "fp32"]


def test_report_by_torch_version_has_speedups_and_names_the_time_rule(tmp_path):
    from suite.reporting import report

    recs = [new_record(seed=s, ttt=10.0, torch="2.11.0", run_id=f"old{s}") for s in range(2)]
    recs += [new_record(seed=s, ttt=5.0, torch="2.14.1", run_id=f"new{s}") for s in range(2)]
    data = compare.pool([write_all(tmp_path, recs)])
    sections, _ = report.build_sections(data, None, "train+eval")
    by_torch = next(s for s in sections if s.title.startswith("By torch version"))
    assert by_torch.notes[0] == "Time-to-target rule: train + evaluation time (warm-up and data work excluded)."
    assert by_torch.tables["speedup against torch 2.11.0"]["speedup"].tolist() == ["1.83x range [1.83, 1.83]"]  # 11 / 6


def test_terminal_table_of_a_targetless_profile_keeps_throughput():
    """A speed table has no time-to-target or quality: those blank columns go, throughput stays."""
    import pandas as pd

    table = pd.DataFrame({"task": ["image_classification", "sentiment"], "model": ["cnn", "minilm_finetune"],
                          "reached": ["- (1 runs)", "- (1 runs)"], "time_to_target_s": ["no target", "no target"],
                          "final_quality": ["-", "-"], "throughput": ["73,039 samples/s n=1", "1,312 samples/s n=1"],
                          "utilisation": ["0.209 n=1", "0.000959 n=1"], "peak_mem_mb": ["1256 n=1", "419 n=1"]})
    text = terminal.render(table, width=100)
    assert "73,039 samples/s" in text and "utilisation" in text and "mem_mb" in text
    assert "no target" not in text and "quality" not in text


def test_speed_records_timed_for_different_lengths_share_a_cell_and_other_budgets_split_it():
    """The speed profile's budget caps how long throughput is timed (50 steps once, a few seconds now):
    the figure is the same quantity, so records of both rules compare; a training budget is configuration."""
    def record(profile, max_steps):
        r = new_record(profile=profile)
        r["config"] = {**r["config"], "profile": profile, "budget": {"max_steps": max_steps, "max_time_s": 600}}
        return r

    assert cells.config_key(record("speed", 50)) == cells.config_key(record("speed", 5000))
    assert cells.config_key(record("quick", 50)) != cells.config_key(record("quick", 5000))
    assert cells.config_key(record("speed", 50)) != cells.config_key(record("quick", 50))
