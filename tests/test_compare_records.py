"""Hand-written records for the compare / check / report tests, and the pooling tests.

`make_record` builds a valid schema-1 record whose numbers the test states;
the other test files import it (`from test_compare_records import make_record`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from suite import compare, records


def make_record(task: str = "toy", model: str = "mlp", seed: int = 0, hardware: str = "A", ttt: float | None = 10.0,
                quality: float | None = 0.9, version: int = 1, status: str = "ok", torch: str = "2.11.0",
                throughput: float = 100.0, unit: str = "samples/s", mem: float = 500.0, target: float = 0.8,
                train_time: float | None = None, run_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid record; `ttt=None` means the target was not reached (the step budget ran out)."""
    train = train_time if train_time is not None else (ttt or 20.0) + 1.0
    curve = [{"step": 10, "time_s": train / 2, "samples": 640, "test/accuracy": 0.5},
             {"step": 20, "time_s": train, "samples": 1280, "test/accuracy": quality if quality is not None else 0.1}]
    record = {
        "schema": records.SCHEMA, "run_id": run_id or f"{task}.{model}.{hardware}.v{version}.s{seed}.{torch}",
        "task": task, "task_version": version, "model": model, "profile": "smoke", "dataset": "digits",
        "seed": seed, "status": status, "error": None if status in ("ok", "diverged") else "RuntimeError: boom",
        "target": {"metric": "test/accuracy", "value": target, "higher_is_better": True, "source": "test"},
        "reached_target": ttt is not None and status == "ok",
        "time_to_target_s": ttt if status == "ok" else None, "train_time_s": train, "wall_time_s": train + 2,
        "stop_reason": "target" if ttt is not None else "budget", "steps": 20, "samples": 1280,
        "final_metrics": {"test/accuracy": quality} if quality is not None else {},
        "throughput": {"value": throughput, "unit": unit}, "peak_mem_mb": mem, "params": 1000, "curve": curve,
        "hardware": {"label": hardware, "device": "cpu", "device_name": f"cpu of {hardware}", "cpu": "x86",
                     "cores": 2, "ram_gb": 8.0, "gpus": 0, "gpu_mem_gb": None, "driver": None, "hostname": hardware},
        "software": {"python": "3.11.7", "torch": torch, "cuda": None, "cudnn": None, "dlbench": "0.1.0",
                     "git_commit": "abc", "os": "Linux"},
        "config": {"budget": {"max_steps": 20, "max_time_s": 60}, "seed": seed},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
    }
    record.update(fields)
    assert records.validate(record) == []
    return record


def write_all(folder: Path, recs: list[dict[str, Any]]) -> Path:
    for r in recs:
        records.write_record(r, folder)
    return folder


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
    assert table["time_to_target_s"].tolist() == ["20 [10, 30] n=3"]


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
