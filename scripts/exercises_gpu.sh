#!/usr/bin/env bash
# The full-size exercises on one accelerator, one part per call, each sized to fit in about 8 minutes on one
# H100/H200-class GPU from a fresh machine (the kit's install included; docs/device.md):
#   mnist    Song's score-SDE tutorial at its full length (configs/sde/mnist_tutorial.py: 50 epochs at batch 32,
#            93,750 steps), bits/dim of the whole 10,000-image test split through the probability-flow ODE
#            (rtol = atol = 1e-5, the paper's), and the 64-sample grid of the end of training;
#   cifar10  DDPM++ cont. (VP) (configs/sde/cifar10_ddpmpp_continuous.py) trained for the time the part allows,
#            then bits/dim of the 10,000 test images with NFE and seconds per image;
#   ldm      latent diffusion on the 56 CelebA-HQ faces at 256x256 (scripts/ldm_celebahq256.sh's steps), at the
#            notebook's sizes and then at the exercise's own (the 55.3M vq-f4 and the 5M UNet, EPOCHS=50 epochs
#            each): reconstruction PSNR, samples, the memorisation check; each training call stops at VQ_LIMIT /
#            UNET_LIMIT seconds (75 each) and resumes.
# Training stops at TRAIN_LIMIT seconds (SIGTERM: the trainer saves a checkpoint and the same command resumes)
# and the likelihood at LIKELIHOOD_LIMIT (it streams per batch and resumes); the run folders stay in
# RUNS/<part> (default runs/exercises_gpu/<part> of the machine's checkout), so calling the part again while the
# machine is warm continues both, and the table says how far each got. Each part writes into OUT/<part>/: its summaries
# (metrics.json of training, likelihood.json), samples.png, and <part>.md, the table for the README with the
# date and the machine. The data: JAXGEN_DATA_ROOT, else .device_data/ (DATA=1 scripts/device_kit.sh copies
# ../shared/data's MNIST, CIFAR-10 and faces there, to carry), else ../shared/data.
#
#   here:   DATA=1 scripts/device_kit.sh
#   there:  run(command='scripts/exercises_gpu.sh mnist $OUT', carry=['.device_kit', '.device_data'],
#               timeout_s=590)
#
# Usage: scripts/exercises_gpu.sh [mnist|cifar10|ldm] [OUT] (default mnist, runs/exercises_gpu/out). TINY=1 runs the
# part at CPU sizes (a few steps, a few test images, a small DDPM++) and allows a CPU:
# tests/runtime/test_exercises_gpu.py does so in CI. PYTHON picks the interpreter, DEVICE_KIT the wheel folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PART="${1:-mnist}"
case "$PART" in mnist|cifar10|ldm) ;; *) echo "error: the part is mnist, cifar10 or ldm, not '$PART'" >&2; exit 2;; esac
OUT="${2:-runs/exercises_gpu/out}"
mkdir -p "$OUT/$PART"
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
KIT="${DEVICE_KIT:-$ROOT/.device_kit}"
LOG="$OUT/$PART/run.log"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/exercises_gpu.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
WHAT="EXERCISES ($PART)"
# shellcheck source=scripts/device_env.sh
source "$ROOT/scripts/device_env.sh"
if [[ -z "${JAXGEN_DATA_ROOT:-}" ]]; then
  if [[ -d "$ROOT/.device_data" ]]; then JAXGEN_DATA_ROOT="$ROOT/.device_data"; else JAXGEN_DATA_ROOT="$(dirname "$ROOT")/shared/data"; fi
fi
export JAXGEN_DATA_ROOT
RUN_DIR="${RUNS:-$ROOT/runs/exercises_gpu}/$PART"

# limited WHAT LIMIT_NAME LOGFILE COMMAND...: runs COMMAND with its output in LOGFILE, stopped by SIGTERM at
# ${!LIMIT_NAME} seconds (timeout's exit 124: the trainer saves a checkpoint, the likelihood keeps its streamed
# batches, and the same call resumes); says DONE, STOPPED or FAILED (the last line of its output, and exits 1).
limited() {
  local what=$1 name=$2 logfile=$3 start=$SECONDS rc
  shift 3
  set +e
  timeout -s TERM -k 120 "${!name}" "$@" >>"$logfile" 2>&1
  rc=$?
  set -e
  case $rc in
    0) say "$what DONE in $((SECONDS - start)) s" ;;
    124) say "$what STOPPED at its ${!name} s limit ($name); the same call resumes" ;;
    *) say "$what FAILED (exit $rc): $(grep -v '^\s*$' "$logfile" | tail -1)"; exit 1 ;;
  esac
  return 0
}

if [[ "$PART" == ldm ]]; then
  # Two stages, each scripts/ldm_celebahq256.sh's steps on the 56 shared faces at 256x256: 'notebook', the sizes
  # of docs/tutorials/ldm_celebahq256.ipynb (configs/ldm/celebahq256_exercise.py), then 'exercise', the exercise's
  # own: vq_f4.py's 55.3M-parameter first stage on whole images and the 5M UNet, each EPOCHS (default 50) epochs.
  FACES=$(find "$JAXGEN_DATA_ROOT/celebahq_samples" -name '*.jpg' | wc -l)
  EPOCHS="${EPOCHS:-50}"
  if [[ "${TINY:-0}" == 1 ]]; then
    SIZES_VQ=(--config.data.image_size=32 --config.preprocess.size=32 --config.autoencoder.ch=8
              --config.autoencoder.norm_groups=8 --config.autoencoder.num_codes=32 --config.autoencoder.disc_ndf=8
              --config.autoencoder.disc_layers=2 --config.autoencoder.disc_start=1 --config.training.batch_size=2
              --config.training.num_steps=2 --config.training.log_every=1 --config.training.checkpoint_every=2)
    SIZES_UNET=(--config.data.image_size=32 --config.model.model_channels=32 --config.model.channel_mult='(1, 2)'
                --config.training.batch_size=4 --config.training.num_steps=2 --config.training.log_every=1
                --config.training.checkpoint_every=2 --config.sampling.num_steps=3 --config.sampling.num_samples=4
                --config.sampling.batch_size=4)
    VQ_LIMIT="${VQ_LIMIT:-300}" UNET_LIMIT="${UNET_LIMIT:-300}"
  else
    SIZES_VQ=() SIZES_UNET=()
    VQ_LIMIT="${VQ_LIMIT:-75}" UNET_LIMIT="${UNET_LIMIT:-75}"
  fi
  # The faces resized once, in RUN_DIR/images, for both stages (they differ in the first stage and the steps only).
  IMAGES="$RUN_DIR/images"
  for STAGE in notebook exercise; do
    DIR="$RUN_DIR/$STAGE"
    STAGE_LOG="$OUT/ldm/$STAGE.log"
    : >"$STAGE_LOG"
    COMMON=(--config.data.path="$IMAGES" --config.preprocess.output="$IMAGES" --config.runtime.progress_bar=False)
    VQ=("$PYTHON" main.py --config configs/ldm/celebahq256_exercise.py:vq --workdir "$DIR/vq" "${COMMON[@]}")
    UNET=("$PYTHON" main.py --config configs/ldm/celebahq256_exercise.py:ldm --workdir "$DIR/ldm" "${COMMON[@]}"
          --config.latent.first_stage_workdir="$DIR/vq")
    if [[ "$STAGE" == exercise ]]; then
      VQ+=(--config.autoencoder.ch=128 --config.autoencoder.num_res_blocks=2 --config.autoencoder.num_codes=8192
           --config.autoencoder.train_crop=0 --config.training.num_steps=$(((EPOCHS * FACES + 3) / 4)))
      UNET+=(--config.training.num_steps=$(((EPOCHS * FACES + 7) / 8)))
    fi
    VQ+=("${SIZES_VQ[@]}") UNET+=("${SIZES_UNET[@]}")
    [[ "${TINY:-0}" == 1 && "$STAGE" == notebook ]] && VQ+=(--config.autoencoder.train_crop=16)
    [[ -d "$IMAGES" ]] || "${VQ[@]}" --mode preprocess >>"$STAGE_LOG" 2>&1
    limited "LDM $STAGE: FIRST STAGE" VQ_LIMIT "$STAGE_LOG" "${VQ[@]}" --mode train_autoencoder
    "${VQ[@]}" --mode reconstruct >>"$STAGE_LOG" 2>&1
    limited "LDM $STAGE: UNET" UNET_LIMIT "$STAGE_LOG" "${UNET[@]}" --mode train
    "${UNET[@]}" --mode sample >>"$STAGE_LOG" 2>&1
    "${UNET[@]}" --mode memorization >>"$STAGE_LOG" 2>&1
  done
  "$PYTHON" -m scripts.exercise_table ldm "$RUN_DIR" "$OUT/ldm" 2>&1 | tee -a "$LOG"
  exit 0
fi

if [[ "$PART" == mnist ]]; then
  CONFIG=(--config configs/sde/mnist_tutorial.py)
  LIKELIHOOD=(--config.likelihood.max_examples=0 --config.likelihood.rtol=1e-5 --config.likelihood.atol=1e-5)
else
  CONFIG=(--config configs/sde/cifar10_ddpmpp_continuous.py)
  LIKELIHOOD=(--config.likelihood.max_examples=0 --config.likelihood.batch_size=250)
fi
COMMON=(--config.runtime.progress_bar=False)
if [[ "${TINY:-0}" == 1 ]]; then
  COMMON+=(--config.data.max_examples=64 --config.training.num_steps=4 --config.training.batch_size=8
           --config.training.log_every=2 --config.training.checkpoint_every=4 --config.sampling.num_steps=4
           --config.sampling.num_samples=8 --config.sampling.batch_size=8)
  LIKELIHOOD+=(--config.likelihood.max_examples=4 --config.likelihood.batch_size=4 --config.likelihood.rtol=1e-2
               --config.likelihood.atol=1e-2)
  [[ "$PART" == cifar10 ]] && COMMON+=(--config.model.nf=16 --config.model.num_res_blocks=1
                                       --config.model.ch_mult='(1, 2)' --config.model.attn_resolutions='(16,)')
  TRAIN_LIMIT="${TRAIN_LIMIT:-300}" LIKELIHOOD_LIMIT="${LIKELIHOOD_LIMIT:-300}"
else
  # An H200 runs the tutorial U-Net's step in a few ms and DDPM++'s in about 0.2 s at batch 128 (device
  # suite); the limits leave the kit, the compiles and the grid their time inside one 590 s call.
  TRAIN_LIMIT="${TRAIN_LIMIT:-300}" LIKELIHOOD_LIMIT="${LIKELIHOOD_LIMIT:-180}"
fi
MAIN=("$PYTHON" main.py "${CONFIG[@]}" --workdir "$RUN_DIR" "${COMMON[@]}")
: >"$OUT/$PART/train.log"
: >"$OUT/$PART/likelihood.log"
limited TRAINING TRAIN_LIMIT "$OUT/$PART/train.log" "${MAIN[@]}" --mode train
# A run stopped before its last step has not drawn its grid: sample from the newest checkpoint.
if [[ ! -f "$RUN_DIR/metrics.json" ]] || ! grep -q 'TRAINING DONE' "$LOG"; then
  "${MAIN[@]}" --mode sample >>"$OUT/$PART/train.log" 2>&1
fi
limited LIKELIHOOD LIKELIHOOD_LIMIT "$OUT/$PART/likelihood.log" "${MAIN[@]}" --mode likelihood "${LIKELIHOOD[@]}"
"$PYTHON" -m scripts.exercise_table "$PART" "$RUN_DIR" "$OUT/$PART" 2>&1 | tee -a "$LOG"
