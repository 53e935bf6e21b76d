"""Record checks: which runs are fit for comparison, one line per problem.

`dlbench check DIR` prints these lines; `compare` and `report` apply the
same rules (`assess`, `unit_conflicts`), so a run left out of a table is
always one that `check` names, with the reason.

Three levels:
- unfit: the run is left out of every table (status failed / skipped /
  interrupted, no target, missing hardware or software fingerprint,
  inconsistent fields). Unreadable files and schema errors are unfit too.
- busy host: the run is counted, but other processes used much of the CPU
  while it trained (`host.other_cpu_share`), so its times may be inflated.
- counted as not reached: the run stays in its cell but has no
  time-to-target (it diverged, or its budget or time cap ran out before the
  target). It is shown as "not reached" and counts in the reached fraction.

Besides, `setting_splits` names the runs of one task, model, machine and
torch that fall into several cells only because a keyed run setting
(`suite.cells`: precision, compile, world size, pretrained weights, data,
variant) differs: they are never pooled, and the line says why.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, TextIO

from suite import cells, records
from suite.contention import busy_note
from suite.safe_io import plain
from suite.task import TARGETLESS_PROFILES  # profiles whose runs have no target by design

UNFIT_STATUSES = ("failed", "skipped", "interrupted")
_STOPS = {"budget": "its step budget", "time": "its time cap"}


def assess(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(reasons the run is unfit for comparison, notes on how it is counted) for a schema-valid record."""
    unfit, notes = [], []
    status = record.get("status")
    if status in UNFIT_STATUSES:
        unfit.append(f"status {status}" + (f" ({record['error']})" if record.get("error") else ""))
    target = record.get("target") or {}
    targetless = record.get("target") is None and record.get("profile") in TARGETLESS_PROFILES
    if targetless:
        pass  # measures throughput, utilisation and memory only
    elif not target.get("metric") or not isinstance(target.get("value"), (int, float)):
        unfit.append("no target (metric and value) to measure time-to-target against")
    elif not isinstance(target.get("higher_is_better"), bool):
        unfit.append("target.higher_is_better is not true/false")
    if not (record.get("hardware") or {}).get("label"):
        unfit.append("missing hardware fingerprint (hardware.label)")
    if not (record.get("software") or {}).get("torch"):
        unfit.append("missing software fingerprint (software.torch)")
    ttt = record.get("time_to_target_s")
    if record.get("reached_target") and not (isinstance(ttt, (int, float)) and 0 <= ttt < float("inf")):
        unfit.append(f"reached_target is true but time_to_target_s is {ttt!r}, not a time in seconds")
    unfit += insane_measures(record)
    if unfit:
        return unfit, notes
    if record.get("reached_target") and not records.reached(record):
        notes.append(f"reached_target is true but status is {status}: counted as not reached")
    elif status == "diverged":
        notes.append("diverged: counted as not reached; no quality, throughput or memory")
    elif targetless:
        return unfit, notes
    elif not records.reached(record):
        stop = record.get("stop_reason")
        why = f"{_STOPS[stop]} ran out" if stop in _STOPS else f"it stopped ({stop or 'reason not recorded'})"
        notes.append(f"{why} before {target['metric']} reached {target['value']}: counted as not reached")
    if status == "ok" and target["metric"] not in (record.get("final_metrics") or {}):
        notes.append(f"final_metrics has no {target['metric']!r}: no final quality")
    return unfit, notes


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def insane_measures(record: dict[str, Any]) -> list[str]:
    """Reasons a measured value cannot be right: negative, non-finite, or a throughput without a unit."""
    reasons = []
    for key in ("time_to_target_s", "train_time_s", "warmup_s", "eval_time_s", "wall_time_s", "peak_mem_mb",
                "flops_per_sample"):
        value = record.get(key)
        if value is not None and not (_finite(value) and value >= 0):
            reasons.append(f"{key} is {value!r}: not a finite, non-negative measure")
    for key in ("params", "steps", "samples"):
        value = record.get(key)
        if value is not None and value < 0:
            reasons.append(f"{key} is {value!r}: negative")
    throughput = record.get("throughput")
    if throughput is not None and record.get("status") == "ok":
        value = throughput.get("value")
        if not (_finite(value) and value >= 0):
            reasons.append(f"throughput.value is {value!r}: not a finite, non-negative rate")
        if not (isinstance(throughput.get("unit"), str) and throughput["unit"].strip()):
            reasons.append("throughput has no unit")
        for unit, rate in (throughput.get("extra") or {}).items():
            if rate is not None and not (_finite(rate) and rate >= 0):
                reasons.append(f"throughput.extra[{plain(unit)!r}] is {rate!r}: not a finite, non-negative rate")
    if record.get("status") == "ok":
        for metric, value in (record.get("final_metrics") or {}).items():
            if value is not None and not _finite(value):
                reasons.append(f"final_metrics[{plain(metric)!r}] is {value!r}: not finite")
    return reasons


def is_fit(record: dict[str, Any]) -> bool:
    return not assess(record)[0]


def unit_conflicts(recs: Iterable[dict[str, Any]]) -> list[str]:
    """One line per task / model whose fit runs report throughput in more than one unit."""
    units: dict[str, set[str]] = {}
    for r in recs:
        unit = (r.get("throughput") or {}).get("unit")
        if unit and is_fit(r):
            units.setdefault(f"{r['task']} / {r['model']} ({r.get('profile')})", set()).add(str(unit))
    return [f"{name}: throughput in mixed units ({', '.join(sorted(u))}): no throughput median"
            for name, u in sorted(units.items()) if len(u) > 1]


def setting_splits(recs: Iterable[dict[str, Any]]) -> list[str]:
    """One line per task / model / machine / torch whose fit runs differ only in keyed settings (separate cells)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in recs:
        if not is_fit(r):
            continue
        target = r.get("target") or {}
        key = (str(r["task"]), str(r["task_version"]), str(r["profile"]), str(r.get("dataset")),
               str(target.get("metric")), str(target.get("value")), str(r["model"]),
               str((r.get("hardware") or {}).get("label")), str((r.get("software") or {}).get("torch")))
        groups.setdefault(key, []).append(r)
    lines = []
    for key, group in sorted(groups.items()):
        settings = [cells.cell_settings(r) for r in group]
        differ = cells.differing(settings)
        if not differ:
            continue
        n_cells = len({tuple(s[k] for k in differ) for s in settings})
        parts = []
        for name in differ:
            counts: dict[str, int] = {}
            for s in settings:
                counts[s[name]] = counts.get(s[name], 0) + 1
            parts.append(f"{name} " + " vs ".join(f"{v} ({n} run{'s' if n > 1 else ''})"
                                                 for v, n in sorted(counts.items())))
        lines.append(f"{key[0]} / {key[6]} on {key[7]} (torch {key[8]}): {len(group)} runs in {n_cells} cells, "
                     f"separate only by {'; '.join(parts)}")
    return lines


def empty_folders(paths: Iterable[Path | str], recs: list[dict[str, Any]]) -> list[str]:
    """One line per given folder in which no valid record was found."""
    found = [Path(r["_path"]).resolve() for r in recs if "_path" in r]
    return [f"{folder}: no dlbench records in this folder" for folder in map(Path, paths)
            if folder.is_dir() and not any(folder.resolve() in f.parents for f in found)]


def _content(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "_path"}, sort_keys=True, default=str)


def conflicting_ids(recs: Iterable[dict[str, Any]]) -> set[str]:
    """run_ids found in more than one record with different contents: no table uses any of them."""
    contents: dict[str, set[str]] = {}
    for r in recs:
        contents.setdefault(r["run_id"], set()).add(_content(r))
    return {run_id for run_id, seen in contents.items() if len(seen) > 1}


def duplicates(recs: Iterable[dict[str, Any]]) -> list[str]:
    """One line per record whose run_id was already seen: counted once if identical, left out if not."""
    recs = list(recs)
    conflicts = conflicting_ids(recs)
    first: dict[str, str] = {}
    lines = []
    for r in recs:
        path = r.get("_path", "?")
        if r["run_id"] in first:
            how = ("different contents: left out of every table, keep the right one"
                   if r["run_id"] in conflicts else "counted once")
            lines.append(f"{path}: duplicate of {first[r['run_id']]} (same run_id, {how})")
        else:
            first[r["run_id"]] = path
    return lines


def orphan_temp_files(paths: Iterable[Path | str]) -> list[str]:
    """One line per temporary file left by a write that was killed (safe to delete)."""
    lines = []
    for folder in map(Path, paths):
        if folder.is_dir():
            lines += [f"{p}: left by an interrupted write; delete it" for p in sorted(folder.rglob(".*.tmp"))
                      if p.is_file() and not p.name.startswith(".dlbench-write-test.")]
    return lines


def check_paths(paths: list[Path], out: TextIO | None = None) -> int:
    """Print one line per unreadable file, unfit run, not-reached run and duplicate.

    Returns 0 when every record is fit (not-reached runs are fine), 1 when a
    file is not a valid record or a run is unfit, 2 when there is no record at all.
    """
    out = out or sys.stdout
    bad: list[str] = []
    recs = records.read_records(paths, warn=bad.append)

    def say(kind: str, line: str) -> None:
        print(plain(f"{kind:<11} {line}"), file=out)

    for line in bad + empty_folders(paths, recs):
        say("invalid", line)
    unfit_count = 0
    for r in recs:
        unfit, notes = assess(r)
        unfit_count += bool(unfit)
        for reason in unfit:
            say("unfit", f"{r['_path']}: {reason}")
        for note in notes:
            say("not reached", f"{r['_path']}: {note}")
        busy = busy_note(r)
        if busy and not unfit:
            say("busy host", f"{r['_path']}: {busy}")
    conflicts = conflicting_ids(recs)
    for line in duplicates(recs):
        say("duplicate", line)
    for line in unit_conflicts(recs):
        say("mixed units", line)
    for line in setting_splits(recs):
        say("separate", line)
    orphans = orphan_temp_files(paths)
    for line in orphans:
        say("orphan", line)
    if not recs:
        print(plain(f"check: no dlbench records in {', '.join(map(str, paths))}"), file=out)
        return 2
    extra = (f", {len(conflicts)} run_ids with conflicting records" if conflicts else "") + \
        (f", {len(orphans)} orphan temp files" if orphans else "")
    print(plain(f"check: {len(recs)} records, {len(recs) - unfit_count} fit for comparison, "
                f"{unfit_count} unfit, {len(bad)} invalid files{extra}"), file=out)
    return 1 if unfit_count or bad or conflicts else 0
