"""Missed targets, absent figures and the shipped references in the tables, speed-ups and scores: a run
that never reached its target is never scored as if it had, a miss counts on the clock the figure uses,
and a machine's own results never pool with the reference machines that ship beside them."""
from __future__ import annotations

import math

import pytest

from suite import cli
from suite.results import compare, records, score, speedup
from suite.taskapi import convergence
from tests.helpers import make_record, write_all


def _normalised(record: dict, value: float | None) -> dict:
    """`record` with a normalised time (as a task with a reference convergence writes one)."""
    record["normalised_time_to_target_s"] = value
    record["convergence"] = {"reference_median_steps": 20, "band_p5_p95": [18.0, 22.0], "reference_n": 10,
                             "reference_cv": 0.1, "inside": None if value is None else True}
    return record


def _three_seeds(hardware: str, times: list[float | None], normalised: float = 5.0) -> list[dict]:
    """Three seeds on `hardware`; a None time is a missed target, which still has seconds per step."""
    return [_normalised(make_record(hardware=hardware, seed=s, ttt=t), normalised if t is not None else None)
            for s, t in enumerate(times)]


def test_a_missed_target_is_not_reached_under_the_normalised_basis_too():
    # A reaches at 10 s on 3 seeds; B misses on all 3. With fewer than 5 seeds the speed-up compares
    # normalised times, and B has none that converged: no speed-up, and the note says so.
    frame = compare.to_frame(_three_seeds("A", [10.0] * 3, 10.0) + _three_seeds("B", [None] * 3))
    result = speedup.speedups(frame, "A")
    row = result.per_task.iloc[0]
    assert math.isnan(row["speedup"]) and "not reached on B" in row["note"]
    assert result.suite.iloc[0]["tasks"] == 0
    by_rule, _ = compare.with_time_rule(frame, "normalised")
    assert (by_rule.loc[by_rule["hardware"] == "B", "time_to_target_s"] == math.inf).all()


def test_one_missed_seed_of_three_pulls_the_normalised_median_up():
    # B: normalised 5 s on two seeds, missed on the third -> median 5 (the miss counts as slowest, not
    # dropped); against A's 10 s that is 2x, and with two misses of three it is not reached.
    frame = compare.to_frame(_three_seeds("A", [10.0] * 3, 10.0) + _three_seeds("B", [4.0, 4.0, None]))
    assert speedup.speedups(frame, "A").per_task.iloc[0]["_pair"][1].tolist() == [5.0, 5.0, math.inf]
    frame = compare.to_frame(_three_seeds("A", [10.0] * 3, 10.0) + _three_seeds("B", [4.0, None, None]))
    assert math.isnan(speedup.speedups(frame, "A").per_task.iloc[0]["speedup"])


def test_a_run_that_missed_writes_no_normalised_time():
    ref = convergence.Reference(task="toy", task_version=1, profile="smoke", model="mlp",
                                target={"metric": "val/accuracy", "value": 0.8, "higher_is_better": True},
                                step_unit="steps", seeds=[0, 1], steps_to_target=[20, 22], budget_steps=100,
                                recipe_hash="h", precision="fp32", seconds_per_step=0.5, eval_cadence=None,
                                machine="m", date="2026-12-04", commit=None, command="c")
    record = {"target": {"metric": "val/accuracy", "value": 0.8}, "task_version": 1, "seconds_per_step": 0.5}
    assert convergence.normalised({**record, "steps_to_target": 21}, ref)["normalised_time_to_target_s"] == 10.5
    assert convergence.normalised({**record, "steps_to_target": None}, ref)["normalised_time_to_target_s"] is None


def _scored(tmp_path, here: list[dict], rule: str = "train") -> float:
    # the reference reaches at 10 s of training, 13 s of wall time, on 5 seeds
    ref = write_all(tmp_path / "ref", [make_record(hardware="REF", seed=s, ttt=10.0, wall_to_target_s=13.0)
                                       for s in range(5)])
    reference, label, _ = score.resolve_reference(ref)
    result = score.score([write_all(tmp_path / "here", here)], reference, label, rule)
    return result.profiles[0].per_task.iloc[0]["figure"]


def test_score_counts_a_miss_at_the_budget_on_the_rules_own_clock(tmp_path):
    # Every seed of B misses after 40 s of training, 44 s of wall time.
    here = [make_record(hardware="B", seed=s, ttt=None, train_time=40.0, wall_time_s=44.0) for s in range(5)]
    assert _scored(tmp_path / "train", here) == pytest.approx(10.0 / 40.0)
    assert _scored(tmp_path / "wall", here, "wall") == pytest.approx(13.0 / 44.0)


def test_score_counts_a_diverged_run_at_its_time_budget(tmp_path):
    # B diverges after 2 s on every seed; its budget held 60 s of training (make_record's max_time_s).
    here = [make_record(hardware="B", seed=s, ttt=None, status="diverged", train_time=2.0, stop_reason="diverged",
                        final_metrics={}) for s in range(5)]
    assert _scored(tmp_path, here) == pytest.approx(10.0 / 60.0)


def test_score_counts_a_miss_at_the_budget_with_few_seeds(tmp_path):
    # One seed a side: the normalised basis; B's miss after 40 s counts at 40 s, never at the reference's steps.
    ref = write_all(tmp_path / "ref", [_normalised(make_record(hardware="REF", ttt=10.0), 10.0)])
    here = write_all(tmp_path / "here", [_normalised(make_record(hardware="B", ttt=None, train_time=40.0), 5.0)])
    reference, label, _ = score.resolve_reference(ref)
    row = score.score([here], reference, label).profiles[0].per_task.iloc[0]
    assert row["basis"] == "normalised" and row["figure"] == pytest.approx(10.0 / 40.0)


def test_speedups_leave_out_runs_without_the_rules_figure():
    # Under the train+eval rule, B's two records without that figure (older ones) are left out, as the tables
    # leave them out, instead of sorting as slowest.
    recs = [make_record(hardware="A", seed=s, ttt=10.0, time_to_target_with_eval_s=12.0) for s in range(5)]
    recs += [make_record(hardware="B", seed=s, ttt=4.0, time_to_target_with_eval_s=6.0) for s in range(3)]
    recs += [make_record(hardware="B", seed=s, ttt=4.0) for s in range(3, 5)]
    frame, _ = compare.with_time_rule(compare.to_frame(recs), "train+eval")
    row = speedup.speedups(frame, "A", normalise=False).per_task.iloc[0]
    assert row["n"] == 3 and row["speedup"] == pytest.approx(2.0) and row["note"] == ""


def _speed(hardware: str, throughput: float) -> dict:
    record = make_record(hardware=hardware, throughput=throughput, profile="speed", dataset="synthetic:digits",
                         run_id=f"speed.{hardware}",
                         reached_target=None, time_to_target_s=None, stop_reason="steps", curve=[],
                         final_metrics={"train/loss": 1.0})
    record["target"] = None
    return record


def test_a_speed_profile_task_is_compared_by_throughput_not_called_missed():
    frame = compare.to_frame([_speed("A", 100.0), _speed("B", 300.0), make_record(hardware="A", ttt=10.0),
                              make_record(hardware="B", ttt=5.0)])
    result = speedup.speedups(frame, "A")
    speed = result.per_task[result.per_task["profile"] == "speed"].iloc[0]
    assert "not reached" not in speed["note"] and speed["basis"] == "throughput"
    suite = result.suite.set_index("profile")
    assert suite.loc["speed", "geomean_speedup"] == pytest.approx(3.0)
    assert suite.loc["smoke", "geomean_speedup"] == pytest.approx(2.0)
    per_task, _ = speedup.speedup_tables(result)
    assert "no target" in set(per_task["time_s"])


def test_a_results_folder_is_read_without_the_references_shipped_inside_it(tmp_path, monkeypatch):
    results = tmp_path / "results"
    monkeypatch.setattr(records, "SHIPPED_REFERENCE", results / "reference")
    write_all(results / "runs", [make_record(hardware="A", ttt=5.0)])
    write_all(results / "reference" / "REF", [make_record(hardware="A", seed=1, ttt=9.0),
                                              make_record(hardware="REF", ttt=10.0)])
    assert sorted(compare.pool([results]).frame["hardware"]) == ["A"]
    assert sorted(compare.pool([results / "reference"]).frame["hardware"]) == ["A", "REF"]
    assert len(compare.pool([results / "reference" / "REF"]).frame) == 2


def test_score_without_a_reference_scores_against_each_shipped_machine(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "reference"
    write_all(shipped / "one", [make_record(hardware="REF one", seed=s, ttt=10.0) for s in range(2)])
    write_all(shipped / "two", [make_record(hardware="REF two", seed=s, ttt=2.0) for s in range(2)])
    monkeypatch.setattr(score, "DEFAULT_REFERENCE", shipped)
    here = write_all(tmp_path / "here", [make_record(hardware="B", seed=s, ttt=5.0) for s in range(2)])
    assert cli.main(["score", str(here), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "score smoke: B vs REF one: 2x" in out and "score smoke: B vs REF two: 0.4x" in out
    assert cli.main(["score", str(here), "--fail-below", "0.9"]) == 2
    assert "--fail-below needs one reference machine" in capsys.readouterr().err


def test_compare_of_a_folder_that_does_not_exist_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0]


def test_the_family_view_leaves_out_a_run_id_with_two_contents(tmp_path):
    from suite.results import families

    first = make_record(hardware="A", ttt=5.0, run_id="same")
    second = make_record(hardware="A", ttt=7.0, run_id="same")
    assert families.runs_frame([first, second]).empty
    assert compare.to_frame([first, second]).empty


def test_a_seed_run_again_with_other_code_is_named_in_the_warnings():
    recs = [make_record(hardware="A", seed=s, ttt=10.0, torch="2.10.0") for s in range(3)]
    recs += [make_record(hardware="A", seed=s, ttt=10.0, torch="2.11.0") for s in range(3)]
    from suite.results import check

    lines = check.repeated_seeds(recs, check.reruns(recs))
    assert len(lines) == 3 and "toy / mlp (smoke) seed 0 on A: 2 runs with different code" in lines[0]
    assert "2.10.0" in lines[0] and "2.11.0" in lines[0]
    assert check.repeated_seeds(recs[:3], {}) == []  # one code: nothing to say
