"""Run records: one JSON file per run, written atomically, read tolerantly.

The record is a contract (DESIGN.md): tables, tests and outside tools read
it. `validate` lists what is wrong with a dict; `read_records` skips, with
one warning line each, files that are not valid records, and never raises
on them. `write_record` writes only what `validate` accepts: a field over
the schema's limits is cut or emptied first, with a note in the record's
`write_notes`, so a run is never written as a file its readers skip.

Validation is the readers' main cost: a compiled validator
(`fastjsonschema`) accepts a valid record in tens of microseconds, and only
a record it rejects goes through `jsonschema` for the full list of
reasons. A file already read in this process is not parsed again while
its path, inode, size and modification time stay the same.
"""
from __future__ import annotations

import copy
import gc
import hashlib
import io
import json
import math
import os
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from suite.results import consistency, safe_io

SCHEMA = 1
SCHEMA_FILE = Path(__file__).with_name("record.schema.json")  # JSON Schema of the record, shipped with dlbench
STATUSES = ("ok", "diverged", "failed", "skipped", "interrupted")
FINISHED = ("ok", "diverged")  # a resume does not run these again


# json.dumps(obj, sort_keys=True, default=str) without building an encoder per call (a few microseconds
# of each of the tens of thousands of hashes a folder of records asks for)
SORTED_JSON = json.JSONEncoder(sort_keys=True, default=str)


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a resolved configuration (keys sorted)."""
    text = SORTED_JSON.encode(config)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def runs_dir(results: Path) -> Path:
    return Path(results) / "runs"


class UnwritableRecord(ValueError):
    """A record that stays invalid after `fit_to_schema`: writing it would make a file every reader skips."""


def write_record(record: dict[str, Any], results: Path) -> Path:
    """Write `record` to RESULTS/runs/<run_id>.json atomically (temp file, fsync, rename; the umask's mode).

    What is written is what a reader will load: the record is validated as JSON first, and fields over
    the schema's limits are fixed (`fit_to_schema`); one that cannot be fixed raises UnwritableRecord
    before any file exists.
    """
    folder = runs_dir(results)
    folder.mkdir(parents=True, exist_ok=True)
    # a bad value fails here, before any file exists; a round trip gives exactly what readers will see
    # `_path` (where a reader found it) and the readers' notes (`_verdict`, `_cells`) are not part of it
    kept = {k: v for k, v in record.items() if not k.startswith("_")}
    loaded = json.loads(json.dumps(_finite_or_none(kept), allow_nan=False, default=str))
    loaded, problems = fit_to_schema(loaded)
    if problems:
        raise UnwritableRecord(f"the record does not fit its schema ({problems[0]})")
    text = io.StringIO()
    json.dump(loaded, text, indent=1, allow_nan=False)
    return safe_io.atomic_write_text(folder / f"{loaded['run_id']}.json", text.getvalue())


FIXES_ALLOWED = 20  # a record with more broken fields than this is not a record worth fixing


def fit_to_schema(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(record, what still breaks the schema): over-long text is cut to the limit, an out-of-range or
    mistyped number becomes null where the schema allows null; each change is a line in `write_notes`."""
    problems = validate(record)
    if not problems or not isinstance(record, dict):
        return record, problems
    record = copy.deepcopy(record)
    notes: list[str] = []
    for _ in range(FIXES_ALLOWED):
        errors = _schema_errors(record)
        if not errors:
            break
        error = errors[0]
        if not error.absolute_path or not _fix(record, error, notes):
            return record, validate(record)
    else:
        return record, validate(record)
    if notes:
        record["write_notes"] = list(record.get("write_notes") or []) + notes
    return record, validate(record)


def _fix(record: dict[str, Any], error, notes: list[str]) -> bool:
    """Mend the field `error` (a jsonschema error) points at; False when this kind of error has no mend."""
    *parents, key = list(error.absolute_path)
    holder = record
    for part in parents:
        holder = holder[part]
    where = ".".join(map(str, error.absolute_path))
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "maxLength" and isinstance(holder[key], str):
        limit = int(error.validator_value)
        notes.append(f"{where}: {len(holder[key])} characters cut to the schema's {limit}")
        holder[key] = holder[key][:limit - 1] + "\u2026"
        return True
    allows_null = "null" in (schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")])
    if error.validator in ("maximum", "minimum", "type") and allows_null and not isinstance(holder[key], (dict, list)):
        notes.append(f"{where}: {plain_value(holder[key])} breaks the schema ({error.validator}): recorded as null")
        holder[key] = None
        return True
    return False


def plain_value(value: Any) -> str:
    text = safe_io.plain(repr(value))
    return text if len(text) <= 40 else text[:37] + "..."


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
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


@lru_cache(maxsize=1)
def _schema_validator():
    try:
        import jsonschema
    except ImportError:
        raise ImportError("dlbench needs the jsonschema package to read records: pip install jsonschema") from None
    return jsonschema.Draft202012Validator(_schema())


@lru_cache(maxsize=1)
def _fast_validator() -> Callable[[Any], Any] | None:
    """The schema compiled to Python by fastjsonschema (None without it: jsonschema alone, slower)."""
    try:
        import fastjsonschema
    except ImportError:
        return None
    return fastjsonschema.compile(_fast_form(_schema()))


def _fast_form(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as the compiled validator takes it, valid for the same documents: each `$ref` to one of its
    `$defs` written out in place (the defs are leaves), and each `oneOf: [{"type": "null"}, X]`, X a schema
    that refuses null, written as X with "null" among its types. The compiled code then calls no function
    per number and builds no field name for it, and raises and catches no exception for the branch a value
    does not take: half of its time per record."""
    defs = schema.get("$defs") or {}

    def form(node: Any) -> Any:
        if isinstance(node, list):
            return [form(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        leaf = defs.get(ref.removeprefix("#/$defs/")) if isinstance(ref, str) and ref.startswith("#/$defs/") else None
        if isinstance(leaf, dict) and "$ref" not in json.dumps(leaf):
            node = {**{k: v for k, v in node.items() if k != "$ref"}, **leaf}
        node = {key: form(value) for key, value in node.items()}
        branches = node.get("oneOf")
        if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
            other = branches[1 - branches.index({"type": "null"})]
            types = other.get("type") if isinstance(other, dict) else None
            types = [types] if isinstance(types, str) else types
            if isinstance(types, list) and "null" not in types and not set(other) & {"oneOf", "anyOf", "allOf", "not",
                                                                                      "enum", "const"}:
                node = {**{k: v for k, v in node.items() if k != "oneOf"}, **other, "type": [*types, "null"]}
        return node

    return form(schema)


def schema_limit(*path: str) -> int | None:
    """The schema's maxLength of the field at `path` (e.g. "hardware", "label"), or None."""
    node = _schema()
    for part in path:
        node = (node.get("properties") or {}).get(part) or {}
    return node.get("maxLength")


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
    if _fast_accepts(obj):
        return []
    try:
        errors = _schema_errors(obj)
    except RecursionError:
        return ["nested too deep"]
    problems = []
    for error in errors:
        where = ".".join(map(str, error.absolute_path)) or "record"
        message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
        problems.append(safe_io.plain(f"{where}: {message}"))
    return problems


def _fast_accepts(obj: Any) -> bool:
    fast = _fast_validator()
    if fast is None:
        return False
    try:
        fast(obj)
    except Exception:  # noqa: BLE001 - its JsonSchemaException, or a RecursionError: let jsonschema say why
        return False
    return True


def _schema_errors(obj: Any) -> list:
    return sorted(_schema_validator().iter_errors(obj), key=lambda e: (len(e.absolute_path), str(e.path)))


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# The reference machines' records ship inside the default results folder. A folder that holds them is read
# without them, so this machine's runs never pool with the references' (same label, same seeds) and the
# references never show as machines of one's own results; naming the folder, or one below it, reads them.
SHIPPED_REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"


def _shipped_reference_below(folder: Path) -> Path | None:
    """`folder`'s path to SHIPPED_REFERENCE when that lies strictly below `folder`, else None."""
    try:
        inside = SHIPPED_REFERENCE.resolve().relative_to(folder.resolve())
    except (OSError, ValueError):
        return None
    return folder / inside if inside.parts else None


def record_files(paths: Iterable[Path | str]) -> list[Path]:
    """JSON files under each path (a file, a results folder, or its runs/ folder), without the shipped
    reference records when they lie below a folder given (`SHIPPED_REFERENCE`)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            skip = _shipped_reference_below(path)
            files.extend(sorted((p for p in path.rglob("*.json") if not p.name.startswith(".")
                                 and not (skip and p.is_relative_to(skip))), key=str))
        elif path.exists() or path.is_symlink():
            files.append(path)  # a FIFO, device or dangling link: read_records says what it is and skips it
        else:
            _warn(f"{path}: no such file or folder, skipped")
    return files


# Set by a process that keeps what it reads until it exits (the results commands of the CLI): the records
# are then moved out of the cyclic collector's sight once read (`read_records`).
LONG_LIVED_READS = False


def read_records(paths: Iterable[Path | str], warn: Callable[[str], None] = _warn) -> list[dict[str, Any]]:
    """Every valid record under `paths`; other files are skipped with one warning line each.

    Records are trees of plain containers that reference counting frees, so the cyclic garbage collector
    has nothing to find in them: it is paused while they are read (it would walk the growing list again
    and again), and left as the caller had it afterwards. With LONG_LIVED_READS, what is alive once they
    are read is frozen (`gc.freeze`): tens of thousands of records would otherwise be walked again at
    each full collection that the tables' own allocations set off.
    """
    records = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        for file in record_files(paths):
            obj, warning = _read_one(file)
            if warning:
                warn(f"{file}: {warning}, skipped")
                continue
            records.append({**obj, "_path": str(file)})
        if LONG_LIVED_READS:
            gc.freeze()
    finally:
        if collecting:
            gc.enable()
    return records


# path -> (file identity, (record or None, warning or None)): what reading a file gave, while it is unchanged
_READ: dict[str, tuple[tuple, tuple[dict[str, Any] | None, str | None]]] = {}
_READ_CACHE_MAX = 200_000
SETTLED_S = 2.0  # a file changed less than this long ago may change again within its timestamp's resolution


def _read_one(file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) or (None, why it is not a record); a settled, unchanged file is not read twice."""
    try:
        info: os.stat_result | None = os.stat(file)
        identity = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    except OSError:
        info = identity = None
    key = str(file)
    cached = _READ.get(key)
    if identity is not None and cached is not None and cached[0] == identity:
        return cached[1]
    try:
        obj = safe_io.read_json(file, info=info)
    except safe_io.UnreadableFile as exc:
        result: tuple = (None, f"not a readable JSON record ({exc})")
    else:
        problems = validate(obj)
        result = (None, f"not a valid dlbench record ({problems[0]})") if problems else (obj, None)
    if identity is not None and time.time() - info.st_mtime > SETTLED_S:
        if len(_READ) >= _READ_CACHE_MAX:
            _READ.clear()
        _READ[key] = (identity, result)
    return result


def find_finished(results: Path, config_digest: str, hardware: dict[str, Any]) -> dict[str, Any] | None:
    """A finished record in RESULTS of this run made on this machine, for --resume (`pick_finished`)."""
    folder = runs_dir(results)
    if not folder.is_dir():
        return None
    return pick_finished(read_records([folder], warn=lambda _m: None), config_digest, hardware)


def pick_finished(candidates: Iterable[dict[str, Any]], config_digest: str,
                  hardware: dict[str, Any]) -> dict[str, Any] | None:
    """The first of `candidates` that --resume takes for this run done: finished, with this config hash,
    made on this machine (`same_machine`: label, device, CPU, cores, GPUs, host), and consistent. The one
    key of --resume, for the local executor (RESULTS read here) and a Ray worker (the records its driver
    sent, matched on the worker's own machine): a record of another machine is that machine's run."""
    for record in candidates:
        if record.get("config_hash") == config_digest and record.get("status") in FINISHED \
                and same_machine(record.get("hardware"), hardware) \
                and not consistency.problems(record):  # a record that contradicts itself is run again
            return record
    return None
