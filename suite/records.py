"""Run records: one JSON file per run, written atomically, read tolerantly.

The record is a contract (DESIGN.md): tables, tests and outside tools read
it. `validate` lists what is wrong with a dict; `read_records` skips, with
one warning line each, files that are not valid records, and never raises
on them.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

SCHEMA = 1
STATUSES = ("ok", "diverged", "failed", "skipped", "interrupted")
FINISHED = ("ok", "diverged")  # a resume does not run these again

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "run_id": str,
    "task": str,
    "task_version": int,
    "model": str,
    "profile": str,
    "dataset": (str, type(None)),
    "seed": int,
    "status": str,
    "error": (str, type(None)),
    "target": (dict, type(None)),
    "reached_target": (bool, type(None)),  # null where the profile has no target (speed)
    "time_to_target_s": (int, float, type(None)),
    "train_time_s": (int, float, type(None)),
    "wall_time_s": (int, float, type(None)),
    "final_metrics": dict,
    "throughput": (dict, type(None)),
    "peak_mem_mb": (int, float, type(None)),
    "params": (int, type(None)),
    "curve": list,
    "hardware": dict,
    "software": dict,
    "config": dict,
    "started_at": str,
    "finished_at": (str, type(None)),
}


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a resolved configuration (keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def runs_dir(results: Path) -> Path:
    return Path(results) / "runs"


def write_record(record: dict[str, Any], results: Path) -> Path:
    """Write `record` to RESULTS/runs/<run_id>.json atomically (temp file, fsync, rename)."""
    folder = runs_dir(results)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['run_id']}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{record['run_id']}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=1, allow_nan=False, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def validate(obj: Any) -> list[str]:
    """What keeps `obj` from being a valid record (empty list: valid)."""
    if not isinstance(obj, dict):
        return [f"not a JSON object but {type(obj).__name__}"]
    if "schema" in obj and isinstance(obj["schema"], int) and obj["schema"] > SCHEMA:
        return [f"schema {obj['schema']} is newer than this dlbench reads ({SCHEMA}): upgrade dlbench"]
    problems = []
    for key, kind in REQUIRED.items():
        if key not in obj:
            problems.append(f"missing field {key!r}")
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            problems.append(f"field {key!r} has type {type(obj[key]).__name__}")
    if isinstance(obj.get("status"), str) and obj["status"] not in STATUSES:
        problems.append(f"status {obj['status']!r} is not one of {', '.join(STATUSES)}")
    return problems


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def record_files(paths: Iterable[Path | str]) -> list[Path]:
    """JSON files under each path (a file, a results folder, or its runs/ folder)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.json") if not p.name.startswith(".")))
        else:
            _warn(f"{path}: no such file or folder, skipped")
    return files


def read_records(paths: Iterable[Path | str], warn: Callable[[str], None] = _warn) -> list[dict[str, Any]]:
    """Every valid record under `paths`; other files are skipped with one warning line each."""
    records = []
    for file in record_files(paths):
        try:
            obj = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warn(f"{file}: not a readable JSON record ({type(exc).__name__}), skipped")
            continue
        problems = validate(obj)
        if problems:
            warn(f"{file}: not a valid dlbench record ({problems[0]}), skipped")
            continue
        obj["_path"] = str(file)
        records.append(obj)
    return records


def find_finished(results: Path, config_digest: str) -> dict[str, Any] | None:
    """A finished record in RESULTS with this config hash, for --resume."""
    folder = runs_dir(results)
    if not folder.is_dir():
        return None
    for record in read_records([folder], warn=lambda _m: None):
        if record.get("config_hash") == config_digest and record["status"] in FINISHED:
            return record
    return None
