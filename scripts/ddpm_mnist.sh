#!/usr/bin/env bash
# The real MNIST run behind docs/tutorials/ddpm_ddim_cfg_mnist.ipynb (docs/ldm.md): the classifier-free
# guided DDPM of configs/ldm/mnist_cfg.py (1,114,209 parameters, labels dropped with p = 0.1) trained for
# STEPS steps (default 3000), then a 40-sample grid (50 DDIM steps, w = 2). On 2 CPU cores a step takes
# about 1.3 s, so the default needs two working blocks: each call trains for at most LIMIT seconds
# (default 2640, 44 minutes; SIGTERM makes the trainer save a checkpoint) and the same call resumes.
# Usage: scripts/ddpm_mnist.sh [workdir] (default runs/tutorial_ddpm_cfg_mnist, the notebook's run folder).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${1:-runs/tutorial_ddpm_cfg_mnist}"
STEPS="${STEPS:-3000}"
LIMIT="${LIMIT:-2640}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
# The notebook's cfg_config sets the same two fields, so it finds this run and resumes nothing.
RUN=(--config configs/ldm/mnist_cfg.py --workdir "$WORKDIR"
     --config.training.num_steps="$STEPS" --config.training.checkpoint_every=200)
status=0
timeout -s TERM -k 120 "$LIMIT" python main.py "${RUN[@]}" --mode train || status=$?
if [ "$status" -eq 124 ]; then
  echo "training stopped at its LIMIT of $LIMIT s with a checkpoint; run the same command again to resume"
  exit 0
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
python main.py "${RUN[@]}" --mode sample
