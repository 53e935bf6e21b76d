"""One run, start to record: resolve, seed, place, train, measure, write.

Whatever way a run ends (target, budget, divergence, crash, Ctrl-C, a
device that is not there), it ends as a record on disk; the suite then goes
on with the next run.
"""
from __future__ import annotations

import os
import secrets
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from suite import distributed, fingerprint, records
from suite.config import PRETRAINED_ENV, RunOptions
from suite.contention import HostLoad
from suite.context import RunContext, TrainResult
from suite.data import data_dir as resolve_data_dir
from suite.device import resolve_device, resolve_precision, seed_everything
from suite.errors import DlbenchError, SkipRun
from suite.memory import PeakMemory
from suite.task import RunSpec, Task, to_jsonable


def trainer_for(kind: str) -> Callable[[Task, RunContext], TrainResult]:
    if kind == "supervised":
        from suite.loop import train_supervised

        return train_supervised
    if kind == "rl":
        from suite.rl import train_rl

        return train_rl
    raise DlbenchError(f"task kind {kind!r} has no trainer: use 'supervised' or 'rl'")


def resolved_config(spec: RunSpec, opts: RunOptions, device: str, precision: str, world_size: int) -> dict[str, Any]:
    """Everything that decides what a run computes; its hash keys --resume."""
    return {
        **spec.to_dict(),
        "device": device,
        "precision": precision,
        "compile": opts.compile,
        "world_size": world_size,
        "max_time_s": opts.max_time_s,
        "max_steps": opts.max_steps,
        # A different pretrained encoder is a different run (and --resume must see it).
        "pretrained": os.environ.get(PRETRAINED_ENV) or None,
    }


def run_one(task_cls: type[Task], model: str, seed: int, opts: RunOptions,
            log: Callable[[str], None] = print, write: bool = True) -> dict[str, Any]:
    """Run `task_cls` x `model` with `seed`; return the record (written on rank 0 unless `write`
    is False: a Ray worker returns it and the driver writes it)."""
    started = _now()
    wall_start = time.perf_counter()
    spec = task_cls.spec_for(opts.profile, model, seed)
    try:
        device = resolve_device(opts.device)
    except SkipRun as exc:
        config = resolved_config(spec, opts, opts.device, opts.precision, 1)
        record = _record(spec, config, TrainResult(), "skipped", str(exc), started, wall_start, opts, None)
        return _write(record, opts, is_main=write)
    rank, world = distributed.init_from_env(device)
    precision = resolve_precision(opts.precision, device)
    config = resolved_config(spec, opts, str(device), precision, world)
    digest = records.config_hash(config)
    if opts.resume:
        existing = records.find_finished(opts.results, digest)
        if existing is not None:
            log(f"  resume: {Path(existing['_path']).name} already has this run ({existing['status']}), skipped")
            existing.pop("_path", None)
            return existing

    ctx = RunContext(device=device, precision=precision, compile=opts.compile,
                     generator=seed_everything(seed, device), seed=seed, rank=rank, world_size=world,
                     max_time_s=opts.max_time_s, max_steps=opts.max_steps,
                     log=log if rank == 0 else (lambda _m: None))
    result, status, error = ctx.result, "ok", None  # the trainer fills ctx.result as it goes
    memory, host = PeakMemory(device), HostLoad()
    folder = None
    try:
        folder = resolve_data_dir(opts.data_dir)
        task = task_cls(spec, folder)
        with memory, host:
            result = trainer_for(task_cls.kind)(task, ctx)
        status, error = result.status, result.error
    except SkipRun as exc:
        status, error = "skipped", str(exc)
    except KeyboardInterrupt:
        record = _record(spec, config, result, "interrupted", "interrupted by the user (Ctrl-C)",
                         started, wall_start, opts, memory.peak_mb, hw_device=device, world=world)
        record["host"] = host.summary()
        _write(record, opts, rank == 0 and write)
        raise
    except Exception as exc:  # noqa: BLE001 - any crash becomes a failed record; the suite goes on
        status, error = "failed", _one_line(exc)
        if not isinstance(exc, DlbenchError):
            log(traceback.format_exc(limit=6).rstrip())
    record = _record(spec, config, result, status, error, started, wall_start, opts,
                     memory.peak_mb if status in ("ok", "diverged") else None, hw_device=device, world=world)
    record["config_hash"] = digest
    record["host"] = host.summary()
    record["data_dir"] = str(folder) if folder else None
    return _write(record, opts, rank == 0 and write)


def planned_config(task_cls: type[Task], model: str, seed: int, opts: RunOptions, device: str) -> dict[str, Any]:
    """The resolved config that a worker placed on `device` computes for this run, found without
    that device (auto precision: bf16 on CUDA): a Ray driver's key for --resume."""
    spec = task_cls.spec_for(opts.profile, model, seed)
    precision = opts.precision if opts.precision != "auto" else ("bf16" if device.startswith("cuda") else "fp32")
    return resolved_config(spec, opts, device, precision, 1)


def lost_record(task_cls: type[Task], model: str, seed: int, opts: RunOptions, device: str,
                status: str, reason: str) -> dict[str, Any]:
    """The record of a run whose worker is gone (killed, node lost, cancelled): no figures, and
    the driver's fingerprint (the worker's went with it). Not written: the caller writes it."""
    spec = task_cls.spec_for(opts.profile, model, seed)
    config = planned_config(task_cls, model, seed, opts, device)
    record = _record(spec, config, TrainResult(), status, reason, _now(), time.perf_counter(), opts, None)
    record["config_hash"] = records.config_hash(config)
    return record


def skipped_record(task: str, model: str, seed: int, reason: str, opts: RunOptions) -> dict[str, Any]:
    """The record of a run that could not start at all (its task module failed to import)."""
    started = _now()
    record = {
        "schema": records.SCHEMA, "run_id": _run_id(task, model, opts.profile, seed),
        "task": task, "task_version": 0, "model": model, "profile": opts.profile, "dataset": None,
        "seed": seed, "status": "skipped", "error": reason, "target": None, "reached_target": False,
        "time_to_target_s": None, "train_time_s": None, "wall_time_s": 0.0, "final_metrics": {},
        "throughput": None, "peak_mem_mb": None, "params": None, "curve": [],
        "hardware": fingerprint.hardware(resolve_device("cpu"), opts.hardware_label),
        "software": fingerprint.software(), "config": {"profile": opts.profile, "seed": seed},
        "started_at": started, "finished_at": _now(),
    }
    return _write(record, opts, True)


def _record(spec: RunSpec, config: dict, result: TrainResult, status: str, error: str | None, started: str,
            wall_start: float, opts: RunOptions, peak_mb: float | None, hw_device=None, world: int = 1) -> dict:
    import torch

    device = hw_device if hw_device is not None else torch.device("cpu")
    return {
        "schema": records.SCHEMA,
        "run_id": _run_id(spec.task, spec.model, spec.profile, spec.seed),
        "task": spec.task,
        "task_version": spec.task_version,
        "model": spec.model,
        "profile": spec.profile,
        "dataset": spec.dataset,
        "seed": spec.seed,
        "status": status,
        "error": error,
        "target": to_jsonable(spec.target),
        "reached_target": bool(result.reached_target and status == "ok"),
        "time_to_target_s": result.time_to_target_s if status == "ok" else None,
        "steps_to_target": result.steps_to_target if status == "ok" else None,
        "train_time_s": result.train_time_s,
        "warmup_s": result.warmup_s,
        "eval_time_s": result.eval_time_s,
        "wall_time_s": round(time.perf_counter() - wall_start, 4),
        "stop_reason": result.stop_reason,
        "steps": result.steps,
        "samples": result.samples,
        "final_metrics": result.final_metrics,
        "throughput": result.throughput,
        "peak_mem_mb": peak_mb,
        "params": result.params,
        "flops_per_sample": result.flops_per_sample,
        "world_size": world,
        "curve": result.curve,
        "data_info": to_jsonable(result.data_info),
        "hardware": fingerprint.hardware(device, opts.hardware_label),
        "software": fingerprint.software(),
        "config": config,
        "started_at": started,
        "finished_at": _now(),
    }


def _write(record: dict, opts: RunOptions, is_main: bool) -> dict:
    if is_main:
        record["_path"] = str(records.write_record(to_jsonable(record), opts.results))
    return record


def _run_id(task: str, model: str, profile: str, seed: int) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{task}.{model}.{profile}.s{seed}.{stamp}.{secrets.token_hex(3)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
