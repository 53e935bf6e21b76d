"""Helpers the test modules share: hand-written records, and tiny audio datasets in their on-disk layouts.

Test modules import them from here (`from tests.helpers import make_record`), never from another
test module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from suite.results import records
from tasks.speech import SAMPLE_RATE


_UNSET: Any = object()


def compile_spy(monkeypatch) -> list[str]:
    """Wrap torch.compile for one test: the list it returns gets the class name of every module compiled."""
    import torch

    compiled: list[str] = []
    original = torch.compile

    def spy(model, *args, **kwargs):
        compiled.append(type(model).__name__)
        return original(model, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    return compiled


def load_script(relative: str, name: str):
    """A bench/ or scripts/ file imported as a module (they are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_record(task: str = "toy", model: str = "mlp", seed: int = 0, hardware: str = "A", ttt: float | None = 10.0,
                quality: float | None = _UNSET, version: int = 1, status: str = "ok", torch: str = "2.11.0",
                throughput: float = 100.0, unit: str = "samples/s", mem: float = 500.0, target: float = 0.8,
                train_time: float | None = None, run_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid, consistent record; `ttt=None` means the target was not reached (the step budget ran out).

    The curve's second point is where the target was met (at `ttt`), or the last evaluation. The final
    quality is 0.9 by default, 0.7 for a run that did not reach the target (0.8).
    """
    if quality is _UNSET:
        quality = 0.9 if ttt is not None or status != "ok" else 0.7
    train = train_time if train_time is not None else (ttt or 20.0) + 1.0
    last = ttt if ttt is not None and status == "ok" else train
    curve = [{"step": 10, "time_s": last / 2, "samples": 640, "test/accuracy": 0.5},
             {"step": 20, "time_s": last, "samples": 1280, "test/accuracy": quality if quality is not None else 0.1}]
    record = {
        "schema": records.SCHEMA, "run_id": run_id or f"{task}.{model}.{hardware}.v{version}.s{seed}.{torch}",
        "task": task, "task_version": version, "model": model, "profile": "smoke", "dataset": "digits",
        "seed": seed, "status": status, "error": None if status in ("ok", "diverged") else "RuntimeError: boom",
        "target": {"metric": "test/accuracy", "value": target, "higher_is_better": True, "source": "test"},
        "reached_target": ttt is not None and status == "ok",
        "time_to_target_s": ttt if status == "ok" else None, "train_time_s": train, "wall_time_s": train + 2,
        "stop_reason": "target" if ttt is not None else "budget", "steps": 20, "samples": 1280,
        "final_metrics": {"test/accuracy": quality} if quality is not None else {},
        "throughput": {"value": throughput, "unit": unit}, "peak_mem_mb": mem, "params": 1000, "curve": curve,
        "hardware": {"label": hardware, "device": "cpu", "device_name": f"cpu of {hardware}", "cpu": "x86",
                     "cores": 2, "ram_gb": 8.0, "gpus": 0, "gpu_mem_gb": None, "driver": None, "hostname": hardware},
        "software": {"python": "3.11.7", "torch": torch, "cuda": None, "cudnn": None, "dlbench": "0.1.0",
                     "git_commit": "abc", "os": "Linux"},
        "config": {"budget": {"max_steps": 20, "max_time_s": 60}, "seed": seed},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
    }
    record.update(fields)
    assert records.validate(record) == []
    return record


def write_all(folder: Path, recs: list[dict[str, Any]]) -> Path:
    for r in recs:
        records.write_record(r, folder)
    return folder


RATE = SAMPLE_RATE  # what the readers expect


def write_wav(path: Path, seconds: float = 1.0, fmt: str = "WAV") -> None:
    import soundfile as sf  # the speech extra

    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(str(path))).integers(-3000, 3000, int(RATE * seconds)).astype(np.int16)
    sf.write(path, noise, RATE, format=fmt, subtype="PCM_16")


def write_speech_commands(root: Path) -> Path:
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    for word in ("yes", "no", "go", "bed", "dog"):
        for speaker in ("aaaa1111", "bbbb2222", "cccc3333"):
            write_wav(base / word / f"{speaker}_nohash_0.wav")
    write_wav(base / "_background_noise_" / "white_noise.wav", seconds=3.0)
    (base / "validation_list.txt").write_text("yes/bbbb2222_nohash_0.wav\nbed/bbbb2222_nohash_0.wav\n")
    (base / "testing_list.txt").write_text("yes/cccc3333_nohash_0.wav\nno/cccc3333_nohash_0.wav\n"
                                           "dog/cccc3333_nohash_0.wav\n")
    (base / "go" / "aaaa1111_nohash_0.wav").write_bytes(b"RIFF\x00\x00not a wav")  # corrupt
    return base


def write_librispeech(root: Path, subset: str) -> None:
    chapter = root / "LibriSpeech" / subset / "19" / "198"
    for utt in range(3):
        write_wav(chapter / f"19-198-{utt:04d}.flac", seconds=1.5, fmt="FLAC")
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 IT'S A TEST\n")
    (chapter / "19-198-0001.flac").write_bytes(b"fLaC broken")  # corrupt audio
