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
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, TextIO

from suite import records
from suite.contention import busy_note

UNFIT_STATUSES = ("failed", "skipped", "interrupted")
TARGETLESS_PROFILES = ("speed",)  # profiles whose runs have no target by design (suite.speed)
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
    if unfit:
        return unfit, notes
    if status == "diverged":
        notes.append("diverged: counted as not reached; no quality, throughput or memory")
    elif targetless:
        return unfit, notes
    elif not record.get("reached_target"):
        stop = record.get("stop_reason")
        why = f"{_STOPS[stop]} ran out" if stop in _STOPS else f"it stopped ({stop or 'reason not recorded'})"
        notes.append(f"{why} before {target['metric']} reached {target['value']}: counted as not reached")
    if status == "ok" and target["metric"] not in (record.get("final_metrics") or {}):
        notes.append(f"final_metrics has no {target['metric']!r}: no final quality")
    return unfit, notes


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


def empty_folders(paths: Iterable[Path | str], recs: list[dict[str, Any]]) -> list[str]:
    """One line per given folder in which no valid record was found."""
    found = [Path(r["_path"]).resolve() for r in recs if "_path" in r]
    return [f"{folder}: no dlbench records in this folder" for folder in map(Path, paths)
            if folder.is_dir() and not any(folder.resolve() in f.parents for f in found)]


def duplicates(recs: Iterable[dict[str, Any]]) -> list[str]:
    """One line per record whose run_id was already seen (it is counted once)."""
    first: dict[str, str] = {}
    lines = []
    for r in recs:
        path = r.get("_path", "?")
        if r["run_id"] in first:
            lines.append(f"{path}: duplicate of {first[r['run_id']]} (same run_id): counted once")
        else:
            first[r["run_id"]] = path
    return lines


def check_paths(paths: list[Path], out: TextIO | None = None) -> int:
    """Print one line per unreadable file, unfit run, not-reached run and duplicate.

    Returns 0 when every record is fit (not-reached runs are fine), 1 when a
    file is not a valid record or a run is unfit, 2 when there is no record at all.
    """
    out = out or sys.stdout
    bad: list[str] = []
    recs = records.read_records(paths, warn=bad.append)
    for line in bad + empty_folders(paths, recs):
        print(f"invalid     {line}", file=out)
    unfit_count = 0
    for r in recs:
        unfit, notes = assess(r)
        unfit_count += bool(unfit)
        for reason in unfit:
            print(f"unfit       {r['_path']}: {reason}", file=out)
        for note in notes:
            print(f"not reached {r['_path']}: {note}", file=out)
        busy = busy_note(r)
        if busy and not unfit:
            print(f"busy host   {r['_path']}: {busy}", file=out)
    for line in duplicates(recs):
        print(f"duplicate   {line}", file=out)
    for line in unit_conflicts(recs):
        print(f"mixed units {line}", file=out)
    if not recs:
        print(f"check: no dlbench records in {', '.join(map(str, paths))}", file=out)
        return 2
    print(f"check: {len(recs)} records, {len(recs) - unfit_count} fit for comparison, "
          f"{unfit_count} unfit, {len(bad)} invalid files", file=out)
    return 1 if unfit_count or bad else 0
