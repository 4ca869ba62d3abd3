# Sourced (not run) by scripts/device_check.sh and scripts/exercises_gpu.sh: makes the interpreter of an
# accelerator machine ready for the project, says what it runs under, and stops unless jax and torch see a GPU
# (TINY=1 allows a CPU). A GPU machine lent here reaches no registry and brings its own python3; what it lacks
# travels as wheels in the kit (scripts/device_kit.sh): those the interpreter lacks are installed with
# `pip install --no-index --no-deps` into SCRATCH/site, put on PYTHONPATH (the image is left as it is), and so
# is the project itself, from this checkout (--no-build-isolation: the image's setuptools builds it). Where the
# kit is absent, the environment must already hold everything (pip install -e '.[test]').
# Expects: ROOT (the checkout), PYTHON, KIT (the wheel folder), LOG (appended to), SCRATCH (a temporary
# folder), say() (echo and append to LOG) and WHAT (the caller's name for its stop line, e.g. 'DEVICE CHECK').

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
    say "$WHAT STOPPED: jax backend and torch CUDA are '$backends', not 'gpu True' (TINY=1 runs on a CPU)"
    exit 1
  fi
fi

