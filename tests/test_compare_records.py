"""Pooling records from result folders (the records are written by `tests.helpers.make_record`)."""
from __future__ import annotations

import json
import math

from suite.results import check, compare, records
from tests.helpers import make_record, write_all


def test_pool_counts_a_run_found_twice_once(tmp_path):
    recs = [make_record(seed=s, ttt=t) for s, t in enumerate([10.0, 20.0, 30.0])]
    write_all(tmp_path / "one", recs)
    write_all(tmp_path / "two", recs[:2])  # the same two runs copied from another machine's folder
    data = compare.pool([tmp_path / "one", tmp_path / "two"])
    assert len(data.frame) == 3
    assert sorted(data.frame["time_to_target_s"]) == [10.0, 20.0, 30.0]
    dupes = [w for w in data.warnings if "duplicate" in w]
    assert len(dupes) == 2 and all("counted once" in w for w in dupes)
    table = compare.to_table(data.frame, "model")
    assert table["time_to_target_s"].tolist() == ["20 range [10, 30] n=3"]


def test_to_frame_marks_not_reached_as_inf_and_unfit_runs(tmp_path):
    recs = [make_record(seed=0, ttt=None), make_record(seed=1, status="failed", ttt=None),
            make_record(seed=2, status="diverged", ttt=None, quality=None),
            make_record(seed=3, hardware="")]
    frame = compare.to_frame(recs)
    assert frame["time_to_target_s"].tolist()[0] == math.inf
    assert frame["fit"].tolist() == [True, False, True, False]
    assert math.isnan(frame["final_quality"][2]) and math.isnan(frame["throughput"][2])


def test_pool_warns_once_per_bad_file_and_keeps_the_rest(tmp_path):
    folder = write_all(tmp_path / "r", [make_record(seed=0), make_record(seed=1, status="failed", ttt=None)])
    runs = folder / "runs"
    (runs / "cut.json").write_text(json.dumps(make_record(seed=5))[:200])
    (runs / "newer.json").write_text(json.dumps({**make_record(seed=6), "schema": records.SCHEMA + 1}))
    (runs / "list.json").write_text("[1, 2]")
    (tmp_path / "empty").mkdir()
    data = compare.pool([folder, tmp_path / "empty"])
    assert len(data.frame) == 1
    joined = "\n".join(data.warnings)
    for needle in ("cut.json", "newer than this dlbench", "list.json", "status failed", "empty: no dlbench records"):
        assert joined.count(needle) == 1, needle


def test_pool_sums_up_skipped_runs_by_reason_and_names_each_failed_one(tmp_path):
    why = "the speed profile times training steps on synthetic data"
    skipped = [make_record(seed=s, status="skipped", ttt=None, error=why) for s in range(3)]
    folder = write_all(tmp_path / "r", skipped + [make_record(seed=9, status="failed", ttt=None)])
    warnings = compare.pool([folder]).warnings
    assert [w for w in warnings if "status skipped" in w] == [f"left out 3 runs: status skipped ({why})"]
    assert sum("status failed" in w and ".json" in w for w in warnings) == 1


def test_pool_names_the_first_unfit_runs_and_counts_the_rest_per_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "LEFT_OUT_NAMED", 3)
    failed = [make_record(seed=s, status="failed", ttt=None, error="RuntimeError: boom", run_id=f"f.s{s}")
              for s in range(5)]
    interrupted = [make_record(seed=10 + s, status="interrupted", ttt=None, run_id=f"i.s{s}") for s in range(2)]
    folder = write_all(tmp_path / "r", [make_record(seed=99), *failed, *interrupted])
    data = compare.pool([folder])
    named = [w for w in data.warnings if ".json: left out:" in w]
    counted = [w for w in data.warnings if w.startswith("left out ") and "more run" in w]
    assert len(named) == 3
    assert sum(int(w.split()[2]) for w in counted) == 4, counted  # 7 unfit runs: 3 named, 4 counted
    assert all(w.endswith("(`dlbench check` names each)") for w in counted)
    assert len(data.frame) == 1
