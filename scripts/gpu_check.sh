#!/usr/bin/env bash
# Verify dlbench's whole GPU path on a bare GPU machine (no network; Python with torch). On an H200
# it takes over 15 minutes (its first eight steps: 545 s); where the GPU is held for less, run it in
# parts with --only (docs/results-h200.md). The steps:
#   1. the smoke suite, every model
#   2. the speed profile in bf16, then in fp32, then in bf16 with --compile (fixed-shape tasks)
#   3. the quick profile for the tasks whose data travels in the bundle (image classification,
#      Atari RL, keyword spotting after synthesising its corpus)
#   4. the CUDA tests (a few training steps of every task with host syncs made errors)
#   5. bench/harness_overhead.py (harness against a plain loop), bench/cuda_graphs.py (eager against
#      captured steps), ResNet-9's utilisation captured and compiled at two batch sizes, the quick
#      profile captured, the quick precision race, and bench/ppo_vs_sb3.py on two of the machine's
#      CPU cores (a second CPU kind)
# then the HTML report and the comparison table. Every record, the report and a log go to OUT.
#
#   bash scripts/gpu_check.sh [--device cuda|cpu] [--tiny] [--only "STEP,STEP"] BUNDLE OUT
#
# BUNDLE is what scripts/gpu_bundle.sh made on a connected machine: its wheels are installed
# offline into a private folder (never into the system Python). `--device cpu` runs the same
# steps here; `--tiny` shrinks every step to seconds (smoke data, a few steps): the test suite
# runs it that way so the script cannot rot. A failing step is reported and the rest go on;
# the exit status is 1 if any step failed. `--only` runs just the named steps (names as in the
# log's "== steps" summary, e.g. --only "cuda tests,report"): a rerun of what failed, or the check
# in parts where the GPU is held for less than the whole check takes.
set -uo pipefail

device=cuda
tiny=0
only=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=${2:?--device needs cuda or cpu}; shift 2 ;;
    --tiny) tiny=1; shift ;;
    --only) only=${2:?--only needs step names, e.g. "cuda tests,report"}; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "gpu_check: unknown flag $1 (use --device cuda|cpu, --tiny, --only STEPS)" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || { echo "usage: scripts/gpu_check.sh [--device cuda|cpu] [--tiny] [--only STEPS] BUNDLE OUT" >&2; exit 2; }
bundle=${args[0]}
out=${args[1]}
case "$device" in cuda|cpu) ;; *) echo "gpu_check: --device $device: use cuda or cpu" >&2; exit 2 ;; esac
steps="smoke suite,speed bf16,quick image,quick atari,quick keyword spotting,speed fp32,speed bf16 compile,cuda tests,harness overhead,cuda graphs,resnet9 utilisation,quick captured,quick precision race,ppo vs sb3 host cpu,report"
IFS=, read -ra wanted <<< "$only"
for name in "${wanted[@]}"; do
  case ",$steps," in *",$name,"*) ;; *) echo "gpu_check: --only: no step '$name' (steps: $steps)" >&2; exit 2 ;; esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
mkdir -p "$out" || { echo "gpu_check: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu_check.log") 2>&1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# -- install what the machine lacks, offline, into a private folder ------------------------
site=$work/site
if compgen -G "$bundle/wheels/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$bundle"/wheels/*.whl \
    || echo "gpu_check: installing the bundle's wheels failed; steps that need them will fail"
fi
# dlbench's own metadata, so its `dlbench.tasks` entry points resolve; the code runs from the checkout.
"$python" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site/dlbench" "$repo" \
  >/dev/null 2>&1 || echo "gpu_check: could not install dlbench's metadata (setuptools missing?)"
export PYTHONPATH="$repo:$site:$site/dlbench${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export DLBENCH_DATA=${DLBENCH_DATA:-$work/data}
# A private inductor cache: a compile step killed at its cap can leave a truncated kernel behind
# ("file too short"), and the shared /tmp cache would hand it to every later run.
export TORCHINDUCTOR_CACHE_DIR=$work/inductor
mkdir -p "$DLBENCH_DATA"
# Fashion-MNIST from the bundle, laid out as torchvision reads it offline.
if compgen -G "$bundle/data/*-ubyte.gz" >/dev/null && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  mkdir -p "$DLBENCH_DATA/FashionMNIST/raw"
  for gz in "$bundle"/data/*-ubyte.gz; do
    gunzip -c "$gz" > "$DLBENCH_DATA/FashionMNIST/raw/$(basename "$gz" .gz)"
  done
fi

results=$out/results
# The caps keep the time a GPU is held bounded; a CPU runs the same steps many times slower, so its caps
# stretch (the tiny steps already fit the plain caps).
cap_scale=1
if [ "$device" = cpu ] && [ "$tiny" = 0 ]; then cap_scale=8; fi
summary=()
failed=0
step() {  # step NAME LIMIT_S COMMAND...: run with a time cap, log its exit and time, go on
  local name=$1 limit=$(( $2 * cap_scale )) start rc
  shift 2
  case ",$only," in ",,"|*",$name,"*) ;; *) return 0 ;; esac  # not among --only's steps
  echo
  echo "== $name (cap ${limit}s): $*"
  start=$(date +%s)
  timeout --signal=TERM --kill-after=15 "$limit" "$@"
  rc=$?
  summary+=("$(printf '%-28s exit %3d  %4ds' "$name" "$rc" "$(( $(date +%s) - start ))")")
  [ "$rc" -eq 0 ] || failed=1
}
run_all=("$python" "$repo/run_all.py" --device "$device" --results "$results")

echo "gpu_check: device $device, tiny $tiny, python $("$python" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
"$python" -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")'
start_all=$(date +%s)

# Order: what proves the most first (the whole GPU path, then the figures), so a cut-off run still has them.
if [ "$tiny" = 1 ]; then
  step "smoke suite" 240 "${run_all[@]}" --profile smoke --models all
  step "speed fp32" 120 "${run_all[@]}" --profile speed --precision fp32 --max-steps 1 \
    --tasks image_classification,atari_rl
else
  step "smoke suite" 120 "${run_all[@]}" --profile smoke --models all
  step "speed bf16" 150 "${run_all[@]}" --profile speed --models all --precision bf16
  step "quick image" 60 "${run_all[@]}" --profile quick --tasks image_classification
  step "quick atari" 100 "${run_all[@]}" --profile quick --tasks atari_rl
  step "quick keyword spotting" 150 "${run_all[@]}" --profile quick --tasks keyword_spotting
  step "speed fp32" 150 "${run_all[@]}" --profile speed --models all --precision fp32
  # Fixed-shape tasks only: sentiment and speech draw 8 batch shapes each, so compiling them takes minutes
  # (and the PPO learner compiles its update).
  step "speed bf16 compile" 210 "${run_all[@]}" --profile speed --precision bf16 --compile \
    --tasks image_classification,keyword_spotting,atari_rl
fi
if [ "$device" = cuda ]; then
  step "cuda tests" 210 "$python" -m pytest -q -p no:cacheprovider -m cuda "$repo/tests/test_cuda.py" \
    "$repo/tests/test_ragged_source.py" "$repo/tests/test_flops.py" "$repo/tests/test_cuda_graphs.py"
fi
if [ "$tiny" = 1 ]; then
  step "harness overhead" 120 "$python" "$repo/bench/harness_overhead.py" --device "$device" \
    --profile smoke --steps 10 --reps 1 --warmup-reps 0 --out "$out/harness_overhead.json"
else
  step "harness overhead" 150 "$python" "$repo/bench/harness_overhead.py" --device "$device" \
    --out "$out/harness_overhead.json"
  if [ "$device" = cuda ]; then
    step "cuda graphs" 150 "$python" "$repo/bench/cuda_graphs.py" --out "$out/cuda_graphs.json"
    # ResNet-9 (the speed profile's image cnn, bf16) against the goal of 40% of the measured peak: captured,
    # eager kernels and compiled ones, at its recipe's batch of 512 and at 1,024 (eager too there; the
    # batch is a keyed setting: cells of their own). Every run is a record with its utilisation; a
    # failing one does not stop the others.
    step "resnet9 utilisation" 240 bash -c 'rc=0
      for how in --cuda-graphs "--compile --cuda-graphs"; do "$@" $how || rc=1; done
      for how in "" --cuda-graphs "--compile --cuda-graphs"; do "$@" --set recipe.batch_size=1024 $how || rc=1; done
      exit $rc' resnet9 "${run_all[@]}" --profile speed --tasks image_classification --models cnn --precision bf16
    # The quick profile with captured steps (one seed each): what the GPU's time to target is once it stops
    # waiting for kernel launches. Eager quick runs: the "quick ..." steps above and the race's bf16 runs below.
    step "quick captured" 150 "${run_all[@]}" --profile quick --cuda-graphs \
      --tasks image_classification,atari_rl,keyword_spotting
    # bf16 against fp32 (TF32) to the quick targets, the race behind the quick recipes' `cuda_tf32`.
    step "quick precision race" 240 "$python" "$repo/bench/gpu_precision.py" --time-to-target --reps 2 \
      --tasks image_classification,keyword_spotting,atari_rl --results "$results"
  fi
  # The GPU machine's own CPU is a second kind of CPU: PPO against Stable-Baselines3 on two of its
  # cores, as on the project's 2-core machines (its wheel travels in the bundle).
  pin=(); command -v taskset >/dev/null && pin=(taskset -c 0,1)
  # Env steps/s over 50k steps, then eval return after 20 s of training each (equal wall time).
  step "ppo vs sb3 host cpu" 200 env OMP_NUM_THREADS=2 CUDA_VISIBLE_DEVICES= "${pin[@]}" "$python" \
    "$repo/bench/ppo_vs_sb3.py" --reps 2 --env-steps 50000 --wall-s 20 --profile --precision bf16
fi
step "report" 60 "$python" -m suite.cli report "$results" --out "$out/report.html"

echo
echo "== steps ($(( $(date +%s) - start_all )) s in all)"
printf '%s\n' "${summary[@]}"
echo
"$python" -m suite.cli compare "$results"
exit "$failed"
