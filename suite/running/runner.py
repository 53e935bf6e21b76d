"""One run, start to record: resolve, seed, place, train, measure, write.

Whatever way a run ends (target, budget, divergence, crash, Ctrl-C, a
device that is not there), it ends as a record on disk; the suite then goes
on with the next run. Ctrl-C or SIGTERM at any point of a run, the peak
FLOP/s measurement after training included, writes an `interrupted` record
with what the run had done (`RunState`); a second signal while that record
is written waits for it (`suite.running.interrupts`). The machine's and software's
fingerprints are taken before training, so building that record runs no
subprocess.
"""
from __future__ import annotations

import dataclasses
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from suite.measuring import fingerprint
from suite.results import records
from suite.running import distributed, interrupts
from suite.taskapi import variants
from suite.running.allocator import keep_freed_memory, release_freed_memory
from suite.running.config import RunOptions
from suite.measuring.contention import HostLoad
from suite.running.context import RunContext, TrainResult
from suite.taskapi.data import data_dir as resolve_data_dir
from suite.running.device import choose_precision, resolve_device, seed_everything
from suite.measuring.energy import EnergyMeter
from suite.errors import DlbenchError, SkipRun, Terminated
from suite.measuring.memory import PeakMemory
from suite.taskapi.models import family_of, is_estimator
from suite.taskapi.spec import RunSpec
from suite.taskapi.task import TaskBase
from suite.training import graphs
from suite.running.run_record import (ESTIMATOR_UTILISATION_NOTE, add_utilisation, build_record, convergence_figures,
                                      host_summary, now, one_line, save_record, skipped_record)


SYNC_DEBUG_ENV = "DLBENCH_SYNC_DEBUG"  # "warn" | "error": torch.cuda.set_sync_debug_mode inside train steps


def trainer_for(kind: str, profile: str = "", estimator: bool = False) -> Callable[[TaskBase, RunContext], TrainResult]:
    if estimator:  # fitted or a rule (`Model(estimator=True)`), whatever the task's kind (skipped on speed)
        from suite.training.estimator import train_estimator

        return train_estimator
    if profile == "speed":  # synthetic data at full shapes, timed steps only: the same path for every kind
        from suite.measuring.speed import train_speed

        return train_speed
    if kind == "supervised":
        from suite.training.loop import train_supervised

        return train_supervised
    if kind == "rl":
        from suite.training.rl import train_rl

        return train_rl
    raise DlbenchError(f"task kind {kind!r} has no trainer: use 'supervised' or 'rl'")


def resolved_config(spec: RunSpec, opts: RunOptions, device: str, precision: str, world_size: int) -> dict[str, Any]:
    """Everything that decides what a run computes; its hash keys --resume. `overrides` (and the
    recipe's `cpu_bf16`, `cpu_channels_last`, `cuda_tf32`, `ema_decay`, and `cuda_graphs`) are there only when
    set, so a default run keeps the hash it had before."""
    config = spec.to_dict()
    if not config.get("overrides"):
        config.pop("overrides", None)
    for flag in ("cpu_bf16", "cpu_channels_last", "cuda_tf32", "ema_decay"):
        if not config["recipe"].get(flag):
            config["recipe"].pop(flag, None)
    captured = {"cuda_graphs": True} if opts.cuda_graphs else {}  # only when set: a default run keeps its hash
    return {
        **config,
        "device": device,
        "precision": precision,
        # What the user asked: "auto" lets each machine use its own policy (bf16 on CUDA), and such
        # runs compare across machines; an explicit bf16 / fp32 keys a cell of its own (suite/results/cells.py).
        "precision_request": opts.precision,
        "compile": opts.compile,
        **captured,
        "world_size": world_size,
        "max_time_s": opts.max_time_s,
        "max_steps": opts.max_steps,
        "stop_at_target": not opts.train_to_budget,
    }


def graphs_allowed(model: str, fitted: bool, device, world_size: int) -> None:
    """Uncapturable (a `skipped` record) unless `--cuda-graphs` can capture this run's training steps: on
    CUDA, in one process, for a model trained by steps (not `fitted`). What a step itself cannot take (host
    syncs, shapes that never repeat) is found when it is captured (`suite.training.graphs`)."""
    graphs.require_cuda(device)
    if world_size > 1:
        raise graphs.Uncapturable(f"data-parallel steps (world size {world_size}) are not captured: run without "
                                  "torchrun")
    if fitted:
        raise graphs.Uncapturable(f"{model} is fitted, not trained by steps: there is no step to capture")


def run_spec(task_cls: type[TaskBase], model: str, seed: int, opts: RunOptions) -> RunSpec:
    """The resolved RunSpec of one run: the task's profile, `--set` values, and `--target-value`."""
    spec = task_cls.spec_for(opts.profile, model, seed, task_options(task_cls, opts), variant_settings(opts))
    if opts.target_value is not None and spec.target is not None:
        spec = dataclasses.replace(spec, target=dataclasses.replace(
            spec.target, value=opts.target_value, source=f"--target-value {opts.target_value:g}"))
    return spec


def task_options(task_cls: type[TaskBase], opts: RunOptions) -> dict[str, str]:
    """The `--set task.KEY=VALUE` values this task declares (a suite of several tasks hands each its own)."""
    declared = {opt.name for opt in task_cls.options}
    return {key: value for key, value in opts.settings("task").items() if key in declared}


def variant_settings(opts: RunOptions) -> dict[str, str]:
    """The `--set recipe.* / model.* / data.*` values, as {"recipe.lr": "0.01", ...} (applied by suite.taskapi.variants)."""
    return {f"{space}.{key}": value for space in variants.NAMESPACES for key, value in opts.settings(space).items()}


@dataclass
class RunState:
    """What a run knows so far: an interrupt at any point builds the run's record from this."""

    spec: RunSpec
    started: str
    wall_start: float
    family: str
    software: dict[str, Any]
    fitted: bool = False  # fitted or a rule (`Model(estimator=True)`): no steps to train, compile or capture
    device: Any = None
    rank: int = 0
    world: int = 1
    config: dict[str, Any] | None = None
    digest: str | None = None
    precision_reason: str | None = None
    hardware: dict[str, Any] | None = None
    result: TrainResult = field(default_factory=TrainResult)
    memory: PeakMemory | None = None
    host: HostLoad | None = None
    energy: EnergyMeter | None = None
    folder: Path | None = None
    record: dict[str, Any] | None = None  # built once training ended (the utilisation is measured after)
    saved: bool = False  # the run's own record is written: a signal that came during the write changes nothing


def run_one(task_cls: type[TaskBase], model: str, seed: int, opts: RunOptions,
            log: Callable[[str], None] = print, write: bool = True,
            finished: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run `task_cls` x `model` with `seed`; return the record (written on rank 0 unless `write`
    is False: a Ray worker returns it and the driver writes it). `finished`: the records a Ray driver's
    --resume found for this run, from any machine; the one `records.pick_finished` matches on this machine
    is returned instead of running (the results folder is the driver's, not read here)."""
    if opts.profile not in task_cls.profiles:  # e.g. a task from outside that has no speed profile yet
        return skipped_record(task_cls.name, model, seed,
                              f"task {task_cls.name!r} declares no {opts.profile!r} profile", opts)
    started = now()
    wall_start = time.perf_counter()
    keep_freed_memory()  # once per process: training reuses its buffers instead of faulting them in again
    release_freed_memory()  # what earlier runs here freed goes back: this run's peak memory is its own
    spec = run_spec(task_cls, model, seed, opts)
    state = RunState(spec, started, wall_start, family_of(task_cls, model), fingerprint.software(),
                     fitted=is_estimator(task_cls, model))
    with interrupts.first_signal_ends():
        try:
            return _run_planned(task_cls, spec, seed, opts, log, write, state, finished)
        except KeyboardInterrupt as exc:
            if not state.saved:
                with interrupts.deferred():
                    save_record(interrupted_record(state, opts, exc), opts, state.rank == 0 and write)
            raise


def interrupted_record(state: RunState, opts: RunOptions, exc: BaseException) -> dict[str, Any]:
    """The `interrupted` record of a run stopped by Ctrl-C or SIGTERM at any point, with what it had done."""
    why = str(exc) if isinstance(exc, Terminated) else "interrupted by the user (Ctrl-C)"
    if state.record is not None:  # training had ended: keep its figures, say where it stopped
        record = dict(state.record, status="interrupted", error=why + " while the machine's peak was measured")
        record["reached_target"] = False if record.get("target") is not None else None
        for name in ("time_to_target_s", "time_to_target_with_eval_s", "submission_time_to_target_s",
                     "wall_to_target_s", "steps_to_target", "normalised_time_to_target_s",
                     "energy_to_target_j"):
            record[name] = None
        return record
    config = state.config or resolved_config(state.spec, opts, str(state.device or opts.device), opts.precision,
                                             state.world)
    record = build_record(state.spec, config, state.result, "interrupted", why, state.started, state.wall_start, opts,
                     state.memory.peak_mb if state.memory else None, hw_device=state.device, world=state.world,
                     family=state.family, hardware=state.hardware, software=state.software, energy=state.energy)
    record["host"] = host_summary(state.host, state.result.torch_threads) if state.host else None
    if state.digest:
        record["config_hash"] = state.digest
    return record


def _run_planned(task_cls, spec, seed, opts, log, write, state: RunState, finished=None) -> dict[str, Any]:
    """Place the run, honour --resume, then train and measure it (`_run_resolved`)."""
    try:
        device = resolve_device(opts.device)
    except SkipRun as exc:
        config = resolved_config(spec, opts, opts.device, opts.precision, 1)
        record = build_record(spec, config, TrainResult(), "skipped", str(exc), state.started, state.wall_start, opts,
                         None, family=state.family, software=state.software)
        return save_record(record, opts, is_main=write)
    state.device = device
    state.hardware = fingerprint.hardware(device, opts.hardware_label)
    rank, world = distributed.init_from_env(device)
    state.rank, state.world = rank, world
    precision, precision_reason = run_precision(spec, opts, device, state.fitted)
    config = resolved_config(spec, opts, str(device), precision, world)
    digest = records.config_hash(config)
    state.config, state.digest, state.precision_reason = config, digest, precision_reason
    claim, existing = None, None
    if finished is not None:  # a Ray worker: its driver's records of this run, matched on this machine
        existing = records.pick_finished(finished, digest, state.hardware)
    elif opts.resume:
        if world == 1:  # two --resume processes on one folder: each run once (torchrun ranks share one run)
            claim = records.claim_run(opts.results, digest, state.hardware)
            if claim is None:
                log("  resume: another dlbench process is doing this run now, skipped")
                return {"status": "skipped", "error": "being run by another dlbench process",
                        "claimed_elsewhere": True}
        existing = records.find_finished(opts.results, digest, state.hardware)
    if existing is not None:
        if claim is not None:
            claim.release()
        log(f"  resume: {Path(existing['_path']).name} already has this run ({existing['status']}), skipped")
        return {k: v for k, v in existing.items() if not k.startswith("_")}
    try:
        return _run_resolved(task_cls, spec, seed, opts, log, precision, write, state)
    finally:
        if claim is not None:
            claim.release()


FITTED_PRECISION = ("fp32", "a fitted model fits and predicts on the host in fp32 (scikit-learn or a rule), "
                                "whatever --precision asks")


def run_precision(spec: RunSpec, opts: RunOptions, device, fitted: bool = False) -> tuple[str, str]:
    """(precision, why) of a run: `suite.running.device.choose_precision`; the CPU's bf16 speed is looked
    at (flags, measured peak) only when `auto` meets a recipe that declares a CPU bf16 win. A fitted model
    (`fitted`) records the fp32 it runs in, never a precision it was asked for and cannot use."""
    if fitted:
        return FITTED_PRECISION
    cpu_bf16 = None
    if opts.precision == "auto" and device.type == "cpu" and spec.recipe.cpu_bf16:
        from suite.measuring import peak

        cpu_bf16 = peak.cpu_bf16_fast(resolve_data_dir(opts.data_dir))
    return choose_precision(opts.precision, device, spec.recipe.cpu_bf16, cpu_bf16, spec.recipe.cuda_tf32)


def _run_resolved(task_cls, spec, seed, opts, log, precision, write, state: RunState) -> dict[str, Any]:
    device, rank, world = state.device, state.rank, state.world
    ctx = RunContext(device=device, precision=precision, compile=opts.compile, cuda_graphs=opts.cuda_graphs,
                     generator=seed_everything(seed, device), seed=seed, rank=rank, world_size=world,
                     max_time_s=opts.max_time_s, max_steps=opts.max_steps,
                     stop_at_target=not opts.train_to_budget, log=log if rank == 0 else (lambda _m: None),
                     sync_debug=os.environ.get(SYNC_DEBUG_ENV) or None)
    state.result = ctx.result  # the trainer fills ctx.result as it goes
    result, status, error = ctx.result, "ok", None
    state.memory, state.host = PeakMemory(device), HostLoad()
    state.energy = EnergyMeter(device)  # the counters found for this device; unreadable ones only leave a note
    fitted = state.fitted
    try:
        state.folder = resolve_data_dir(opts.data_dir)
        task = task_cls(spec, state.folder)
        if opts.cuda_graphs:
            graphs_allowed(spec.model, fitted, device, world)
        if opts.compile and fitted:
            raise SkipRun(f"--compile: {spec.model} is fitted, not trained by steps: there is no network to compile")
        with state.memory, state.host, state.energy:
            result = trainer_for(task_cls.kind, spec.profile, fitted)(task, ctx)
        state.result = result
        status, error = result.status, result.error
    except SkipRun as exc:
        status, error = "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001 - any crash becomes a failed record; the suite goes on
        status, error = "failed", one_line(exc)
        if not isinstance(exc, DlbenchError):
            log(traceback.format_exc(limit=6).rstrip())
    record = build_record(spec, state.config, result, status, error, state.started, state.wall_start, opts,
                     state.memory.peak_mb if status in ("ok", "diverged") else None, hw_device=device, world=world,
                     family=state.family, hardware=state.hardware, software=state.software, energy=state.energy)
    record["config_hash"] = state.digest
    record.update(convergence_figures(task_cls, spec, record))
    record["precision_reason"] = state.precision_reason  # why `precision` (beside the config: it changes nothing run)
    record["host"] = host_summary(state.host, result.torch_threads)
    record["data_dir"] = str(state.folder) if state.folder else None
    state.record = record
    if status in ("ok", "diverged"):
        add_utilisation(record, device, precision, state.folder, world)
        if fitted:
            record["utilisation_note"] = ESTIMATOR_UTILISATION_NOTE
    with interrupts.deferred():  # a signal during the write is raised once the record is on disk
        saved = save_record(record, opts, rank == 0 and write)
        state.saved = True
    return saved


def planned_config(task_cls: type[TaskBase], model: str, seed: int, opts: RunOptions, device: str) -> dict[str, Any]:
    """The resolved config that a worker placed on `device` computes for this run, found without
    that device (auto precision on CUDA: the recipe's, bf16 autocast unless it declares TF32; elsewhere
    the rule of `run_precision` on this machine's CPU): a Ray driver's config of a run its worker lost."""
    return _planned(task_cls, model, seed, opts, device)[1]


def _planned(task_cls: type[TaskBase], model: str, seed: int, opts: RunOptions, device: str) -> tuple[RunSpec, dict]:
    spec = run_spec(task_cls, model, seed, opts)
    fitted = is_estimator(task_cls, spec.model)
    if opts.precision == "auto" and device.startswith("cuda") and not fitted:
        precision = "fp32" if spec.recipe.cuda_tf32 else "bf16"
    else:  # explicit, fitted, or a CPU worker judged by this machine's CPU (unlike CPUs may key a rerun apart)
        import torch

        precision = run_precision(spec, opts, torch.device("cpu"), fitted)[0]
    return spec, resolved_config(spec, opts, device, precision, 1)


def lost_record(task_cls: type[TaskBase], model: str, seed: int, opts: RunOptions, device: str,
                status: str, reason: str) -> dict[str, Any]:
    """The record of a run whose worker is gone (killed, node lost, cancelled): no figures, and
    the driver's fingerprint (the worker's went with it). Not written: the caller writes it."""
    spec, config = _planned(task_cls, model, seed, opts, device)
    record = build_record(spec, config, TrainResult(), status, reason, now(), time.perf_counter(), opts, None,
                     family=family_of(task_cls, model))
    record["config_hash"] = records.config_hash(config)
    return record
