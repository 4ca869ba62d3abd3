#!/usr/bin/env bash
# One command for an accelerator (about 8 minutes on one GPU): the tests whose numbers a GPU can change
# (solver orders, bf16 against float32, sharded training and bit-exact resume, parity with the originals'
# checkpoints, ODE accuracy), then benchmarks/device_suite.py at GPU sizes, ours against the PyTorch
# baselines on the same device, float32 and bf16. Writes OUT/tests.log, OUT/device_suite.json and
# OUT/device_suite.md (the table for the README, with the date and the machine).
# Usage: scripts/device_check.sh [OUT] (default runs/device_check). Needs the package installed with a
# CUDA jax and torch (pip install -e '.[test]' 'jax[cuda12]' torch). TINY=1 runs the same steps at CPU
# sizes (one quick test file, the suite with --tiny): tests/runtime/test_device_check.py does so in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/device_check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [[ "${TINY:-0}" == 1 ]]; then
  TESTS=(tests/runtime/test_few_step.py -k "nfe or spacings")
  SUITE=(--tiny --repeats 1)
  TEST_LIMIT=300 SUITE_LIMIT=900
else
  TESTS=(tests/runtime/test_few_step.py tests/runtime/test_mixed_precision.py tests/runtime/test_parallel.py
         tests/runtime/test_trainer.py tests/sde/test_ode_accuracy.py tests/sde/test_original_checkpoints.py
         tests/ldm/test_compvis_checkpoints.py tests/zsl/test_original_checkpoints.py)
  SUITE=(--repeats 3)
  TEST_LIMIT=200 SUITE_LIMIT=270
fi
python -c 'import jax, torch; print("jax", jax.__version__, jax.devices(), "| torch", torch.__version__,
  "cuda" if torch.cuda.is_available() else "cpu")' | tee "$OUT/tests.log"
# -n 0: one process owns the accelerator.
timeout "$TEST_LIMIT" python -m pytest -q -n 0 -p no:cacheprovider "${TESTS[@]}" 2>&1 | tee -a "$OUT/tests.log"
timeout "$SUITE_LIMIT" python -m benchmarks.device_suite --out "$OUT" "${SUITE[@]}"
