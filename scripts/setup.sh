#!/usr/bin/env bash
# Set up dlbench on a fresh machine: a virtual environment (.venv) with the reference
# stack pinned in constraints.txt (inside pyproject.toml's ranges), and the offline data of the quick profile that comes
# from the system's package manager. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi

# A constraints file that left pyproject.toml's ranges stops here, naming the package.
"$python" scripts/check_constraints.py pyproject.toml constraints.txt

# Reinstall only when pyproject.toml or constraints.txt changed since the last successful install.
stamp=.venv/.dlbench-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # ray (--executor ray, ~75 MB wheel) too, so the test suite's Ray tests run in CI.
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[all,test,ray]"
  echo "$want" > "$stamp"
fi

# Fashion-MNIST (image classification, quick profile): Debian ships it; elsewhere
# torchvision downloads it on first use when online.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if ! $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; then
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || echo "note: could not install Debian's dataset-fashion-mnist; torchvision will download Fashion-MNIST when online"
  fi
fi
# The held-out sets of the speech tasks (quick profile): flite's voices (ood_flite) and LibriVox recordings
# (real_librivox). Without them those sets are skipped, with this install line in the record.
if command -v apt-get >/dev/null 2>&1 && { ! command -v flite >/dev/null 2>&1 \
    || [ ! -d /usr/share/pocketsphinx/test/data/librivox ]; }; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if ! $sudo apt-get install -y -q flite pocketsphinx-testdata >/dev/null 2>&1; then
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    $sudo apt-get install -y -q flite pocketsphinx-testdata >/dev/null 2>&1 \
      || echo "note: could not install Debian's flite and pocketsphinx-testdata; the speech tasks will skip ood_flite and real_librivox"
  fi
fi
echo "dlbench is set up in .venv"
