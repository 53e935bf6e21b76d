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


BF16_CPU_MIN_SPEEDUP = 2.0  # measured bf16 / fp32 matmul peak at or above which a CPU counts as fast in bf16


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' -> bf16 autocast on CUDA GPUs that support it, fp32 elsewhere (what `choose_precision`
    gives a recipe that declares no CPU bf16 win)."""
    return choose_precision(name, device)[0]


def choose_precision(request: str, device: torch.device, recipe_cpu_bf16: bool = False,
                     cpu_bf16: tuple[bool, str] | None = None, recipe_cuda_tf32: bool = False) -> tuple[str, str]:
    """(precision, why) for one run.

    An explicit `bf16` / `fp32` always wins. `auto`: on a CUDA GPU, bf16 autocast where the GPU
    supports it, unless the recipe declares fp32 (TF32) faster there (`Recipe.cuda_tf32`, backed by
    bench/gpu_precision.py); on a CPU, bf16 only when the recipe declares that bf16 reaches its
    target sooner there (`Recipe.cpu_bf16`, backed by a race in bench/) *and* the machine is fast
    in bf16 (`cpu_bf16`: (qualifies, evidence), from `suite.measuring.peak.cpu_bf16_fast`); fp32 otherwise.
    """
    if request != "auto":
        return request, f"--precision {request} asked explicitly"
    if device.type == "cuda":
        if recipe_cuda_tf32:
            return "fp32", ("auto: this recipe's steps run faster in fp32 (TF32) than in bf16 autocast on "
                            "CUDA GPUs (Recipe.cuda_tf32, bench/gpu_precision.py)")
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: bf16 autocast on a CUDA GPU that supports it"
        return "fp32", "auto: this CUDA GPU has no bf16 support"
    if device.type != "cpu":
        return "fp32", f"auto: fp32 on {device.type}"
    if not recipe_cpu_bf16:
        return "fp32", "auto: this recipe declares no bf16 win on CPUs (fp32 reaches its target as soon or sooner)"
    fast, evidence = cpu_bf16 if cpu_bf16 is not None else (False, "not checked")
    if fast:
        return "bf16", (f"auto: the recipe reaches its target sooner in bf16 on CPUs fast in bf16, "
                        f"and this one is ({evidence})")
    return "fp32", f"auto: the recipe prefers bf16 on CPUs fast in bf16, but this one is not ({evidence})"


def cpu_bf16_verdict(flags: list[str] | None, peak: dict | None) -> tuple[bool, str]:
    """(is this CPU fast in bf16?, the evidence in words) from its flags and its measured matmul peaks.

    The measured peaks decide: bf16 at least `BF16_CPU_MIN_SPEEDUP` x fp32 (AMX or AVX-512 BF16 dot
    products get there; bf16 emulated through fp32 runs at about 1x). A Linux CPU whose flags show
    no native bf16 (amx_bf16, avx512_bf16, Arm bf16) does not qualify whatever the figures say;
    `flags` None (no /proc/cpuinfo) leaves the peaks alone to decide. Peaks measured while other
    processes held the CPU (`suite.measuring.peak.measured_busy`) do not decide against native
    flags: under load the ratio falls (1.6x on a 2.4x machine), and one seed's precision would then
    depend on what else ran while the peak was first measured.
    """
    from suite.measuring.fingerprint import NATIVE_BF16_FLAGS, native_bf16
    from suite.measuring.peak import measured_busy

    native = native_bf16(flags)
    if native == []:
        return False, f"no native bf16 in the CPU flags ({', '.join(NATIVE_BF16_FLAGS)})"
    fp32, bf16 = (peak or {}).get("fp32"), (peak or {}).get("bf16")
    if not fp32 or not bf16:
        return False, f"no measured bf16 / fp32 peak ({(peak or {}).get('error') or 'not measured'})"
    ratio = bf16 / fp32
    flag_text = f"flags {', '.join(native)}; " if native else "flags unknown; "
    figures = f"{flag_text}measured matmul peak bf16 {bf16 / 1e9:,.0f} / fp32 {fp32 / 1e9:,.0f} GFLOP/s = {ratio:.1f}x"
    if ratio >= BF16_CPU_MIN_SPEEDUP:
        return True, figures
    if native and measured_busy(peak):
        return True, (f"{figures}, measured while others used {peak['other_cpu_share']:.0%} of the CPU: "
                      "the native bf16 flags decide")
    return False, f"{figures}, under {BF16_CPU_MIN_SPEEDUP:.0f}x"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_channels_last(device: torch.device, recipe_cpu: bool = False) -> bool:
    """NHWC helps convolutions on CUDA tensor cores; on a CPU only where the recipe declares it
    (`Recipe.cpu_channels_last`, backed by a race in bench/): oneDNN's NHWC kernels win for some
    small convnets and not for others."""
    return device.type == "cuda" or (device.type == "cpu" and recipe_cpu)


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
