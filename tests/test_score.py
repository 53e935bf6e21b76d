"""`dlbench score` and the regression gate on hand-written records with hand-computed answers."""
from __future__ import annotations

import math

import pytest

from suite import cli
from suite.errors import DlbenchError
from suite.results import records, score, speedup
from tests.helpers import make_record, write_all


def _speed(model: str, hardware: str, throughput: float, seed: int = 0) -> dict:
    """A speed-profile record: no target, a throughput."""
    record = make_record(model=model, hardware=hardware, seed=seed, throughput=throughput, profile="speed",
                         dataset="synthetic:digits", reached_target=None, time_to_target_s=None,
                         stop_reason="steps", curve=[], final_metrics={"train/loss": 1.0},
                         run_id=f"speed.{model}.{hardware}.s{seed}")
    record["target"] = None  # the speed profile has no target by design
    assert records.validate(record) == []
    return record


def _machines(tmp_path, here_times=(5.0, 10.0), t2_here=10.0, tp_here=300.0):
    """Reference machine REF and machine B: two timed tasks and one speed row each."""
    ref = [make_record(task="t1", hardware="REF box", seed=s, ttt=t) for s, t in enumerate((10.0, 20.0))]
    ref += [make_record(task="t2", hardware="REF box", ttt=30.0), _speed("mlp", "REF box", 100.0)]
    here = [make_record(task="t1", hardware="B", seed=s, ttt=t) for s, t in enumerate(here_times)]
    here += [make_record(task="t2", hardware="B", ttt=t2_here, train_time=60.0), _speed("mlp", "B", tp_here)]
    return write_all(tmp_path / "ref", ref), write_all(tmp_path / "here", here)


def _score(here, ref_dir):
    reference, label, _ = score.resolve_reference(ref_dir)
    return score.score([here], reference, label)


def test_per_task_speedups_and_their_geometric_mean(tmp_path):
    ref_dir, here = _machines(tmp_path)
    result = _score(here, ref_dir)
    assert result.reference_label == "REF box" and result.subjects == ["B"]
    smoke, speed = {p.profile: p for p in result.profiles}["smoke"], {p.profile: p for p in result.profiles}["speed"]
    per = smoke.per_task.set_index("task")
    # t1: median(10, 20) / median(5, 10) = 15 / 7.5; t2: 30 / 10
    assert per.loc["t1", "figure"] == pytest.approx(2.0) and per.loc["t2", "figure"] == pytest.approx(3.0)
    assert smoke.geomean == pytest.approx(math.sqrt(6.0))
    # range of t1's ratios [10/10, 20/5]; t2 has one seed a side, so its ratio is both ends
    assert smoke.spread[:2] == pytest.approx((math.sqrt(1 * 3), math.sqrt(4 * 3)))
    assert speed.geomean == pytest.approx(3.0) and speed.measure == "throughput"  # 300 / 100 samples/s
    assert result.left_out == []


def test_a_missed_target_counts_at_the_budget(tmp_path):
    ref_dir, here = _machines(tmp_path, t2_here=None)  # B misses t2 after 60 s of training
    per = {p.profile: p for p in _score(here, ref_dir).profiles}["smoke"].per_task.set_index("task")
    assert per.loc["t2", "figure"] == pytest.approx(30.0 / 60.0)


def test_a_folder_against_itself_scores_one(tmp_path):
    ref_dir, _ = _machines(tmp_path)
    result = _score(ref_dir, ref_dir)
    assert [p.geomean for p in result.profiles] == pytest.approx([1.0, 1.0])


def test_reference_labels_match_by_case_insensitive_prefix(tmp_path):
    ref_dir, _ = _machines(tmp_path)
    write_all(ref_dir, [make_record(task="t1", hardware="REF other", ttt=10.0)])
    assert score.resolve_reference("ref box", default_dir=ref_dir)[1] == "REF box"
    with pytest.raises(DlbenchError, match="matches several machines.*REF box; REF other"):
        score.resolve_reference("ref", default_dir=ref_dir)
    with pytest.raises(DlbenchError, match="matches no machine.*REF box; REF other"):
        score.resolve_reference("nvidia", default_dir=ref_dir)
    with pytest.raises(DlbenchError, match="several machines"):
        score.resolve_reference(ref_dir)


def test_incomparable_rows_are_listed_and_no_comparable_row_is_an_error(tmp_path):
    ref_dir, _ = _machines(tmp_path)
    here = write_all(tmp_path / "v2", [make_record(task="t1", hardware="B", ttt=5.0, version=2),
                                       make_record(task="t2", hardware="B", ttt=10.0)])
    result = _score(here, ref_dir)
    assert result.left_out == ["t1 / mlp (smoke): not comparable: task_version 2 here vs 1 there"]
    only_new = write_all(tmp_path / "new", [make_record(task="t9", hardware="B", ttt=5.0)])
    with pytest.raises(DlbenchError, match="no run has a comparable run.*t9 / mlp \\(smoke\\): no run on the ref"):
        _score(only_new, ref_dir)


def test_cli_score_prints_the_suite_line_and_gates(tmp_path, capsys):
    ref_dir, here = _machines(tmp_path)
    assert cli.main(["score", str(here), "--reference", str(ref_dir), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "score smoke: B vs REF box: 2.45x range [1.73, 3.46]" in out and "score speed: B vs REF box: 3x" in out
    assert cli.main(["score", str(here), "--reference", str(ref_dir), "--fail-below", "1.5"]) == 0
    slow = write_all(tmp_path / "slow", [make_record(task="t1", hardware="B", seed=s, ttt=t)
                                         for s, t in enumerate((30.0, 50.0))])
    assert cli.main(["score", str(slow), "--reference", str(ref_dir), "--fail-below", "0.9"]) == 1
    err = capsys.readouterr().err
    # t1: 15 / 40 = 0.375x, range [10/50, 20/30] entirely below 0.9; the suite is that one task
    assert "below 0.9: t1 / mlp (smoke) on B: time-to-target (raw) 0.375x range [0.2, 0.667] < 0.9" in err
    assert "below 0.9: suite smoke on B" in err and "gate: 2 figure(s) below 0.9" in err
    assert cli.main(["score", str(here), "--reference", "nope"]) == 2


def test_fail_below_rejects_a_non_positive_ratio(tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", str(tmp_path), "--fail-below", "0"])
    assert exc.value.code == 2


def test_compare_gate_passes_and_fails_on_two_result_folders(tmp_path, capsys):
    old = write_all(tmp_path / "old", [make_record(task="t1", hardware="OLD", seed=s, ttt=t)
                                       for s, t in enumerate((10.0, 11.0, 12.0))])
    same = write_all(tmp_path / "same", [make_record(task="t1", hardware="NEW", seed=s, ttt=t)
                                         for s, t in enumerate((9.0, 11.0, 13.0))])
    slower = write_all(tmp_path / "slower", [make_record(task="t1", hardware="NEW", seed=s, ttt=t)
                                             for s, t in enumerate((20.0, 22.0, 24.0))])
    assert cli.main(["compare", str(same), str(old), "--baseline", "OLD", "--fail-below", "0.9"]) == 0
    assert "gate: passed (0.9)" in capsys.readouterr().err
    assert cli.main(["compare", str(slower), str(old), "--baseline", "OLD", "--fail-below", "0.9"]) == 1
    err = capsys.readouterr().err
    # 11 / 22 = 0.5x, range [10/24, 12/20] = [0.417, 0.6]
    assert "below 0.9: t1 / mlp (smoke) on NEW: time-to-target speed-up 0.5x range [0.417, 0.6] < 0.9" in err
    assert "below 0.9: suite on NEW: geometric mean 0.5x" in err
    assert cli.main(["compare", str(slower), str(old), "--fail-below", "0.9"]) == 2  # no --baseline


def test_gate_needs_the_interval_below_the_threshold():
    assert speedup.slower_than(0.8, (0.7, 0.95, "range"), 0.9) is False  # the interval reaches 0.9
    assert speedup.slower_than(0.8, (0.7, 0.85, "95% CI"), 0.9) is True
    assert speedup.slower_than(0.8, None, 0.9) is True  # one seed a side: the figure decides
    assert speedup.slower_than(math.nan, None, 0.9) is False


def test_a_missing_target_reads_the_same_on_both_sides_of_the_why_not_line():
    import pandas as pd

    from suite.results import compare

    row = {c: "x" for c in compare.COMPARABLE}
    here = pd.DataFrame([{**row, "task": "t", "model": "m", "profile": "speed", "target_metric": None,
                          "task_version": 2}])
    there = pd.DataFrame([{**row, "task": "t", "model": "m", "profile": "speed", "target_metric": float("nan"),
                           "task_version": 1}])
    (line,) = score._left_out(here, there)
    assert "task_version 2 here vs 1 there" in line and "target_metric" not in line


def test_a_missing_target_is_nan_in_every_frame_whatever_else_the_folder_holds():
    from suite.results import compare

    speed_only = compare.to_frame([_speed("mlp", "B", 200.0)])
    mixed = compare.to_frame([_speed("mlp", "B", 200.0), make_record(hardware="B")])
    for frame in (speed_only, mixed):
        row = frame[frame["profile"] == "speed"].iloc[0]
        assert row["target_metric"] != row["target_metric"] and row["target_value"] != row["target_value"]  # NaN
    assert set(score._keys(speed_only)) <= set(score._keys(mixed))


def test_a_speed_only_folder_scores_against_a_reference_that_also_holds_targets(tmp_path):
    from suite.results import compare

    folder = write_all(tmp_path / "b", [_speed("mlp", "B", 200.0)])
    ref_folder = write_all(tmp_path / "ref", [_speed("mlp", "REF box", 100.0), make_record(hardware="REF box")])
    result = score.score([folder], compare.pool([ref_folder]).frame, "REF box")
    (speed,) = [p for p in result.profiles if p.profile == "speed"]
    assert speed.geomean == pytest.approx(2.0)
