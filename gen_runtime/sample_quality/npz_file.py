"""The two cache files of this package (weights, reference statistics): arrays plus JSON metadata in
one .npz, written atomically, read back with errors that say which command re-creates the file."""

import json
import os

import numpy as np

from gen_runtime.errors import UserError

META_KEY = '__meta__'


def write_npz(path: str, arrays: dict[str, np.ndarray], meta: dict) -> str:
    """Writes `arrays` and `meta` (as JSON) to `path` through a temporary file; returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp.npz'
    np.savez(tmp, **arrays, **{META_KEY: np.asarray(json.dumps(meta))})
    os.replace(tmp, path)
    return path


def read_npz(path: str, what: str, remedy: str, error: type[UserError]) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a file `write_npz` wrote; a missing or unreadable file raises `error`
    naming `what` the file is and the `remedy`."""
    if not os.path.isfile(path):
        raise error(f'{what} {path} does not exist; {remedy}')
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        return arrays, json.loads(str(arrays.pop(META_KEY)))
    except (OSError, ValueError, KeyError) as e:
        raise error(f'{path} is not a readable {what} file ({e}); {remedy}') from e
