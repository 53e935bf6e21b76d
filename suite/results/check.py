"""Record checks: which runs are fit for comparison, one line per problem.

`dlbench check DIR` prints these lines; `compare` and `report` apply the
same rules (`assess`, `unit_conflicts`), so a run left out of a table is
always one that `check` names, with the reason.

Four levels:
- unfit: the run is left out of every table (status failed / interrupted,
  no target, missing hardware or software fingerprint, measures that cannot
  be, fields that contradict each other: `suite.results.consistency`). Unreadable
  files and schema errors are unfit too.
- skipped: a run that could not happen here, by design or for a missing
  extra (a fitted model on the speed profile, no CUDA): listed with its
  reason, left out of the tables, and not a failure of the results.
- busy host: the run is counted, but other processes used much of the CPU
  while it trained (`host.other_cpu_share`), so its times may be inflated.
- counted as not reached: the run stays in its cell but has no
  time-to-target (it diverged, or its budget or time cap ran out before the
  target). It is shown as "not reached" and counts in the reached fraction.

Besides, `setting_splits` names the runs of one task, model, machine and
torch that fall into several cells only because a keyed run setting
(`suite.results.cells`: precision, compile, world size, threads, pretrained
weights, data, configuration, variant) differs: they are never pooled, and
the line says why. `reruns` finds runs of one configuration, seed and
commit on one machine done more than once: the newest counts, the others
are named as duplicates.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, TextIO

from suite.results import cells, consistency, records
from suite.measuring.contention import busy_note
from suite.results.safe_io import plain

UNFIT_STATUSES = ("failed", "skipped", "interrupted")
_STOPS = {"budget": "its step budget", "time": "its time cap"}


def assess(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(reasons the run is unfit for comparison, notes on how it is counted) for a schema-valid record.

    A record read from a file (it has `_path`) is assessed once: readers never change one, and every
    table asks again (the verdict is kept under `_verdict`, which is never written).
    """
    return cells.remembered(record, "_verdict", _assess)


def _assess(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    unfit, notes = [], []
    status = record.get("status")
    if status in UNFIT_STATUSES:
        unfit.append(f"status {status}" + (f" ({record['error']})" if record.get("error") else ""))
    target = record.get("target") or {}
    targetless = is_targetless(record)
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
    unfit += consistency.problems(record)
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


def is_targetless(record: dict[str, Any]) -> bool:
    """A run of a profile without a target by design (speed): the runner records target and reached_target
    both as null there, where a run that lacks a target it should have says reached_target false."""
    return record.get("target") is None and "reached_target" in record and record["reached_target"] is None


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
    found = [str(r["_path"]) for r in recs if "_path" in r]  # paths as `record_files` gave them: under a folder
    return [f"{folder}: no dlbench records in this folder" for folder in map(Path, paths)
            if folder.is_dir() and not any(f.startswith(os.path.join(str(folder), "")) for f in found)]


def _content(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if not k.startswith("_")}, sort_keys=True, default=str)


def conflicting_ids(recs: Iterable[dict[str, Any]]) -> set[str]:
    """run_ids found in more than one record with different contents: no table uses any of them."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_id.setdefault(r["run_id"], []).append(r)
    return {run_id for run_id, same in by_id.items() if len(same) > 1 and len({_content(r) for r in same}) > 1}


def duplicates(recs: Iterable[dict[str, Any]], superseded: dict[str, str] | None = None) -> list[str]:
    """One line per record whose run_id was already seen (counted once if identical, left out if not), and
    one per rerun of a configuration, seed and commit on one machine (the newest counts: `superseded`,
    what `reruns(recs)` gives, computed here when not given)."""
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
    by_id = {r["run_id"]: r for r in recs}
    for old, newest in (reruns(recs) if superseded is None else superseded).items():
        lines.append(f"{by_id[old].get('_path', old)}: rerun of the same configuration, seed and commit as "
                     f"{by_id[newest].get('_path', newest)}: only the newest counts")
    return lines


def repeated_seeds(recs: Iterable[dict[str, Any]], superseded: dict[str, str]) -> list[str]:
    """One line per seed of a cell that one machine ran with different code (torch, dlbench version or
    commit): cells do not key the code, so each run counts as a sample and the cell's n counts that seed
    more than once (`compare --by software` sets torch versions apart; moving one run out sets it right)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for r in recs:
        if r["run_id"] in seen or r["run_id"] in superseded or not is_fit(r):
            continue
        seen.add(r["run_id"])
        groups.setdefault(cells.seed_key(r), []).append(r)
    lines = []
    for group in groups.values():
        codes = sorted({" ".join(map(str, cells.code_key(r))) for r in group})
        if len(codes) > 1:
            r = group[0]
            lines.append(f"{r['task']} / {r['model']} ({r['profile']}) seed {r['seed']} on "
                         f"{(r.get('hardware') or {}).get('label')}: {len(group)} runs with different code "
                         f"(torch, dlbench, commit: {'; '.join(codes)}) each count in one cell: move all but one "
                         "out of the pool, or compare the torch versions with --by software")
    return lines


# Unfit runs a table's warnings name one line each; past this many they are counted per reason, so a
# folder of thousands of failed runs does not bury the other warnings (`dlbench check` names every one).
LEFT_OUT_NAMED = 25


def left_out(recs: Iterable[dict[str, Any]]) -> list[str]:
    """The warning lines of the unfit runs a table leaves out: the first LEFT_OUT_NAMED named with their
    file, the rest counted per reason; skipped runs (never started, by design) counted per reason."""
    lines: list[str] = []
    skipped: dict[str, int] = {}
    unnamed: dict[str, int] = {}
    for r in recs:
        for why in assess(r)[0]:
            if r.get("status") == "skipped":
                skipped[why] = skipped.get(why, 0) + 1
            elif len(lines) < LEFT_OUT_NAMED:
                lines.append(f"{r['_path']}: left out: {why}")
            else:
                unnamed[why] = unnamed.get(why, 0) + 1
    lines += [f"left out {n} more run{'s' if n > 1 else ''}: {why} (`dlbench check` names each)"
              for why, n in sorted(unnamed.items())]
    return lines + [f"left out {n} run{'s' if n > 1 else ''}: {why}" for why, n in sorted(skipped.items())]


def reruns(recs: Iterable[dict[str, Any]]) -> dict[str, str]:
    """{run_id: run_id of its newest rerun} for fit runs done again with the same configuration, seed,
    commit and settings on the same machine (`suite.results.cells.rerun_key`): each such run counts once, as its
    newest record, so two processes writing one folder, or a flag that names a task twice, never double
    a cell."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for r in recs:
        if r["run_id"] in seen or not is_fit(r):
            continue
        seen.add(r["run_id"])
        groups.setdefault(cells.rerun_key(r), []).append(r)
    superseded = {}
    for group in groups.values():
        if len(group) > 1:
            newest = max(group, key=recency)
            superseded.update({r["run_id"]: newest["run_id"] for r in group if r is not newest})
    return superseded


def recency(record: dict[str, Any]) -> tuple:
    """Sort key: when the run finished (then started), then its run_id, so the choice never depends on order."""
    return tuple(str(_moment(record.get(k))) for k in ("finished_at", "started_at")) + (str(record["run_id"]),)


def _moment(text: Any) -> str:
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def orphan_temp_files(paths: Iterable[Path | str]) -> list[str]:
    """One line per temporary file left by a write that was killed (safe to delete)."""
    lines = []
    for folder in map(Path, paths):
        if folder.is_dir():
            lines += [f"{p}: left by an interrupted write; delete it" for p in sorted(folder.rglob(".*.tmp"))
                      if p.is_file() and not p.name.startswith(".dlbench-write-test.")]
    return lines


def findings(paths: list[Path]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """([(kind, line)], counts) of `check`: one line per unreadable file, unfit, skipped and not-reached run,
    busy host, duplicate, unit mix, setting split and orphan temp file; counts of records, fit, unfit,
    skipped, invalid files, reruns, conflicting run_ids and orphans."""
    bad: list[str] = []
    recs = records.read_records(paths, warn=bad.append)
    found: list[tuple[str, str]] = [("invalid", line) for line in bad + empty_folders(paths, recs)]
    unfit_count = skipped = 0
    for r in recs:
        unfit, notes = assess(r)
        if r.get("status") == "skipped":  # by design or for want of a device or extra: the reason says which
            skipped += 1
            found.append(("skipped", f"{r['_path']}: {r.get('error') or 'no reason recorded'}"))
            continue
        unfit_count += bool(unfit)
        found += [("unfit", f"{r['_path']}: {reason}") for reason in unfit]
        found += [("not reached", f"{r['_path']}: {note}") for note in notes]
        busy = busy_note(r)
        if busy and not unfit:
            found.append(("busy host", f"{r['_path']}: {busy}"))
    conflicts = conflicting_ids(recs)
    superseded = reruns(recs)
    found += [("duplicate", line) for line in duplicates(recs, superseded)]
    found += [("mixed units", line) for line in unit_conflicts(recs)]
    found += [("separate", line) for line in setting_splits(recs)]
    orphans = orphan_temp_files(paths)
    found += [("orphan", line) for line in orphans]
    counts = {"records": len(recs), "fit": len(recs) - unfit_count - skipped, "unfit": unfit_count,
              "skipped": skipped, "invalid": len(bad), "reruns": len(superseded),
              "conflicting_run_ids": len(conflicts), "orphans": len(orphans)}
    return found, counts


def exit_status(counts: dict[str, int]) -> int:
    """0 when every record is fit or skipped (not-reached runs are fine), 1 when a file is not a valid
    record, a run is unfit or a run_id has conflicting records, 2 when there is no record at all."""
    if not counts["records"]:
        return 2
    return 1 if counts["unfit"] or counts["invalid"] or counts["conflicting_run_ids"] else 0


def check_paths(paths: list[Path], out: TextIO | None = None, as_json: bool = False) -> int:
    """Print `findings` (one line each, or one JSON document with `as_json`); return `exit_status`."""
    out = out or sys.stdout
    found, counts = findings(paths)
    status = exit_status(counts)
    if as_json:
        document = {"paths": [str(p) for p in paths], "exit_status": status, **counts,
                    "findings": [{"kind": kind, "line": plain(line)} for kind, line in found]}
        print(json.dumps(document, indent=1, ensure_ascii=True), file=out)
        return status
    for kind, line in found:
        print(plain(f"{kind:<11} {line}"), file=out)
    if not counts["records"]:
        print(plain(f"check: no dlbench records in {', '.join(map(str, paths))}"), file=out)
        return status
    extra = "".join(f", {counts[key]} {what}" for key, what in (
        ("reruns", "reruns counted once"), ("conflicting_run_ids", "run_ids with conflicting records"),
        ("orphans", "orphan temp files")) if counts[key])
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    print(plain(f"check: {counts['records']} records, {counts['fit']} fit for comparison, {counts['unfit']} unfit"
                f"{skipped}, {counts['invalid']} invalid files{extra}"), file=out)
    return status
