"""Inputs of the ldm_jax models: images in [-1, 1], cached first-stage latents, and the 1024 -> 256 resize.

Images come from gen_runtime's sources (tfds, e.g. `cifar10` or `celeb_a_hq/256` after its manual
download, or a folder of images) as floats in [0, 1]; models see 2x - 1. Latent diffusion trains on
the pre-quantisation latents of a frozen first stage: they are computed once per training run
(for the images and, with random flips, for their mirror images too, so a flip is exact) and cached
in `<workdir>/latents/`.
"""

import logging
import os
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from PIL import Image
from tqdm import tqdm

from gen_runtime import parallel
from gen_runtime.config import resolve_data_path
from gen_runtime.data import IMAGE_SUFFIXES, ArrayDataset, Batch, Dataset, device_eval_batches, image_preprocessor
from gen_runtime.errors import ConfigError, DataError
from gen_runtime.pytree import PyTree

log = logging.getLogger(__name__)
LATENT_DIR = 'latents'


def to_model_range(images: jax.Array) -> jax.Array:
    """[0, 1] -> [-1, 1]."""
    return 2.0 * images - 1.0


def to_unit_range(x: jax.Array) -> jax.Array:
    """[-1, 1] -> [0, 1], clipped."""
    return jax.numpy.clip((x + 1.0) / 2.0, 0.0, 1.0)


def image_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """(H, W, C) of the model's images: data.image_size must be set for the diffusion models."""
    if config.data.image_size <= 0:
        raise ConfigError('set data.image_size (the side length the model is trained and sampled at)')
    return config.data.image_size, config.data.image_size, config.data.num_channels


def unit_preprocessor(config: ml_collections.ConfigDict, dataset: Dataset,
                      **overrides: bool) -> Callable[[Batch, np.random.Generator], Batch]:
    """gen_runtime's integer -> [0, 1] preprocessing of config.data, with `overrides` of its fields
    (e.g. random_flip=False for evaluation)."""
    data = ml_collections.ConfigDict(config.data.to_dict())
    data.update(overrides)
    return image_preprocessor(data, dataset.levels)


def encode_dataset(encode: Callable[[PyTree, jax.Array], jax.Array], params: PyTree, dataset: Dataset,
                   preprocess: Callable, batch_size: int, flip: bool = False,
                   desc: str = 'encode') -> dict[str, np.ndarray]:
    """encode(params, x in [-1, 1] NHWC) over the whole data set (optionally mirrored): {'latent'[, 'label']}."""
    mesh = parallel.make_mesh()
    fn = jax.jit(encode, in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
                 out_shardings=parallel.batch_sharded(mesh))
    out: dict[str, list[np.ndarray]] = {'latent': [], 'label': []}
    for _, batch, mask in device_eval_batches(dataset, batch_size, preprocess, desc=desc):
        images = batch['image'][:, :, ::-1] if flip else batch['image']
        out['latent'].append(parallel.to_host(fn(params, to_model_range(images)))[mask])
        if 'label' in batch:
            out['label'].append(parallel.to_host(batch['label'])[mask])
    return {k: np.concatenate(v) for k, v in out.items() if v}


def cached_latents(config: ml_collections.ConfigDict, workdir: str, split: str, first_stage: str,
                   encode: Callable[[PyTree, jax.Array], jax.Array], params: PyTree,
                   dataset: Dataset) -> dict[str, np.ndarray]:
    """Latents of `split` (and of its mirror images if data.random_flip), cached per `first_stage` (a name of the
    first stage's parameters: its checkpoint step, EMA or raw)."""
    path = os.path.join(workdir, LATENT_DIR, f'{split}.npz')
    if os.path.exists(path):
        with np.load(path) as f:
            cached = {k: f[k] for k in f.files}
        if str(cached.get('first_stage', '')) == first_stage and len(cached['latent']) == len(dataset):
            return cached
        log.info('latent cache %s is of another first stage or data set; recomputing', path)
    preprocess = unit_preprocessor(config, dataset, random_flip=False)
    batch_size = config.latent.encode_batch_size
    parallel.check_batch_size(batch_size, 'latent.encode_batch_size')
    arrays = encode_dataset(encode, params, dataset, preprocess, batch_size, desc=f'encode {split}')
    if config.data.random_flip:
        arrays['latent_flipped'] = encode_dataset(encode, params, dataset, preprocess, batch_size, flip=True,
                                                  desc=f'encode {split} (mirrored)')['latent']
    arrays['first_stage'] = np.asarray(first_stage)
    if jax.process_index() == 0:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.savez(path + '.tmp.npz', **arrays)
        os.replace(path + '.tmp.npz', path)
    return arrays


def latent_dataset(arrays: dict[str, np.ndarray]) -> ArrayDataset:
    """The cached latents as a data set with 'latent' (and 'latent_flipped', 'label')."""
    return ArrayDataset({k: v for k, v in arrays.items() if k != 'first_stage'})


def latent_preprocessor(random_flip: bool) -> Callable[[Batch, np.random.Generator], Batch]:
    """Picks the mirrored image's latent with probability 1/2 when flips are on."""

    def preprocess(batch: Batch, rng: np.random.Generator) -> Batch:
        latent = batch['latent']
        if random_flip and 'latent_flipped' in batch:
            flip = rng.uniform(size=latent.shape[0]) < 0.5
            latent = np.where(flip[:, None, None, None], batch['latent_flipped'], latent)
        out = {'latent': latent.astype(np.float32)}
        if 'label' in batch:
            out['label'] = batch['label']
        return out

    return preprocess


def resize_folder(source: str, destination: str, size: int) -> int:
    """Writes every image under `source` as a size x size RGB PNG under `destination` (same relative names).

    Downscaling uses PIL's antialiased bicubic filter (CelebA-HQ 1024 -> 256). Returns the count.
    """
    if not os.path.isdir(source):
        raise DataError(f'preprocess.input {source} is not a folder of images')
    names = sorted(os.path.relpath(os.path.join(d, n), source) for d, _, files in os.walk(source) for n in files
                   if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise DataError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {source}')
    for name in tqdm(names, desc='resize'):
        out = os.path.join(destination, os.path.splitext(name)[0] + '.png')
        os.makedirs(os.path.dirname(out), exist_ok=True)
        try:
            with Image.open(os.path.join(source, name)) as image:
                image = image.convert('RGB')
                if image.size != (size, size):
                    image = image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
        except OSError as e:
            raise DataError(f'{os.path.join(source, name)} could not be read as an image ({e})') from e
        image.save(out)
    return len(names)


def preprocess_paths(config: ml_collections.ConfigDict, workdir: str) -> tuple[str, str]:
    """(input folder, output folder) of --mode preprocess; the output defaults to <workdir>/images."""
    source = resolve_data_path(config, config.preprocess.input)
    destination = config.preprocess.output or os.path.join(workdir, 'images')
    return source, destination
