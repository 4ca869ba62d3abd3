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
CONFIG=configs/ldm/mnist_iddpm.py
REF_CONFIG=configs/ldm/mnist_iddpm.py
# shellcheck source=scripts/mnist_kid_blocks.sh
. scripts/mnist_kid_blocks.sh

train_variants "$CONFIG" "$STEPS" fixed learned

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
