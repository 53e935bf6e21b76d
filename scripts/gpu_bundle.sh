#!/usr/bin/env bash
# Put into DIR what a bare GPU machine (no network; Python 3.12 with torch, torchvision,
# torchaudio, transformers, tokenizers, accelerate, pandas, scipy, scikit-learn, matplotlib,
# psutil, opencv, tqdm, pytest already installed) lacks to run scripts/gpu_check.sh:
#   DIR/wheels/  CPython 3.12 manylinux x86_64 wheels of the dlbench dependencies it lacks,
#                at the versions this checkout's .venv runs (the reference stack)
#   DIR/data/    Fashion-MNIST's four IDX .gz files (the quick image task's data)
# Run it here, where the package index is reachable:  bash scripts/gpu_bundle.sh DIR
# It prints the total size, which must stay under 60 MiB (the GPU tool carries 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/gpu_bundle.sh DIR}
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || { echo "gpu_bundle: $python not found: run scripts/setup.sh first (or set PYTHON)" >&2; exit 2; }

# What the GPU image lacks (DATA.md, 'A GPU machine'), and what those need that it lacks too.
missing=(gymnasium farama-notifications ale-py minatar soundfile cffi pycparser espeakng-loader jiwer rapidfuzz click
         datasets dill multiprocess filelock jsonschema jsonschema-specifications referencing rpds-py fastjsonschema
         vaderSentiment orjson)
pins=()
for name in "${missing[@]}"; do
  version=$("$python" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")
  [ -n "$version" ] && pins+=("$name==$version")
done

# bench/ppo_vs_sb3.py's baseline (the `sb3` extra), at the installed version or else pyproject's range.
sb3=$("$python" -c "import importlib.metadata as m
try: print('stable-baselines3==' + m.version('stable-baselines3'))
except m.PackageNotFoundError: print('stable-baselines3>=2.3,<3')")
pins+=("$sb3")

mkdir -p "$dir/wheels" "$dir/data"
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$dir/wheels" "${pins[@]}"

fashion=/usr/share/datasets/fashion-mnist
if [ -d "$fashion" ]; then
  cp "$fashion"/*-ubyte.gz "$dir/data/"
else
  echo "gpu_bundle: $fashion missing (apt-get install dataset-fashion-mnist): the GPU check will skip quick image" >&2
fi

bytes=$(du -sb "$dir" | cut -f1)
printf 'gpu_bundle: %s wheels + %s data files in %s: %.1f MiB\n' "$(ls "$dir/wheels" | wc -l)" \
  "$(ls "$dir/data" | wc -l)" "$dir" "$(echo "$bytes / 1048576" | bc -l)"
if [ "$bytes" -gt $((60 * 1048576)) ]; then
  echo "gpu_bundle: the bundle is over 60 MiB: drop data or a wheel" >&2
  exit 1
fi
