#!/usr/bin/env bash
# Improved DDPM's findings on MNIST at a CPU budget (docs/ldm.md, "Learned variances"): the unconditional UNet of
# configs/ldm/mnist_iddpm.py trained STEPS steps (default 1500) with the fixed variance beta~ (L_simple) and with
# learned-range variances (the hybrid loss); for each, the variational bound in bits/dim on the first N_TEST test
# images (default 100; all 1000 terms) and KID (Inception) of N_SAMPLES samples (default 500) drawn by strided
# sampling at 50 and 100 steps (subsets of N_SAMPLES / 2), against REF_IMAGES training images (default 5000), with
# its floor (N_SAMPLES test images against the same reference); then a table, a plot and grids
# (python -m scripts.iddpm_table ROOT).
# Usage: scripts/iddpm_mnist.sh [root] (default runs/iddpm_mnist). Each call starts no new work after LIMIT
# seconds (default 2400; training is stopped there with a checkpoint, and no other item takes more than about
# 8 minutes here), so it ends inside one working block; the same call resumes, skipping what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-runs/iddpm_mnist}"
STEPS="${STEPS:-1500}"
N_TEST="${N_TEST:-100}"
N_SAMPLES="${N_SAMPLES:-500}"
REF_IMAGES="${REF_IMAGES:-5000}"
LIMIT="${LIMIT:-2400}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
# Every call compiles the same samplers and Inception network: keep XLA's compilations between them.
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$ROOT/xla_cache}"
CONFIG=configs/ldm/mnist_iddpm.py
OUT="$ROOT/results"
mkdir -p "$OUT"
START=$(date +%s)
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
stop_if_late() {
  if (( $(left) <= 0 )); then
    echo "this call reached its LIMIT of $LIMIT s; run the same command again to continue"
    exit 0
  fi
}
REF="$OUT/reference_train$REF_IMAGES.npz"
FLOOR="$OUT/reference_test$N_SAMPLES.npz"
stats() { python -m gen_runtime.sample_quality.reference_stats --config "$CONFIG" "$@"; }
[[ -f "$REF" ]] || stats --split train --max_images "$REF_IMAGES" --out "$REF"
[[ -f "$FLOOR" ]] || stats --split test --max_images "$N_SAMPLES" --out "$FLOOR"
[[ -f "$OUT/kid_floor.json" ]] || stats --compare "$REF" "$FLOOR" > "$OUT/kid_floor.json"

for variant in fixed learned; do
  stop_if_late
  status=0
  timeout -s TERM -k 120 "$(left)" python main.py --config "$CONFIG:$variant" --workdir "$ROOT/$variant" \
    --config.training.num_steps="$STEPS" --mode train || status=$?
  if [[ "$status" -eq 124 ]]; then
    echo "training stopped at the LIMIT of $LIMIT s with a checkpoint; run the same command again to resume"
    exit 0
  elif [[ "$status" -ne 0 ]]; then
    exit "$status"
  fi
done

for variant in fixed learned; do
  W="$ROOT/$variant"
  RUN=(--config "$CONFIG:$variant" --workdir "$W" --config.training.num_steps="$STEPS")
  if [[ ! -f "$OUT/bound_$variant.json" ]]; then
    stop_if_late
    python main.py "${RUN[@]}" --mode likelihood --config.likelihood.max_examples="$N_TEST"
    cp "$W/likelihood/step_$STEPS/likelihood.json" "$OUT/bound_$variant.json"
  fi
  for n in 50 100; do
    if [[ ! -f "$OUT/kid_${variant}_$n.json" ]]; then
      stop_if_late
      python main.py "${RUN[@]}" --mode eval --config.sampling.num_steps="$n" --config.eval.num_samples="$N_SAMPLES" \
        --config.eval.reference_stats="$REF" --config.eval.kid_subset_size=$((N_SAMPLES / 2))
      cp "$W/eval/step_$STEPS/eval_metrics.json" "$OUT/kid_${variant}_$n.json"
    fi
    if [[ ! -f "$OUT/samples_${variant}_$n.png" ]]; then
      python main.py "${RUN[@]}" --mode sample --config.sampling.num_steps="$n"
      cp "$W/sample/step_$STEPS/samples.png" "$OUT/samples_${variant}_$n.png"
    fi
  done
done
python -m scripts.iddpm_table "$ROOT"
