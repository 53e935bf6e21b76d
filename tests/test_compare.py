"""Comparison tables and speedups on hand-written records with hand-computed answers."""
import math

import pytest
from tests.helpers import make_record, write_all

from suite import cli
from suite.results import compare
from suite.errors import DlbenchError
from suite.results import speedup


def _frame(recs):
    return compare.fit_only(compare.to_frame(recs))


def test_cell_with_seeds_that_missed_the_target():
    # seeds reach at 10 s and 20 s, the third never: median 20 (inf counts as slowest), 2/3 reached;
    # interval [10, not reached] (see test_stats); quality median of .9, .85, .7 = .85
    recs = [make_record(seed=0, ttt=10.0), make_record(seed=1, ttt=20.0, quality=0.85),
            make_record(seed=2, ttt=None, quality=0.7)]
    summary = compare.summarize(_frame(recs), compare.COMPARABLE + ["hardware", "model"])
    row = summary.iloc[0]
    assert (row["time_to_target_s"], row["time_to_target_s_lo"], row["time_to_target_s_hi"]) == (20.0, 10.0, math.inf)
    assert (row["reached"], row["runs"], row["final_quality"]) == (2, 3, 0.85)
    table = compare.to_table(_frame(recs), "model")
    assert table["reached"].tolist() == ["2/3"]
    assert table["time_to_target_s"].tolist() == ["20 range [10, not reached] n=3, 1 not reached"]


def test_cell_where_most_seeds_missed_is_not_reached_but_shown():
    recs = [make_record(seed=0, ttt=10.0), make_record(seed=1, ttt=None), make_record(seed=2, ttt=None)]
    table = compare.to_table(_frame(recs), "model")
    assert table["time_to_target_s"].tolist() == ["not reached (1/3 reached)"]


def test_single_seed_has_no_interval():
    table = compare.to_table(_frame([make_record(ttt=12.0, throughput=250.0)]), "model")
    assert table["time_to_target_s"].tolist() == ["12 n=1"]
    assert table["throughput"].tolist() == ["250 samples/s n=1"]


def test_diverged_run_counts_as_not_reached_and_has_no_quality():
    recs = [make_record(seed=0, ttt=10.0, quality=0.9), make_record(seed=1, ttt=12.0, quality=0.8),
            make_record(seed=2, status="diverged", ttt=None, quality=None)]
    row = compare.summarize(_frame(recs), compare.COMPARABLE + ["hardware", "model"]).iloc[0]
    assert (row["reached"], row["time_to_target_s_n"], row["final_quality_n"]) == (2, 3, 2)
    assert row["time_to_target_s"] == 12.0 and row["final_quality"] == pytest.approx(0.85)


def test_two_machines_with_different_task_versions_never_share_a_cell():
    recs = [make_record(hardware="A", version=1, ttt=10.0), make_record(hardware="B", version=2, ttt=5.0)]
    frame = _frame(recs)
    table = compare.to_table(frame, "hardware")
    assert len(table) == 2 and table["v"].tolist() == ["1", "2"]
    assert table["A"].tolist() == ["10 n=1", "-"] and table["B"].tolist() == ["-", "5 n=1"]
    notes = compare.incomparable_notes(frame)
    assert notes == ["toy / mlp (smoke): 2 separate rows, not comparable: task_version 1 (A) vs 2 (B)"]
    result = speedup.speedups(frame, "A")
    assert result.suite["tasks"].tolist() == [0]  # nothing comparable on both: no suite figure


def test_runs_of_different_profiles_are_separate_rows_without_a_warning():
    quick = make_record(hardware="A", ttt=10.0)
    quick["profile"], quick["dataset"], quick["run_id"] = "quick", "fashion_mnist", quick["run_id"] + "q"
    frame = _frame([make_record(hardware="A", ttt=5.0), quick])
    assert len(compare.to_table(frame, "model")) == 2
    assert compare.incomparable_notes(frame) == []


def test_speedup_against_a_machine_per_task_and_geometric_mean():
    # task t1: A median 12, B median 6 -> 2; task t2: A 8, B 1 -> 8; task t3: B never reaches -> left out.
    recs = [make_record(task="t1", hardware="A", seed=s, ttt=t) for s, t in enumerate([10.0, 12.0, 14.0])]
    recs += [make_record(task="t1", hardware="B", seed=s, ttt=t) for s, t in enumerate([5.0, 6.0, 7.0])]
    recs += [make_record(task="t2", hardware="A", ttt=8.0), make_record(task="t2", hardware="B", ttt=1.0)]
    recs += [make_record(task="t3", hardware="A", ttt=3.0), make_record(task="t3", hardware="B", ttt=None)]
    result = speedup.speedups(_frame(recs), "A")
    assert result.dimension == "hardware"
    per = result.per_task.set_index("task")
    assert per.loc["t1", "speedup"] == 2.0 and per.loc["t2", "speedup"] == 8.0
    assert math.isnan(per.loc["t3", "speedup"]) and "not reached on B" in per.loc["t3", "note"]
    suite = result.suite.iloc[0]
    assert (suite["hardware"], suite["tasks"], suite["of"]) == ("B", 2, 3)
    assert suite["geomean_speedup"] == pytest.approx(4.0)
    assert suite["lo"] <= 4.0 <= suite["hi"]
    assert any("B (smoke): geometric mean of time-to-target speed-ups over 2 of 3 tasks" in c
               and "1 not reached" in c for c in result.caveats)
    _, suite_table = speedup.speedup_tables(result)
    assert suite_table["geomean_speedup"].iloc[0].startswith("4x range [")


def test_speedup_against_a_model_and_unknown_baseline():
    recs = [make_record(model="mlp", ttt=10.0), make_record(model="cnn", ttt=4.0)]
    result = speedup.speedups(_frame(recs), "mlp")
    assert result.dimension == "model"
    assert result.per_task["speedup"].tolist() == [2.5]
    with pytest.raises(DlbenchError, match="neither a hardware label"):
        speedup.speedups(_frame(recs), "gpu9000")


def test_software_table_puts_torch_versions_side_by_side():
    recs = [make_record(torch="2.10.0", ttt=20.0, run_id="a"), make_record(torch="2.11.0", ttt=15.0, run_id="b")]
    table = compare.to_table(_frame(recs), "software")
    assert table[["2.10.0", "2.11.0"]].values.tolist() == [["20 n=1", "15 n=1"]]
    other_machine = make_record(hardware="B", torch="2.9.0", run_id="c")  # one version only: not in this table
    assert compare.to_table(_frame(recs + [other_machine]), "software")["hardware"].tolist() == ["A"]


def test_mixed_throughput_units_give_no_median():
    recs = [make_record(seed=0), make_record(seed=1, unit="env_steps/s")]
    table = compare.to_table(_frame(recs), "model")
    assert table["throughput"].tolist() == ["mixed units"]


def test_cli_compare_exit_status_and_formats(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path)]) == 1  # empty folder: nothing comparable
    err = capsys.readouterr().err
    assert "no dlbench records" in err and "Traceback" not in err
    folder = write_all(tmp_path / "r", [make_record(hardware="A", ttt=10.0), make_record(hardware="B", ttt=5.0)])
    (folder / "runs" / "cut.json").write_text('{"schema": 1, "run_id": ')
    assert cli.main(["compare", str(folder), "--by", "hardware", "--baseline", "A"]) == 0
    out, err = capsys.readouterr()
    assert "| 10 n=1 | 5 n=1 |" in out and "2x (one seed: no spread)" in out
    assert err.count("cut.json") == 1
    assert cli.main(["compare", str(folder), "--format", "csv"]) == 0
    assert "time_to_target_s_lo" in capsys.readouterr().out
    assert cli.main(["compare", str(folder), "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")
    assert cli.main(["compare", str(folder), "--baseline", "nope"]) == 2
    assert "neither a hardware label" in capsys.readouterr().err


def test_runs_with_different_budgets_never_share_a_cell():
    short = make_record(seed=0, ttt=None, steps=12, config={"budget": {"max_steps": 12, "max_time_s": 60}})
    short["curve"][1]["step"] = 12  # its last evaluation is at its last step
    long = make_record(seed=1, ttt=5.0, config={"budget": {"max_steps": 60, "max_time_s": 60}, "max_steps": 80})
    frame = _frame([short, long])
    assert len(compare.to_table(frame, "model")) == 2  # the budget is part of the configuration that keys a cell
    (note,) = compare.incomparable_notes(frame)
    assert note.startswith("toy / mlp (smoke): 2 separate rows, not comparable: config ")
    # records without a config (older ones) still pool, and the note says their budgets differ
    old = [dict(r, config={k: v for k, v in r["config"].items()}) for r in (short, long)]
    mixed = compare.to_frame(old)
    mixed["config"] = "-"
    assert any("one cell mixes budgets" in n for n in compare.incomparable_notes(compare.fit_only(mixed)))
