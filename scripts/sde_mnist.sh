#!/usr/bin/env bash
# The real MNIST run of sde_jax (docs/sde.md): Song's tutorial network and VE SDE (sigma = 25) trained
# on ../shared/data/mnist/mnist.npz for a fixed CPU budget, then bits/dim over the whole 10,000-image
# test set (probability-flow ODE, Hutchinson-Skilling with one Rademacher probe, uniform
# dequantisation) and a 64-sample grid. Usage: scripts/sde_mnist.sh [workdir] (default runs/sde_mnist);
# STEPS=... changes the budget. Rerunning resumes training and the likelihood evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${1:-runs/sde_mnist}"
STEPS="${STEPS:-2000}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
# The tutorial trains 50 epochs at batch 32 and learning rate 1e-4; on a CPU budget a larger batch
# and learning rate (with warm-up and the EMA) go further per minute.
RUN=(--config configs/sde/mnist_tutorial.py --workdir "$WORKDIR"
     --config.training.num_steps="$STEPS" --config.training.batch_size=64 --config.optim.learning_rate=5e-4
     --config.optim.warmup_steps=100 --config.training.log_every=50 --config.training.checkpoint_every=250)
python main.py "${RUN[@]}" --mode train
python main.py "${RUN[@]}" --mode likelihood --config.likelihood.batch_size=500 \
  --config.likelihood.rtol=1e-4 --config.likelihood.atol=1e-4
