#!/usr/bin/env bash
# The full-size exercises on one accelerator, one part per call, each sized to fit in about 8 minutes on one
# H100/H200-class GPU from a fresh machine (the kit's install included; docs/device.md):
#   mnist    Song's score-SDE tutorial at its full length (configs/sde/mnist_tutorial.py: 50 epochs at batch 32,
#            93,750 steps), bits/dim of the whole 10,000-image test split through the probability-flow ODE
#            (rtol = atol = 1e-5, the paper's), and the 64-sample grid of the end of training;
#   cifar10  DDPM++ cont. (VP) (configs/sde/cifar10_ddpmpp_continuous.py) trained for the time the part allows,
#            then bits/dim of the 10,000 test images with NFE and seconds per image.
# Training stops at TRAIN_LIMIT seconds (SIGTERM: the trainer saves a checkpoint and the same command resumes)
# and the likelihood at LIKELIHOOD_LIMIT (it streams per batch and resumes); the run folders stay in
# RUNS/<part> (default runs/exercises_gpu/<part> of the machine's checkout), so calling the part again while the
# machine is warm continues both, and the table says how far each got. Each part writes into OUT/<part>/: its summaries
# (metrics.json of training, likelihood.json), samples.png, and <part>.md, the table for the README with the
# date and the machine. The data: JAXGEN_DATA_ROOT, else .device_data/ (DATA=1 scripts/device_kit.sh copies
# ../shared/data's MNIST and CIFAR-10 there, to carry), else ../shared/data.
#
#   here:   DATA=1 scripts/device_kit.sh
#   there:  run(command='scripts/exercises_gpu.sh mnist $OUT', carry=['.device_kit', '.device_data'],
#               timeout_s=590)
#
# Usage: scripts/exercises_gpu.sh [mnist|cifar10] [OUT] (default mnist, runs/exercises_gpu/out). TINY=1 runs the
# part at CPU sizes (a few steps, a few test images, a small DDPM++) and allows a CPU:
# tests/runtime/test_exercises_gpu.py does so in CI. PYTHON picks the interpreter, DEVICE_KIT the wheel folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PART="${1:-mnist}"
case "$PART" in mnist|cifar10) ;; *) echo "error: the part is mnist or cifar10, not '$PART'" >&2; exit 2;; esac
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
           --config.training.log_every=2 --config.training.checkpoint_every=4 --config.sampling.num_steps=4 --config.sampling.num_samples=8
           --config.sampling.batch_size=8)
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

# Training: stopped by SIGTERM at its limit (timeout's exit 124; the checkpoint saved) or finished (0).
start=$SECONDS
set +e
timeout -s TERM "$TRAIN_LIMIT" "${MAIN[@]}" --mode train >"$OUT/$PART/train.log" 2>&1
rc=$?
set -e
case $rc in
  0) say "TRAINING DONE in $((SECONDS - start)) s" ;;
  124) say "TRAINING STOPPED at its $TRAIN_LIMIT s limit (TRAIN_LIMIT), checkpoint saved; the same call resumes" ;;
  *) say "TRAINING FAILED (exit $rc): $(grep -v '^\s*$' "$OUT/$PART/train.log" | tail -1)"; exit 1 ;;
esac
# A run stopped before its last step has not drawn its grid: sample from the newest checkpoint.
if [[ ! -f "$RUN_DIR/metrics.json" ]] || [[ $rc != 0 ]]; then
  "${MAIN[@]}" --mode sample >>"$OUT/$PART/train.log" 2>&1
fi
start=$SECONDS
set +e
timeout -s TERM "$LIKELIHOOD_LIMIT" "${MAIN[@]}" --mode likelihood "${LIKELIHOOD[@]}" >"$OUT/$PART/likelihood.log" 2>&1
rc=$?
set -e
case $rc in
  0) say "LIKELIHOOD DONE in $((SECONDS - start)) s" ;;
  124) say "LIKELIHOOD STOPPED at its $LIKELIHOOD_LIMIT s limit (LIKELIHOOD_LIMIT); the same call resumes" ;;
  *) say "LIKELIHOOD FAILED (exit $rc): $(grep -v '^\s*$' "$OUT/$PART/likelihood.log" | tail -1)"; exit 1 ;;
esac
"$PYTHON" -m scripts.exercise_table "$PART" "$RUN_DIR" "$OUT/$PART" 2>&1 | tee -a "$LOG"
