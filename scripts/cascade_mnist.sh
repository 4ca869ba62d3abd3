#!/usr/bin/env bash
# Cascaded diffusion's conditioning augmentation on MNIST at a CPU budget (docs/ldm.md, "Cascaded diffusion"):
# the three variants of configs/ldm/mnist_cascade.py (a 14x14 base, a 14 -> 28 stage with Gaussian conditioning
# augmentation at levels 0..250, the same stage without) trained STEPS steps each (default 1500); then KID
# (Inception) of N_SAMPLES cascade samples (default 500; subsets of N_SAMPLES / 2) against REF_IMAGES training
# images (default 5000) for each stage at sampling levels LEVELS (default "0 100 250"), the augmented stage also
# truncated at TRUNCATED (default "100 250"), with the floor of N_SAMPLES test images; grids of the base and of
# each cascade; a table and a plot (python -m scripts.cascade_table ROOT).
# Usage: scripts/cascade_mnist.sh [root] (default runs/cascade_mnist). Each call starts no new work after LIMIT
# seconds (default 2400; training is stopped there with a checkpoint), so it ends inside one working block; the
# same call resumes, skipping what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-runs/cascade_mnist}"
STEPS="${STEPS:-1500}"
N_SAMPLES="${N_SAMPLES:-500}"
REF_IMAGES="${REF_IMAGES:-5000}"
LEVELS="${LEVELS:-0 100 250}"
TRUNCATED="${TRUNCATED:-100 250}"
LIMIT="${LIMIT:-2400}"
CONFIG=configs/ldm/mnist_cascade.py
REF_CONFIG=configs/ldm/mnist_cascade.py:stage
# shellcheck source=scripts/mnist_kid_blocks.sh
. scripts/mnist_kid_blocks.sh

train_variants "$CONFIG" "$STEPS" base stage stage_noaug
if [[ ! -f "$OUT/samples_base.png" ]]; then
  python main.py --config "$CONFIG:base" --workdir "$ROOT/base" --config.training.num_steps="$STEPS" --mode sample
  cp "$ROOT/base/sample/step_$STEPS/samples.png" "$OUT/samples_base.png"
fi

# cascade VARIANT LEVEL TRUNCATED: KID and a grid of the cascade base -> VARIANT at LEVEL.
cascade() {
  local name="$2_$1$([[ "$3" == True ]] && echo _truncated)"
  local run=(--config "$CONFIG:$2" --workdir "$ROOT/$2" --config.training.num_steps="$STEPS"
             --config.cascade.base_workdir="$ROOT/base" --config.cascade.sample_level="$1" --config.cascade.truncated="$3")
  if [[ ! -f "$OUT/kid_$name.json" ]]; then
    stop_if_late
    python main.py "${run[@]}" --mode eval --config.eval.num_samples="$N_SAMPLES" \
      --config.eval.reference_stats="$REF" --config.eval.kid_subset_size=$((N_SAMPLES / 2))
    cp "$ROOT/$2/eval/step_$STEPS/eval_metrics.json" "$OUT/kid_$name.json"
  fi
  if [[ ! -f "$OUT/samples_$name.png" ]]; then
    python main.py "${run[@]}" --mode sample
    cp "$ROOT/$2/sample/step_$STEPS/samples.png" "$OUT/samples_$name.png"
  fi
}
for level in $LEVELS; do
  cascade "$level" stage False
  cascade "$level" stage_noaug False
done
for level in $TRUNCATED; do
  cascade "$level" stage True
done
python -m scripts.cascade_table "$ROOT"
