#!/usr/bin/env bash
# The latent-diffusion exercise at CPU size (docs/ldm.md, docs/tutorials/ldm_celebahq256.ipynb): the 56 shared
# CelebA-HQ faces resized 1024 -> 256, a reduced vq-f4 first stage trained on them, then the 5,072,643-parameter
# UNet on its 64x64x3 latents, 16 samples at 256x256 and the memorisation check (configs/ldm/celebahq256_exercise.py).
# One part per call; training stops at LIMIT seconds (default 2640, 44 minutes; SIGTERM makes the trainer save a
# checkpoint) and the same call resumes it, so each call ends inside one working block on 2 CPU cores:
#   vq    preprocess, train_autoencoder (VQ_STEPS, default the config's 800), reconstruct (PSNR of the 56 faces)
#   ldm   train (LDM_STEPS, default the config's 600; the latents are encoded first), sample, memorization
# Usage: scripts/ldm_celebahq256.sh vq|ldm [root] (default runs/celebahq256: root/images, root/vq, root/ldm).
# Rerunning resumes; a larger *_STEPS continues a finished run.
set -euo pipefail
cd "$(dirname "$0")/.."
PART="${1:?usage: scripts/ldm_celebahq256.sh vq|ldm [root]}"
[[ "$PART" == vq || "$PART" == ldm ]] || { echo "error: the part is vq or ldm, not '$PART'" >&2; exit 2; }
ROOT="${2:-runs/celebahq256}"
mkdir -p "$ROOT"
ROOT="$(cd "$ROOT" && pwd)"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
CONFIG=configs/ldm/celebahq256_exercise.py
LIMIT="${LIMIT:-2640}"
# Trains for at most LIMIT seconds; stopped there, says so and ends the call (the same call resumes).
train() {
  local status=0
  timeout -s TERM -k 120 "$LIMIT" python main.py "$@" || status=$?
  if [[ "$status" -eq 124 ]]; then
    echo "training stopped at its LIMIT of $LIMIT s with a checkpoint; run the same command again to resume"
    exit 0
  fi
  return "$status"
}
COMMON=(--config.data.path="$ROOT/images" --config.preprocess.output="$ROOT/images" --config.runtime.progress_bar="${PROGRESS:-True}")
if [[ "$PART" == vq ]]; then
  RUN=(--config "$CONFIG:vq" --workdir "$ROOT/vq" "${COMMON[@]}" ${VQ_STEPS:+--config.training.num_steps=$VQ_STEPS})
  [[ -d "$ROOT/images" ]] || python main.py "${RUN[@]}" --mode preprocess
  train "${RUN[@]}" --mode train_autoencoder
  python main.py "${RUN[@]}" --mode reconstruct
else
  [[ -d "$ROOT/vq/checkpoints" ]] || { echo "error: no first stage in $ROOT/vq; run the vq part first" >&2; exit 2; }
  RUN=(--config "$CONFIG:ldm" --workdir "$ROOT/ldm" "${COMMON[@]}" --config.latent.first_stage_workdir="$ROOT/vq"
       ${LDM_STEPS:+--config.training.num_steps=$LDM_STEPS})
  train "${RUN[@]}" --mode train
  python main.py "${RUN[@]}" --mode sample
  python main.py "${RUN[@]}" --mode memorization
fi
