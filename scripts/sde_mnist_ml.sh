#!/usr/bin/env bash
# Maximum-likelihood training on MNIST (Song, Durkan, Murray & Ermon 2021; docs/sde.md), one variant per call:
#   sigma2         the tutorial's DSM weighting lambda(t) = sigma_t^2 (scripts/sde_mnist.sh's objective),
#   likelihood     the likelihood weighting lambda(t) = g(t)^2, t uniform,
#   likelihood_is  the likelihood weighting with t importance-sampled (p(t) proportional to g^2 / sigma^2),
# each the tutorial network and VE SDE (exact marginal) of configs/sde/mnist_ml.py for STEPS steps at batch 64, then bits/dim of the first
# N_TEST test images through the probability-flow ODE (rtol = atol = TOL) with the variational bound beside it
# (likelihood.json: bpd, bound_bpd). Usage: scripts/sde_mnist_ml.sh VARIANT [workdir] (default
# runs/sde_mnist_ml/VARIANT). About 20 minutes per variant on 2 CPU cores at the defaults; rerunning resumes.
# The table and plot of the three: python -m scripts.sde_ml_table runs/sde_mnist_ml.
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT="${1:?usage: scripts/sde_mnist_ml.sh sigma2|likelihood|likelihood_is [workdir]}"
case "$VARIANT" in
  sigma2|likelihood|likelihood_is) ;;
  *) echo "error: the variant is sigma2, likelihood or likelihood_is, not '$VARIANT'" >&2; exit 2 ;;
esac
WORKDIR="${2:-runs/sde_mnist_ml/$VARIANT}"
STEPS="${STEPS:-2000}"
N_TEST="${N_TEST:-300}"
TOL="${TOL:-1e-5}"
export JAXGEN_DATA_ROOT="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
RUN=(--config "configs/sde/mnist_ml.py:$VARIANT" --workdir "$WORKDIR" --config.training.num_steps="$STEPS")
python main.py "${RUN[@]}" --mode train
python main.py "${RUN[@]}" --mode likelihood --config.likelihood.max_examples="$N_TEST" \
  --config.likelihood.batch_size=50 --config.likelihood.rtol="$TOL" --config.likelihood.atol="$TOL"
