"""bench/speed_spread.py: repeated speed runs, the time rule beside a fixed step count, and the summary."""
from __future__ import annotations

import json

import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench/speed_spread.py", "bench_speed_spread")


def rep(index, *runs):
    return {"rep": index, "runs": [{"side": side, "task": "t", "model": model, "throughput": rate}
                                   for side, model, rate in runs]}


def test_the_summary_gives_each_side_and_model_its_median_and_spread(bench):
    reps = [rep(0, ("time rule", "m", 100.0), ("3 steps", "m", 80.0)),
            rep(1, ("time rule", "m", 102.0), ("3 steps", "m", 120.0)),
            rep(2, ("time rule", "m", 101.0), ("3 steps", "m", 100.0))]
    rows = {row["side"]: row for row in bench.summary(reps)}
    rule, steps = rows["time rule"], rows["3 steps"]
    assert rule["median"] == 101.0 and (rule["min"], rule["max"]) == (100.0, 102.0)
    assert rule["spread_kind"] == "range" and rule["precision"] == pytest.approx(2 / 101)
    assert rule["precise"] and not steps["precise"]  # 40% of the median
    assert steps["precision"] == pytest.approx(0.4)
    [one] = bench.summary([rep(0, ("time rule", "m", 50.0))])
    assert one["spread_kind"] == "one rep" and not one["precise"]


def test_one_rep_runs_both_rules_in_fresh_processes(bench, tmp_path, capsys):
    out = tmp_path / "spread.json"
    assert bench.main(["--tasks", "image_classification", "--models", "mlp", "--reps", "1", "--max-steps", "2",
                       "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    runs = {r["side"]: r for r in data["reps"][0]["runs"]}
    assert set(runs) == {"time rule", "2 steps"} and data["reps"][0]["order"] == ["time rule", "2 steps"]
    assert runs["2 steps"]["steps"] == 2 and runs["time rule"]["steps"] > 3  # a small model: many steps in 3 s
    assert all(r["throughput"] > 0 for r in runs.values())
    assert "image_classification/mlp: median" in capsys.readouterr().out


def test_bad_counts_are_one_line_errors(bench, capsys):
    for argv in (["--reps", "0"], ["--max-steps", "0"]):
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
    assert "--reps 0: give 1 or more" in capsys.readouterr().err
