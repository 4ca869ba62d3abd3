#!/usr/bin/env bash
# One command for an accelerator (at most about 9 minutes on one GPU: the limits below keep it inside one 600 s
# call; docs/device.md): the versions it runs under, a smoke run of the
# quickstart through main.py (about 30 s: an incompatibility shows at once, in one line), then the tests whose
# numbers a GPU can change (solver orders, bf16 against float32, sharded training and bit-exact resume, parity
# with the originals' checkpoints, ODE accuracy), then benchmarks/device_suite.py at GPU sizes, ours against
# the PyTorch baselines (eager, torch.compile, bf16 autocast) on the same device, float32 and bf16. Writes
# OUT/tests.log (versions, smoke verdict, tests), OUT/smoke.log, OUT/device_suite.json and OUT/device_suite.md
# (the table for the README, with the date and the machine): four files, nothing else under OUT.
#
# It runs as the machine is. A GPU machine lent here reaches no registry and brings its own python3 (3.12, jax
# with CUDA, flax, optax, orbax-checkpoint, torch, transformers, pytest); what it lacks travels as wheels in
# .device_kit/ (scripts/device_kit.sh makes it, here), installed as scripts/device_env.sh says.
#
#   here:   scripts/device_kit.sh
#   there:  run(command='scripts/device_check.sh $OUT', carry=['.device_kit'], timeout_s=600)
#
# Usage: scripts/device_check.sh [OUT] (default runs/device_check). SUITE_ARGS='--cases likelihood,ddpmpp' runs
# part of the suite (--no-compile: PyTorch eager only); TEST_LIMIT and SUITE_LIMIT set the two time limits
# (seconds). PYTHON picks the interpreter (default
# python3), DEVICE_KIT the wheel folder. TINY=1 runs the same steps at CPU sizes (one quick test file, the
# suite with --tiny) and allows a CPU: tests/runtime/test_device_check.py does so in CI, in a venv that holds
# only what the GPU image holds plus the kit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${1:-runs/device_check}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
KIT="${DEVICE_KIT:-$ROOT/.device_kit}"
LOG="$OUT/tests.log"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")"  # kit installs, the smoke's workdir: never OUT
trap 'rm -rf "$SCRATCH"' EXIT
if [[ "${TINY:-0}" == 1 ]]; then
  TESTS=(tests/runtime/test_few_step.py -k "nfe or spacings")
  SUITE=(--tiny --repeats 1 --compile-backend aot_eager)  # Inductor's CPU code generation takes minutes
  SMOKE_LIMIT=240 TEST_LIMIT=300 SUITE_LIMIT=900
else
  TESTS=(tests/runtime/test_few_step.py tests/runtime/test_mixed_precision.py tests/runtime/test_parallel.py
         tests/runtime/test_trainer.py tests/sde/test_ode_accuracy.py tests/sde/test_original_checkpoints.py
         tests/ldm/test_compvis_checkpoints.py tests/zsl/test_original_checkpoints.py)
  SUITE=(--repeats 3)
  # torch.compile (Inductor) adds its compile time to the suite; the suite writes its files after every row,
  # so a run stopped at this limit keeps the rows it finished. SUITE_ARGS=--no-compile: eager only.
  # Seen on an H200 (2026-12-04): kit and versions 15 s, smoke 22 s, the first 27 tests 200 s, the suite's rows
  # 11-140 s each (the DDPM++ step's XLA compile alone 70-90 s), eager only. The limits keep the whole check
  # inside one 600 s call.
  SMOKE_LIMIT=120 TEST_LIMIT="${TEST_LIMIT:-150}" SUITE_LIMIT="${SUITE_LIMIT:-330}"
fi

# 1-2. The kit, the versions, and a GPU unless TINY=1 (scripts/device_env.sh, shared with exercises_gpu.sh).
WHAT='DEVICE CHECK'
# shellcheck source=scripts/device_env.sh
source "$ROOT/scripts/device_env.sh"

# 3. The smoke: a few quickstart steps and samples through main.py; on failure, the error's last line.
SMOKE=("$PYTHON" main.py --config configs/quickstart.py --workdir "$SCRATCH/smoke"
       --config.training.num_steps=4 --config.training.batch_size=16 --config.training.log_every=2
       --config.training.checkpoint_every=4 --config.sampling.num_steps=4 --config.sampling.num_samples=16
       --config.sampling.batch_size=16)
start=$SECONDS
if timeout "$SMOKE_LIMIT" "${SMOKE[@]}" >"$OUT/smoke.log" 2>&1; then
  say "SMOKE OK: quickstart, 4 steps and 16 samples through main.py in $((SECONDS - start)) s"
else
  rc=$?
  line="$(grep -v '^\s*$' "$OUT/smoke.log" | grep -vE '^(train|sample):' | tail -1)"
  [[ $rc == 124 ]] && line="no exit within $SMOKE_LIMIT s; last output: $line"
  say "SMOKE FAILED (exit $rc after $((SECONDS - start)) s): $line"
  say "(the whole output is in $OUT/smoke.log)"
  exit 1
fi

# 4. The tests (-n 0: one process owns the accelerator), then the suite, which runs whatever the tests gave:
# a failure or the time limit is one line in the log, never the end of the check.
set +e
timeout "$TEST_LIMIT" "$PYTHON" -m pytest -q -n 0 -p no:cacheprovider "${TESTS[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
set -e
case $rc in
  0) say "TESTS OK" ;;
  124) say "TESTS STOPPED at their $TEST_LIMIT s limit (TEST_LIMIT); the dots above are those that ran" ;;
  *) say "TESTS FAILED (exit $rc): see above" ;;
esac
timeout "$SUITE_LIMIT" "$PYTHON" -m benchmarks.device_suite --out "$OUT" "${SUITE[@]}" ${SUITE_ARGS:-}
