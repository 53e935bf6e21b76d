"""The measurement method: validation decides and test reports, the profile's cadence, the four clocks,
training to the budget, --target-value, and reference convergence with the normalised time."""
from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest
import torch

from suite.running import runner
from suite.running.config import SuiteOptions
from suite.taskapi.convergence import Reference, normalised, percentile, recipe_hash, steps_to_reach
from suite.taskapi.data import TensorSource
from suite.results import records
from suite.results import speedup
from tests.toy_tasks import ToyLinear, ToyUnreachable


class ToyFlippedTest(ToyLinear):
    """Validation and training agree; the test split's labels are flipped, so its accuracy is 1 - val's.
    Counts how often each split is evaluated, and its data takes 0.2 s to load."""

    name = "toy_flipped_test"
    evaluated: list[str] = []

    def load(self, split):
        time.sleep(0.1)
        source = super().load(split)
        y = 1 - source.tensors["y"] if split == "test" else source.tensors["y"]
        return TensorSource({"split": split}, x=source.tensors["x"], y=y)

    def evaluate(self, model, source):
        type(self).evaluated.append(source.info["split"])
        return super().evaluate(model, source)


def options(tmp_path, **kw):
    return SuiteOptions(profile="smoke", device="cpu", precision="fp32", results=tmp_path, **kw)


def test_the_validation_split_decides_and_the_test_split_is_evaluated_once_when_the_run_stops(tmp_path):
    ToyFlippedTest.evaluated = []
    record = runner.run_one(ToyFlippedTest, "linear", 0, options(tmp_path), log=lambda _m: None)
    assert record["status"] == "ok" and record["reached_target"], record["error"]
    final = record["final_metrics"]
    assert final["val/accuracy"] >= 0.95  # the run stopped on validation ...
    assert math.isclose(final["test/accuracy"], 1 - final["val/accuracy"], abs_tol=1e-6)  # ... test only reports
    assert ToyFlippedTest.evaluated.count("test") == 1 and ToyFlippedTest.evaluated[-1] == "test"
    assert all("test/accuracy" not in p for p in record["curve"][:-1])  # test never seen before the stop
    assert record["curve"][-1]["step"] == record["steps_to_target"]


def test_evaluations_fall_on_the_profile_cadence_in_samples(tmp_path):
    # batch 32, eval_every 160 samples: every 5th step; 60 steps, target never met
    record = runner.run_one(ToyUnreachable, "linear", 0, options(tmp_path), log=lambda _m: None)
    assert [p["step"] for p in record["curve"]] == list(range(5, 61, 5))
    assert [p["samples"] for p in record["curve"]] == [160 * k for k in range(1, 13)]
    assert record["eval_cadence"] == {"every": 160, "unit": "samples"}


def test_the_four_clocks_are_ordered_and_the_data_segment_is_timed(tmp_path):
    record = runner.run_one(ToyFlippedTest, "linear", 0, options(tmp_path), log=lambda _m: None)
    train, with_eval = record["time_to_target_s"], record["time_to_target_with_eval_s"]
    submission, wall = record["submission_time_to_target_s"], record["wall_to_target_s"]
    assert 0 < train <= with_eval <= wall and train <= submission <= wall
    assert math.isclose(submission, train + record["warmup_s"], abs_tol=1e-3)
    assert record["data_s"] >= 0.3  # three splits loaded, 0.1 s each
    assert wall >= record["data_s"] + with_eval - 1e-3  # the wall clock starts at the first touch of the data
    assert math.isclose(record["seconds_per_step"], record["train_time_s"] / record["steps"], rel_tol=2e-2)


def test_train_to_budget_keeps_training_and_reports_test_at_the_best_validation_point(tmp_path):
    stopping = runner.run_one(ToyLinear, "linear", 0, options(tmp_path / "a"), log=lambda _m: None)
    full = runner.run_one(ToyLinear, "linear", 0, options(tmp_path / "b", train_to_budget=True),
                          log=lambda _m: None)
    assert full["status"] == "ok" and full["stop_reason"] == "budget" and full["steps"] == 60
    assert full["reached_target"] and full["steps_to_target"] == stopping["steps_to_target"]
    assert full["time_to_target_s"] is not None
    best = full["best"]
    best_val = max(p["val/accuracy"] for p in full["curve"])
    assert best["metrics"]["val/accuracy"] == best_val and "test/accuracy" in best["metrics"]
    assert best["step"] == next(p["step"] for p in full["curve"] if p["val/accuracy"] == best_val)
    assert full["config"]["stop_at_target"] is False and full["config_hash"] != stopping["config_hash"]


def test_target_value_measures_time_to_another_value_and_keys_the_run_apart(tmp_path):
    own = runner.run_one(ToyLinear, "linear", 0, options(tmp_path / "a"), log=lambda _m: None)
    other = runner.run_one(ToyLinear, "linear", 0, options(tmp_path / "b", target_value=0.5), log=lambda _m: None)
    assert other["target"]["value"] == 0.5 and other["target"]["source"].startswith("--target-value")
    assert other["steps_to_target"] <= own["steps_to_target"]
    assert other["config_hash"] != own["config_hash"]


def test_a_non_finite_target_value_is_refused():
    from suite.errors import ConfigError

    with pytest.raises(ConfigError, match="target_value"):
        SuiteOptions(profile="smoke", target_value=float("nan"))


# -- reference convergence ---------------------------------------------------------------------
def reference(steps, **kw) -> Reference:
    fields = dict(task="toy_linear", task_version=1, profile="smoke", model="linear",
                  target={"metric": "val/accuracy", "value": 0.95, "higher_is_better": True}, step_unit="steps",
                  seeds=list(range(len(steps))), steps_to_target=steps, budget_steps=60, recipe_hash="h",
                  precision="fp32", seconds_per_step=0.01, eval_cadence=None, machine="m", date="2026-12-04",
                  commit="abc", command="python bench/convergence.py toy_linear")
    return Reference(**{**fields, **kw})


def test_reference_statistics_by_hand():
    ref = reference([100, 110, 90, 105, 95, 100, 102, 98, 104, 96])
    assert ref.n == 10 and ref.reached == 10 and ref.median == 100.0
    mean = 100.0
    sd = math.sqrt(sum((s - mean) ** 2 for s in ref.steps_to_target) / 9)
    assert math.isclose(ref.cv, sd / mean)
    assert ref.meets_procedure() == (True, "")
    lo, hi = ref.band
    assert lo == pytest.approx(90 + 0.45 * 5) and hi == pytest.approx(105 + 0.55 * 5)  # numpy's linear rule
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_the_procedure_names_what_fails():
    ok, why = reference([100, None, None, 300, 100]).meets_procedure()
    assert not ok and "5 seeds < 10" in why and "3/5 reached" in why and "CV" in why


def test_steps_to_reach_finds_the_first_crossing_in_either_direction():
    curve = [{"step": 5, "val/wer": 0.9}, {"step": 10, "val/wer": 0.45}, {"step": 15, "val/wer": 0.5},
             {"step": 20, "val/wer": 0.38}]
    assert steps_to_reach(curve, "val/wer", 0.5, higher_is_better=False) == 10
    assert steps_to_reach(curve, "val/wer", 0.4, higher_is_better=False) == 20
    assert steps_to_reach(curve, "val/wer", 0.1, higher_is_better=False) is None


def test_normalised_time_is_the_reference_median_times_this_runs_seconds_per_step():
    ref = reference([100, 110, 90, 105, 95, 100, 102, 98, 104, 96])
    record = {"target": dict(ref.target), "task_version": 1, "seconds_per_step": 0.02, "steps_to_target": 150,
              "_recipe_hash": "h"}
    out = normalised(record, ref)
    assert out["normalised_time_to_target_s"] == pytest.approx(2.0)
    assert out["convergence"]["inside"] is False  # 150 steps: outside the 5th-95th band
    assert normalised({**record, "steps_to_target": 100}, ref)["convergence"]["inside"] is True
    assert normalised({**record, "_recipe_hash": "other"}, ref)["normalised_time_to_target_s"] is None
    assert "another target" in normalised({**record, "target": {**ref.target, "value": 0.9}}, ref)["convergence"]["why"]
    assert "no reference" in normalised(record, None)["convergence"]["why"]


def test_a_run_of_the_reference_recipe_records_its_normalised_time(tmp_path):
    spec = ToyLinear.spec_for("smoke", "linear")
    ref = reference([20] * 10, recipe_hash=recipe_hash(spec.recipe))
    smoke = dataclasses.replace(ToyLinear.profiles["smoke"], references={"linear": ref})
    task = type("ToyRef", (ToyLinear,), {"name": "toy_ref", "profiles": {**ToyLinear.profiles, "smoke": smoke}})
    record = runner.run_one(task, "linear", 0, options(tmp_path), log=lambda _m: None)
    assert record["normalised_time_to_target_s"] == pytest.approx(20 * record["seconds_per_step"], rel=2e-2, abs=1e-3)
    assert record["convergence"]["reference_median_steps"] == 20
    variant = runner.run_one(task, "linear", 0, options(tmp_path, set=["recipe.lr=0.05"]), log=lambda _m: None)
    assert variant["normalised_time_to_target_s"] is None and "variant" in variant["convergence"]["why"]


def test_reference_files_round_trip(tmp_path):
    from suite.taskapi.convergence import load_references, reference_path, to_json

    ref = reference([100] * 10)
    path = reference_path(tmp_path, "toy_linear", "smoke", "linear")
    path.write_text(to_json(ref))
    (tmp_path / "toy_linear.smoke.broken.json").write_text("{not json")
    assert load_references(tmp_path, "toy_linear", "smoke") == {"linear": ref}
    assert json.loads(path.read_text())["steps_to_target"] == [100] * 10


def test_rl_runs_evaluate_validation_episodes_on_the_cadence_and_test_episodes_once(tmp_path):
    from suite.taskapi import registry

    registry.load_tasks()
    task = registry.get_task("atari_rl")
    record = runner.run_one(task, "ppo_cnn", 0, options(tmp_path), log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert [p["step"] for p in record["curve"]] == [1024, 2048]
    assert all("val/return" in p and "test/return" not in p for p in record["curve"])
    algo = task.profiles["smoke"].recipes["ppo_cnn"].algo
    assert record["final_metrics"]["test/episodes"] >= algo.test_episodes
    assert record["eval_cadence"] == {"every": 1024, "unit": "env_steps"}
    assert torch.isfinite(torch.tensor(record["final_metrics"]["test/return"]))


# -- tables: quality from test, the time rules, normalised speed-ups -----------------------------------
def val_record(hardware="A", seed=0, ttt=10.0, per_step=0.5, inside=True, **kw):
    """A record of a run that stopped on val/accuracy and reports test/accuracy, with a reference."""
    from tests.helpers import make_record

    curve = [{"step": 10, "time_s": ttt / 2, "samples": 640, "val/accuracy": 0.5},
             {"step": 20, "time_s": ttt, "samples": 1280, "val/accuracy": 0.85}]
    record = make_record(
        hardware=hardware, seed=seed, ttt=ttt, curve=curve,
        final_metrics={"val/accuracy": 0.85, "test/accuracy": 0.61}, steps_to_target=20,
        time_to_target_with_eval_s=ttt + 0.5, submission_time_to_target_s=ttt + 0.25, wall_to_target_s=ttt + 1.0,
        seconds_per_step=per_step, normalised_time_to_target_s=30 * per_step,
        convergence={"reference_median_steps": 30, "band_p5_p95": [25, 35], "reference_n": 10,
                     "reference_cv": 0.1, "inside": inside}, **kw)
    record["target"] = {"metric": "val/accuracy", "value": 0.8, "higher_is_better": True, "source": "test"}
    assert records.validate(record) == []
    return record


def test_tables_report_the_test_metric_as_quality_and_follow_each_time_rule():
    from suite.results import compare

    frame = compare.to_frame([val_record()])
    assert frame["final_quality"].iloc[0] == 0.61  # test, not the val/accuracy that stopped the run
    expected = {"train": 10.0, "train+eval": 10.5, "submission": 10.25, "wall": 11.0, "normalised": 15.0}
    for rule, value in expected.items():
        ruled, notes = compare.with_time_rule(frame, rule)
        assert ruled["time_to_target_s"].iloc[0] == value and notes == []
    assert set(compare.TIME_RULES) == set(expected) | {"energy"}  # joules: tests/test_energy.py


def test_a_table_marks_runs_outside_the_reference_band_and_cells_without_a_reference():
    from suite.results import compare
    from tests.helpers import make_record

    recs = [val_record(seed=0), val_record(seed=1, inside=False), make_record(model="other")]
    table = compare.to_table(compare.to_frame(recs), by="model")
    notes = dict(zip(table["model"], table["convergence"]))
    assert notes["mlp"] == "1/2 converged unusually (outside the reference band)"
    assert notes["other"] == "no reference convergence"


def test_speedups_with_few_seeds_use_the_normalised_time_and_say_so():
    from suite.results import compare

    # machine B's steps per second are twice A's, but B's single seed needed three times the steps (luck)
    recs = [val_record("A", 0, ttt=10.0, per_step=0.5), val_record("B", 0, ttt=15.0, per_step=0.25)]
    result = speedup.speedups(compare.to_frame(recs), "A")
    row = result.per_task.iloc[0]
    assert row["basis"] == "normalised" and row["speedup"] == pytest.approx(2.0)
    assert row["speedup_raw"] == pytest.approx(10 / 15) and "normalised time" in row["note"]
    many = [val_record(h, s, ttt=10.0 if h == "A" else 5.0, per_step=0.5 if h == "A" else 0.25)
            for h in "AB" for s in range(5)]
    row = speedup.speedups(compare.to_frame(many), "A").per_task.iloc[0]
    assert row["basis"] == "raw" and row["speedup"] == pytest.approx(2.0)


def test_a_study_trained_to_the_budget_shows_the_best_validation_value_and_the_test_figure_there():
    from suite.results import study

    recs = []
    for lr, best_val, best_test in (("0.1", 0.9, 0.7), ("0.01", 0.95, 0.8)):
        for seed in (0, 1):
            r = val_record(seed=seed, run_id=f"toy.mlp.A.lr{lr}.s{seed}", best={
                "step": 20, "metrics": {"val/accuracy": best_val, "test/accuracy": best_test}})
            r["config"] = {**r["config"], "overrides": {"recipe.lr": lr}, "stop_at_target": False}
            r["variant"] = f"recipe.lr={lr}"
            recs.append(r)
    [found] = study.studies(recs)
    table = study.to_table(study.summarize(found), found)
    rows = {row["recipe.lr"]: row for _, row in table.iterrows()}
    assert rows["0.01"]["best val"].startswith("0.95") and rows["0.01"]["quality"].startswith("0.8")
    assert rows["0.1"]["best val"].startswith("0.9") and rows["0.1"]["quality"].startswith("0.7")


def test_every_shipped_reference_matches_its_recipe_today():
    """A recipe changed without a new reference (or a field added to `Recipe` that shifts every hash)
    would silently stop normalising that task's runs: each stored reference names the recipe it measured."""
    from suite.taskapi import registry
    from suite.taskapi.convergence import recipe_hash

    registry.load_tasks()
    checked = []
    for name in ("atari_rl", "image_classification", "keyword_spotting", "sentiment", "speech_recognition"):
        task = registry.get_task(name)
        for profile, spec in task.profiles.items():
            for model, ref in spec.references.items():
                assert ref.recipe_hash == recipe_hash(spec.recipes[model]), (name, profile, model)
                assert ref.task_version == task.version, (name, profile, model)
                checked.append((name, profile, model))
    assert len(checked) >= 5, checked
