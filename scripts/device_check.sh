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
# .device_kit/ (scripts/device_kit.sh makes it, here): those the interpreter lacks are installed with
# `pip install --no-index --no-deps` into a temporary folder put on PYTHONPATH (the image is left as it is),
# and so is the project itself, from this checkout (--no-build-isolation: the image's setuptools builds it).
# Where the kit is absent, the environment must already hold everything (pip install -e '.[test]').
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

# 1. The kit: each wheel whose distribution the interpreter lacks, then the project where it is not installed.
if compgen -G "$KIT/*.whl" >/dev/null; then
  SITE="$SCRATCH/site"
  mapfile -t MISSING < <("$PYTHON" - "$KIT" <<'EOF'
import importlib.metadata
import os
import sys

for name in sorted(os.listdir(sys.argv[1])):
    if name.endswith('.whl'):
        try:
            importlib.metadata.version(name.split('-')[0])
        except importlib.metadata.PackageNotFoundError:
            print(os.path.join(sys.argv[1], name))
EOF
  )
  PIP=("$PYTHON" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$SITE")
  if ((${#MISSING[@]})); then
    "${PIP[@]}" "${MISSING[@]}" 2>&1 | tee -a "$LOG"
    say "kit: installed $(for w in "${MISSING[@]}"; do basename "$w" | cut -d- -f1-2; done | tr '\n' ' ')from $KIT"
  else
    say "kit: the interpreter already has every package of $KIT"
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" DEVICE_KIT_SITE="$SITE"
  # (Asked from /: in the checkout, its jax_generative.egg-info would answer.)
  if ! (cd / && "$PYTHON" -c 'import importlib.metadata as m; m.version("jax-generative")' 2>/dev/null); then
    # Built from this checkout by the interpreter's own setuptools (nothing to fetch); tests, main.py and
    # `python -m benchmarks...` still import the checkout itself, which comes first on their path.
    "${PIP[@]}" --no-build-isolation "$ROOT" 2>&1 | tee -a "$LOG"
    say "kit: installed the project (jax-generative) from $ROOT"
  fi
fi

# 2. What it runs under, and whether jax and torch see the accelerator (a GPU is required unless TINY=1).
"$PYTHON" - 2>&1 <<'EOF' | tee -a "$LOG"
import importlib.metadata
import os
import platform
import sys

def version(name):
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return 'absent'
    where = str(dist.locate_file(''))
    site = os.environ.get('DEVICE_KIT_SITE')
    return dist.version + (' (kit)' if site and where.startswith(site) else '')

print('python', platform.python_version(), sys.executable)
names = ('jax', 'jaxlib', 'jax-cuda13-plugin', 'jax-cuda12-plugin', 'flax', 'optax', 'orbax-checkpoint', 'numpy',
         'torch', 'transformers', 'ml_collections', 'tensorboardX', 'diffusers', 'pytest', 'pytest-xdist',
         'jax-generative')
print(' | '.join(f'{n} {version(n)}' for n in names))
import jax  # noqa: E402
import torch  # noqa: E402

print('jax backend', jax.default_backend(), jax.devices())
print('torch', torch.__version__, 'cuda', torch.version.cuda,
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')
EOF
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /' \
    | tee -a "$LOG"
fi
if [[ "${TINY:-0}" != 1 ]]; then
  backends="$("$PYTHON" -c 'import jax, torch; print(jax.default_backend(), torch.cuda.is_available())' 2>&1 | tail -1)"
  if [[ "$backends" != "gpu True" ]]; then
    say "DEVICE CHECK STOPPED: jax backend and torch CUDA are '$backends', not 'gpu True' (TINY=1 runs on a CPU)"
    exit 1
  fi
fi

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
