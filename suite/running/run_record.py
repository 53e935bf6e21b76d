"""The record of one run: built from what the trainer returned and the fingerprints, with utilisation and the
convergence-normalised time, and written atomically (a failed write costs that run, never the suite)."""
from __future__ import annotations

import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from suite.measuring import fingerprint
from suite.measuring.contention import HostLoad
from suite.measuring.energy import EnergyMeter, unmeasured
from suite.reporting import exporters
from suite.results import records
from suite.running import interrupts
from suite.running.allocator import keep_freed_memory
from suite.running.config import RunOptions
from suite.running.context import TrainResult
from suite.running.device import resolve_device
from suite.taskapi import variants
from suite.taskapi.spec import RunSpec, to_jsonable
from suite.taskapi.task import TaskBase


def convergence_figures(task_cls: type[TaskBase], spec: RunSpec, record: dict) -> dict[str, Any]:
    """The record's convergence-normalised time-to-target against the task's reference (suite.taskapi.convergence).

    Only a run of the reference's own model and recipe (no variant) is normalised: another model's
    steps are not the reference's steps."""
    from suite.taskapi.convergence import normalised, recipe_hash

    if spec.target is None or record.get("status") != "ok":
        return {"normalised_time_to_target_s": None, "convergence": None}
    if spec.overrides:
        return {"normalised_time_to_target_s": None,
                "convergence": {"why": "a variant of the recipe: the reference's steps do not apply"}}
    ref = task_cls.profiles[spec.profile].references.get(spec.model)
    return normalised({**record, "_recipe_hash": recipe_hash(spec.recipe)}, ref)


def host_summary(host: HostLoad, torch_threads: int | None = None) -> dict[str, Any] | None:
    """The record's `host`: how busy the machine was (HostLoad), the torch threads the run trained on
    (`torch_threads` where the trainer set its own, else the process's) and what the memory allocator did."""
    summary = host.summary()
    if summary is None:
        return None
    return {**summary, **({"torch_threads": torch_threads} if torch_threads else {}), "malloc": keep_freed_memory()}


def skipped_record(task: str, model: str, seed: int, reason: str, opts: RunOptions) -> dict[str, Any]:
    """The record of a run that could not start at all (its task module failed to import)."""
    started = now()
    record = {
        "schema": records.SCHEMA, "run_id": run_id(task, model, opts.profile, seed),
        "task": task, "task_version": 0, "model": model, "family": None, "profile": opts.profile, "dataset": None,
        "seed": seed, "status": "skipped", "error": reason, "target": None, "reached_target": False,
        "time_to_target_s": None, "train_time_s": None, "wall_time_s": 0.0, "final_metrics": {},
        "throughput": None, "peak_mem_mb": None, "params": None, "curve": [],
        "energy": unmeasured("not measured (the run did not start)"),
        "hardware": fingerprint.hardware(resolve_device("cpu"), opts.hardware_label),
        "software": fingerprint.software(), "config": {"profile": opts.profile, "seed": seed},
        "started_at": started, "finished_at": now(),
    }
    return save_record(record, opts, True)


ESTIMATOR_UTILISATION_NOTE = "a fitted estimator or a rule: no torch training FLOPs to set against the peak"


def add_utilisation(record: dict, device, precision: str, folder: Path, world: int) -> None:
    """The machine's measured peak into `hardware`, and `utilisation` (or null with `utilisation_note`).

    A figure above 1 means the cached peak was measured low (a busy machine): it is measured
    again once (the best of both is kept); still above 1, the FLOP count is wrong and no figure
    is given.
    """
    from suite.measuring import peak

    try:
        figures = peak.machine_peak(device, folder)
    except Exception as exc:  # noqa: BLE001 - a peak that cannot be measured costs the figure, never the run
        record["utilisation"] = None
        record["utilisation_note"] = f"the machine's peak was not measured ({one_line(exc)})"
        return
    rate = (record.get("throughput") or {}).get("value")
    value, note = peak.utilisation(record.get("flops_per_sample"), rate, figures, precision, world)
    if value is not None and value > 1:
        figures = peak.remeasure(device, folder, figures)
        value, note = peak.utilisation(record.get("flops_per_sample"), rate, figures, precision, world)
        if value is not None and value > 1:
            value, note = None, (f"model FLOP/s is {value:.2f}x the measured {precision} peak: the FLOP count "
                                 "or the peak is wrong, so no figure is given")
    record["hardware"]["peak_flops"] = {k: figures.get(k) for k in ("fp32", "bf16", "method", "error", "key",
                                                                     "measured_at", "other_cpu_share")}
    record["utilisation"] = value
    record["utilisation_note"] = note


def build_record(spec: RunSpec, config: dict, result: TrainResult, status: str, error: str | None, started: str,
            wall_start: float, opts: RunOptions, peak_mb: float | None, hw_device=None, world: int = 1,
            family: str = "deep", hardware: dict | None = None, software: dict | None = None,
            energy: EnergyMeter | None = None) -> dict:
    """The record of a run; `hardware` and `software` are the fingerprints when taken already; `energy` the
    run's meter (None: the run measured no energy)."""
    import torch

    device = hw_device if hw_device is not None else torch.device("cpu")
    return {
        "schema": records.SCHEMA,
        "run_id": run_id(spec.task, spec.model, spec.profile, spec.seed),
        "task": spec.task,
        "task_version": spec.task_version,
        "model": spec.model,
        "family": family,
        "variant": variants.label(spec.overrides),  # "recipe.lr=0.01,model.depth=4"; None: the recipe as declared
        "profile": spec.profile,
        "dataset": spec.dataset,
        "seed": spec.seed,
        "status": status,
        "error": error,
        "target": to_jsonable(spec.target),
        "reached_target": bool(result.reached_target and status == "ok") if spec.target is not None else None,
        # Train segments only: the machine's training speed, nothing else (docs/methodology.md)
        "time_to_target_s": result.time_to_target_s if status == "ok" else None,
        # Train and evaluation segments (warm-up and data work not counted)
        "time_to_target_with_eval_s": result.time_to_target_with_eval_s if status == "ok" else None,
        # AlgoPerf's submission time: training with warm-up/compilation, evaluations untimed
        "submission_time_to_target_s": result.submission_time_to_target_s if status == "ok" else None,
        # MLPerf's time-to-train: from the first touch of the data to the evaluation that met the target
        "wall_to_target_s": result.wall_to_target_s if status == "ok" else None,
        "steps_to_target": result.steps_to_target if status == "ok" else None,
        # Joules of the train segments to that evaluation, beside time_to_target_s (suite.measuring.energy)
        "energy_to_target_j": result.energy_to_target_j if status == "ok" else None,
        "seconds_per_step": result.seconds_per_step,
        "eval_cadence": result.eval_cadence,
        "data_s": result.data_s,
        "train_time_s": result.train_time_s,
        "warmup_s": result.warmup_s,
        "eval_time_s": result.eval_time_s,
        "wall_time_s": round(time.perf_counter() - wall_start, 4),
        "stop_reason": result.stop_reason,
        "steps": result.steps,
        "samples": result.samples,
        "final_metrics": result.final_metrics,
        "best": result.best,
        "throughput": result.throughput,
        "peak_mem_mb": peak_mb,
        "energy": energy.summary() if energy is not None else unmeasured("not measured (the run did not train)"),
        "params": result.params,
        "flops_per_sample": result.flops_per_sample,
        "flops_method": result.flops_method,
        "utilisation": None,
        "utilisation_note": "not measured (the run did not train)",
        "speed": result.speed,
        "world_size": world,
        "curve": result.curve,
        "data_info": to_jsonable(result.data_info),
        "hardware": hardware if hardware is not None else fingerprint.hardware(device, opts.hardware_label),
        "software": software if software is not None else fingerprint.software(),
        "config": config,
        "started_at": started,
        "finished_at": now(),
    }


def save_record(record: dict, opts: RunOptions, is_main: bool = True) -> dict:
    """Write the record on rank 0; a failed write is one line on stderr and `_write_error`, and the suite goes on."""
    if is_main:
        try:
            with interrupts.deferred():  # an interrupt waits for the write, then is raised
                record["_path"] = str(records.write_record(to_jsonable(record), opts.results))
            exporters.after_record(record, opts)
        except (OSError, ValueError, TypeError) as exc:
            record["_write_error"] = one_line(exc)
            print(f"error: record {record['run_id']} not written to {records.runs_dir(opts.results)} "
                  f"({record['_write_error']}): the run is lost, the others go on", file=sys.stderr)
    return record


def run_id(task: str, model: str, profile: str, seed: int) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{task}.{model}.{profile}.s{seed}.{stamp}.{secrets.token_hex(3)}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
