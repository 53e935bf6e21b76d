"""TensorBoard event files generated from run records (`--tensorboard DIR`, `dlbench export tensorboard`).

`write_events(record, folder)` writes DIR/<run_id>/ after the run, from the
record alone, so no training step pays for it and old records convert too:
one scalar series per curve metric (`val/accuracy`, ...) against the step,
with wall times from `started_at` plus each evaluation's `time_s`; the
outcome (time to target, throughput, peak memory) as scalars under
`outcome/`; and the run settings (task, model, profile, seed, precision,
machine, the resolved configuration) as a text summary. The run's folder is
filled under a temporary name and renamed into place, so a reader never sees
half a run. Needs the `tensorboard` package (extra `all`).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from suite.results.numbers import number

OUTCOME = ("time_to_target_s", "time_to_target_with_eval_s", "wall_to_target_s", "steps_to_target",
           "train_time_s", "wall_time_s", "peak_mem_mb", "params")


def _start_s(record: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(record.get("started_at") or "").timestamp()
    except ValueError:
        return 0.0


def settings_text(record: dict[str, Any]) -> str:
    """The run's settings as Markdown (TensorBoard's text tab renders it)."""
    hardware = record.get("hardware") or {}
    rows = [("task", f"{record.get('task')} v{record.get('task_version')}"), ("model", record.get("model")),
            ("profile", record.get("profile")), ("seed", record.get("seed")), ("status", record.get("status")),
            ("precision", (record.get("config") or {}).get("precision")), ("machine", hardware.get("label")),
            ("target", json.dumps(record.get("target"))), ("run_id", record.get("run_id"))]
    table = "| setting | value |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    config = json.dumps(record.get("config") or {}, indent=1, sort_keys=True, default=str)
    return table + "\n    " + config.replace("\n", "\n    ")  # indented: a code block in Markdown


def write_events(record: dict[str, Any], folder: Path) -> Path:
    """Event files of one record into FOLDER/<run_id>/ (replacing an older copy); returns that folder."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from suite.errors import DlbenchError

        raise DlbenchError("--tensorboard needs the tensorboard package: pip install -e '.[all]'") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / record["run_id"]
    staging = Path(tempfile.mkdtemp(prefix=f".{record['run_id']}.", dir=folder))
    try:
        start = _start_s(record)
        writer = SummaryWriter(log_dir=str(staging))
        for point in record.get("curve") or []:
            step = int(point.get("step") or 0)
            wall = start + (number(point.get("time_s"), None) or 0.0)
            for key, value in point.items():
                if key not in ("step", "time_s") and number(value, None) is not None:
                    writer.add_scalar(key, float(value), global_step=step, walltime=wall)
        end = start + (number(record.get("wall_time_s"), None) or 0.0)
        outcome = {k: number(record.get(k), None) for k in OUTCOME}
        outcome["throughput"] = number((record.get("throughput") or {}).get("value"), None)
        for key, value in outcome.items():
            if value is not None:
                writer.add_scalar(f"outcome/{key}", value, global_step=0, walltime=end)
        writer.add_text("settings", settings_text(record), global_step=0, walltime=start)
        writer.close()
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def export(dirs: list[Path], out: Path) -> list[Path]:
    """Event files for every record under `dirs` into OUT/<run_id>/."""
    from suite.results import records

    return [write_events(record, out) for record in records.read_records(dirs)]
