"""Run records: one JSON file per run, written atomically, read tolerantly.

The record is a contract (DESIGN.md): tables, tests and outside tools read
it. `validate` lists what is wrong with a dict; `read_records` skips, with
one warning line each, files that are not valid records, and never raises
on them.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from suite import safe_io

SCHEMA = 1
SCHEMA_FILE = Path(__file__).with_name("record.schema.json")  # JSON Schema of the record, shipped with dlbench
STATUSES = ("ok", "diverged", "failed", "skipped", "interrupted")
FINISHED = ("ok", "diverged")  # a resume does not run these again


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a resolved configuration (keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def runs_dir(results: Path) -> Path:
    return Path(results) / "runs"


def write_record(record: dict[str, Any], results: Path) -> Path:
    """Write `record` to RESULTS/runs/<run_id>.json atomically (temp file, fsync, rename; the umask's mode)."""
    folder = runs_dir(results)
    folder.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    json.dump(_finite_or_none(record), text, indent=1, allow_nan=False, default=str)  # a bad value fails before any file exists
    return safe_io.atomic_write_text(folder / f"{record['run_id']}.json", text.getvalue())


def _finite_or_none(value: Any) -> Any:
    """NaN and infinities (not JSON) become null, so a stray non-finite figure cannot lose the record."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def claim_run(results: Path, config_digest: str, hardware: dict[str, Any]):
    """A held lock on this run (config and machine) in RESULTS, or None when another process holds it.

    The lock (`filelock`, an flock on Linux) goes when its process ends, even by kill -9, so no stale
    claim is left. Call `.release()` once the record is written.
    """
    from filelock import FileLock, Timeout

    folder = runs_dir(results) / ".claims"
    folder.mkdir(parents=True, exist_ok=True)
    machine = json.dumps([config_digest] + [(hardware or {}).get(k) for k in MACHINE_FIELDS], default=str)
    lock = FileLock(str(folder / f"{hashlib.sha256(machine.encode()).hexdigest()[:16]}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


@lru_cache(maxsize=1)
def _schema_validator():
    try:
        import jsonschema
    except ImportError:
        raise ImportError("dlbench needs the jsonschema package to read records: pip install jsonschema") from None
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator(schema)


def reached(record: dict[str, Any]) -> bool:
    """The one rule for 'reached the target' (check, compare, report): status ok, reached_target, a time."""
    ttt = record.get("time_to_target_s")
    return (record.get("status") == "ok" and record.get("reached_target") is True
            and isinstance(ttt, (int, float)) and not isinstance(ttt, bool) and 0 <= ttt < float("inf"))


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two `hardware` fingerprints are one machine: label and identity fields all match."""
    return all((a or {}).get(k) == (b or {}).get(k) for k in MACHINE_FIELDS)


MACHINE_FIELDS = ("label", "device", "device_name", "cpu", "cores", "gpus", "hostname")


def validate(obj: Any) -> list[str]:
    """What keeps `obj` from being a valid record (empty list: valid)."""
    if not isinstance(obj, dict):
        return [f"not a JSON object but {type(obj).__name__}"]
    if isinstance(obj.get("schema"), int) and not isinstance(obj["schema"], bool) and obj["schema"] > SCHEMA:
        return [f"schema {obj['schema']} is newer than this dlbench reads ({SCHEMA}): upgrade dlbench"]
    try:
        errors = sorted(_schema_validator().iter_errors(obj), key=lambda e: (len(e.absolute_path), str(e.path)))
    except RecursionError:
        return ["nested too deep"]
    problems = []
    for error in errors:
        where = ".".join(map(str, error.absolute_path)) or "record"
        message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
        problems.append(safe_io.plain(f"{where}: {message}"))
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
        elif path.exists() or path.is_symlink():
            files.append(path)  # a FIFO, device or dangling link: read_records says what it is and skips it
        else:
            _warn(f"{path}: no such file or folder, skipped")
    return files


def read_records(paths: Iterable[Path | str], warn: Callable[[str], None] = _warn) -> list[dict[str, Any]]:
    """Every valid record under `paths`; other files are skipped with one warning line each."""
    records = []
    for file in record_files(paths):
        try:
            obj = safe_io.read_json(file)
        except safe_io.UnreadableFile as exc:
            warn(f"{file}: not a readable JSON record ({exc}), skipped")
            continue
        problems = validate(obj)
        if problems:
            warn(f"{file}: not a valid dlbench record ({problems[0]}), skipped")
            continue
        obj["_path"] = str(file)
        records.append(obj)
    return records


def find_finished(results: Path, config_digest: str, hardware: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A finished record in RESULTS with this config hash (and, if given, this machine), for --resume."""
    folder = runs_dir(results)
    if not folder.is_dir():
        return None
    for record in read_records([folder], warn=lambda _m: None):
        if record.get("config_hash") == config_digest and record["status"] in FINISHED and (
                hardware is None or same_machine(record.get("hardware"), hardware)):
            return record
    return None
