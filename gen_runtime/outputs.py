"""Where modes write their results, and how: one layout for every family, atomic writes by process 0.

A mode that works on a trained checkpoint writes into `<workdir>/<mode>/step_<N>/` (N: the checkpoint's
step), so no mode overwrites another's results and results of different checkpoints sit side by side;
rerunning a mode on the same checkpoint replaces its own results. Training's own records (config.json,
metrics.jsonl, metrics.json, checkpoints/) stay at the top of the workdir.

A mode's summary file has the same name in every family (SAMPLING_FILE for sample, LIKELIHOOD_FILE for
likelihood, gen_runtime.sample_quality's eval_metrics.json for eval, metrics.json for training), and a mode ends by
printing its summary as one JSON line (`write_json(..., echo=True)`), which a script can read with json.loads.
"""

import json
import os

import jax
import numpy as np

from gen_runtime.images import save_image_grid

SAMPLING_FILE = 'sampling.json'
LIKELIHOOD_FILE = 'likelihood.json'


def is_chief() -> bool:
    """Whether this process writes the run's files (process 0 of a multi-host run)."""
    return jax.process_index() == 0


def results_dir(workdir: str, mode: str, step: int) -> str:
    """`<workdir>/<mode>/step_<step>`, created by process 0."""
    path = os.path.join(workdir, mode, f'step_{step}')
    if is_chief():
        os.makedirs(path, exist_ok=True)
    return path


def write_json(path: str, payload: dict, echo: bool = False) -> None:
    """Writes `payload` as indented JSON, atomically (a temporary file renamed), on process 0 only; `echo` also
    prints it as one line (a mode's printed summary)."""
    if echo:
        print(json.dumps(payload))
    if not is_chief():
        return
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def write_samples(out: str, images: np.ndarray, **arrays: np.ndarray) -> dict:
    """Every family's sample files, on process 0: `samples.png` (a grid of the first 256 images, NHWC in [0, 1])
    and `samples.npz` (`images` as uint8, rounded to nearest, and any `arrays` such as labels).
    Returns {'grid': path, 'npz': path} (empty on other processes)."""
    if not is_chief():
        return {}
    npz = os.path.join(out, 'samples.npz')
    np.savez_compressed(npz, images=np.floor(np.clip(images, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), **arrays)
    return {'grid': save_image_grid(images[:256], os.path.join(out, 'samples.png')), 'npz': npz}
