#!/usr/bin/env bash
# The real CIFAR-10 likelihood run of sde_jax (docs/tutorials/sde_cifar10_likelihood.ipynb): Song's tutorial
# U-Net with the VP SDE (configs/sde/cifar10_tutorial.py) trained on ../shared/data/cifar10/cifar10_jpeg.tgz (a
# JPEG copy of CIFAR-10) for a fixed CPU budget, then bits/dim of the first N_TEST test images (probability-flow
# ODE, Hutchinson-Skilling with one Rademacher probe, uniform dequantisation, rtol = atol = TOL) and a 64-sample
# grid (500 Euler-Maruyama steps, EMA parameters).
# Usage: scripts/sde_cifar10.sh [workdir] (default runs/sde_cifar10); STEPS changes the training budget, N_TEST
# the number of test images (0: the whole split, about a day on 2 CPU cores), TOL the ODE tolerance.
# With the defaults one run takes about 40 minutes on 2 CPU cores (26 minutes of training, 7 s per test image at
# 1e-5); rerunning resumes: training from its checkpoint, the likelihood from its finished batches
# (likelihood/step_N/batches.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${1:-runs/sde_cifar10}"
STEPS="${STEPS:-4000}"
N_TEST="${N_TEST:-100}"
TOL="${TOL:-1e-5}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
RUN=(--config configs/sde/cifar10_tutorial.py --workdir "$WORKDIR" --config.training.num_steps="$STEPS")
python main.py "${RUN[@]}" --mode train
python main.py "${RUN[@]}" --mode likelihood --config.likelihood.max_examples="$N_TEST" \
  --config.likelihood.rtol="$TOL" --config.likelihood.atol="$TOL"
