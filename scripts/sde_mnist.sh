#!/usr/bin/env bash
# The real MNIST run of sde_jax (docs/sde.md): Song's tutorial network and VE SDE (sigma = 25) trained
# on ../shared/data/mnist/mnist.npz for a fixed CPU budget, then bits/dim on the first N_TEST test
# images (probability-flow ODE, Hutchinson-Skilling with one Rademacher probe, uniform dequantisation,
# rtol = atol = TOL) and a 64-sample grid (500 Euler-Maruyama steps, EMA parameters). At the defaults (5000
# steps, 1000 test images) about 22 + 22 minutes on 2 CPU cores.
# Usage: scripts/sde_mnist.sh [workdir] (default runs/sde_mnist); STEPS=... changes the budget,
# N_TEST=0 evaluates the whole 10,000-image test split (hours on 2 CPU cores), TOL the ODE
# tolerance (default 1e-5, the paper's; scripts/sde_mnist_tolerance.sh shows why). Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${1:-runs/sde_mnist}"
STEPS="${STEPS:-5000}"
N_TEST="${N_TEST:-1000}"
TOL="${TOL:-1e-5}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
# The tutorial trains 50 epochs at batch 32 and learning rate 1e-4; on a CPU budget a larger batch
# and learning rate (with warm-up and the EMA) go further per minute.
RUN=(--config configs/sde/mnist_tutorial.py --workdir "$WORKDIR"
     --config.training.num_steps="$STEPS" --config.training.batch_size=64 --config.optim.learning_rate=5e-4
     --config.optim.warmup_steps=100 --config.training.log_every=50 --config.training.checkpoint_every=250)
python main.py "${RUN[@]}" --mode train
python main.py "${RUN[@]}" --mode likelihood --config.likelihood.max_examples="$N_TEST" \
  --config.likelihood.batch_size=50 --config.likelihood.rtol="$TOL" --config.likelihood.atol="$TOL"
python main.py "${RUN[@]}" --mode sample
