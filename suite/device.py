"""Device, precision and seeding: identical for every task, so comparisons are fair."""
from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np
import torch

from suite.errors import SkipRun


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA, then MPS, then CPU. An explicit device that is absent -> SkipRun."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SkipRun(f"--device {name}: no CUDA device on this machine (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SkipRun(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SkipRun(f"--device {name}: MPS is not available on this machine (use --device cpu or auto)")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' -> bf16 autocast on CUDA GPUs that support it, fp32 elsewhere."""
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_channels_last(device: torch.device) -> bool:
    """NHWC helps convolutions on CUDA tensor cores; on CPU it is not reliably faster."""
    return device.type == "cuda"


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed Python, NumPy and torch; return the CPU generator that orders the data."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if device.type == "cuda":
        # Fast and repeatable enough: cuDNN autotuning stays on, as in MLPerf reference runs.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.Generator().manual_seed(seed)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextlib.contextmanager
def no_host_sync(ctx) -> Iterator[None]:
    """Inside: `torch.cuda.set_sync_debug_mode(ctx.sync_debug)` on CUDA ("error": any host sync raises).

    Trainers wrap their train steps (data, forward, backward, optimizer) in it, so a test can prove
    that the steps never make the host wait for the GPU; eval points and logging stay outside.
    """
    mode = getattr(ctx, "sync_debug", None)
    if not mode or ctx.device.type != "cuda":
        yield
        return
    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(before)
