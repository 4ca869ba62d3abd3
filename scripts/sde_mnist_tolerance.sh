#!/usr/bin/env bash
# How the MNIST bits/dim of scripts/sde_mnist.sh depend on the ODE tolerance: the trained run in
# [workdir] (default runs/sde_mnist) evaluated on its first N_TEST test images (default 50, the same
# images, dequantisation and probe at every tolerance) at rtol = atol = 1e-3, 1e-4, 1e-5, 1e-6, each in
# a copy of the run (<workdir>_tol<TOL>/likelihood/step_<N>/likelihood.json). STEPS: the run's training.num_steps
# (default 5000, scripts/sde_mnist.sh's).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${1:-runs/sde_mnist}"
N_TEST="${N_TEST:-50}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
for TOL in 1e-3 1e-4 1e-5 1e-6; do
  COPY="${WORKDIR}_tol${TOL}"
  rm -rf "$COPY" && mkdir -p "$COPY" && cp -r "$WORKDIR/config.json" "$WORKDIR/checkpoints" "$COPY/"
  python main.py --config configs/sde/mnist_tutorial.py --workdir "$COPY" --mode likelihood \
    --config.training.num_steps="${STEPS:-5000}" --config.training.batch_size=64 --config.optim.learning_rate=5e-4 \
    --config.optim.warmup_steps=100 --config.training.log_every=50 --config.training.checkpoint_every=250 \
    --config.likelihood.max_examples="$N_TEST" --config.likelihood.batch_size=50 \
    --config.likelihood.rtol="$TOL" --config.likelihood.atol="$TOL" | tail -1
done
