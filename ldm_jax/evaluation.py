"""Evaluations over a data split: the diffusion model's variational bound and the autoencoder's reconstructions."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime import parallel
from gen_runtime.data import Batch, Dataset, device_eval_batches
from gen_runtime.errors import DataError
from gen_runtime.pytree import PyTree
from ldm_jax.cascade import downsample, upsample
from ldm_jax.data import to_model_range, unit_preprocessor
from ldm_jax.diffusion import predict, vlb_bpd
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.nn.quantizer import usage_from_counts
from ldm_jax.nn.unet import UNet
from ldm_jax.schedule import schedule_from_config


def _masked_means(parts: list[dict[str, np.ndarray]], masks: list[np.ndarray]) -> dict[str, float]:
    mask = np.concatenate(masks)
    if not mask.any():
        raise DataError('the evaluation split has no examples')
    return {k: float(np.mean(np.concatenate([p[k] for p in parts])[mask])) for k in parts[0]}


def likelihood(config: ml_collections.ConfigDict, unet: UNet, params: PyTree, dataset: Dataset,
               rng: jax.Array) -> dict[str, float]:
    """Mean variational bound (bits/dim) of the split, with the standard error of the mean over its images:
    total, prior L_T, decoder L_0 and the KL terms; batch i's noise from fold_in(rng, i).

    Images are mapped to [-1, 1] on their bin centres n/(levels-1) (no dequantisation), as DDPM's
    discretised decoder expects.
    """
    schedule = schedule_from_config(config.diffusion)
    conditional = config.model.num_classes > 0
    preprocess = unit_preprocessor(config, dataset, random_flip=False, dequantize=False)
    mesh = parallel.make_mesh()

    def bound(params: PyTree, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
        x0 = to_model_range(batch['image'])
        labels = batch['label'] if conditional else None

        stage = {}
        if config.cascade.low_resolution:  # the bound of p(x | z) given the clean low-resolution image
            stage = {'cond': upsample(downsample(x0, config.cascade.low_resolution), x0.shape[1]),
                     'level': jnp.zeros(x0.shape[:1], jnp.int32)}

        def model_fn(x_t: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
            out = unet.apply({'params': params}, x_t, t, labels, **stage)
            x0, _, log_var = predict(config.diffusion.parameterization, config.diffusion.variance, schedule, x_t, t,
                                     out)
            return (jnp.clip(x0, -1.0, 1.0) if config.sampling.clip_denoised else x0), log_var

        return vlb_bpd(model_fn, schedule, x0, rng, dataset.levels)

    fn = jax.jit(bound, in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh), None),
                 out_shardings=parallel.batch_sharded(mesh))
    parts, masks = [], []
    for index, batch, mask in device_eval_batches(dataset, config.likelihood.batch_size, preprocess,
                                                  desc='bits/dim', progress=config.runtime.progress_bar):
        parts.append(parallel.to_host(fn(params, batch, jax.random.fold_in(rng, index))))
        masks.append(mask)
    means = _masked_means(parts, masks)
    totals = np.concatenate([p['total'] for p in parts])[np.concatenate(masks)]
    stderr = float(np.std(totals, ddof=1) / np.sqrt(len(totals))) if len(totals) > 1 else float('nan')
    return {'bpd': means['total'], 'bpd_stderr': stderr, 'prior_bpd': means['prior'], 'decoder_bpd': means['decoder'],
            'kl_bpd': means['kl'], 'num_examples': len(totals)}


def reconstructions(config: ml_collections.ConfigDict, model: VQModel, params: PyTree, dataset: Dataset,
                    batch_size: int, keep: int = 32) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Reconstruction metrics of the split (L1 on [-1, 1], PSNR on [0, 1], codebook use) and the first images.

    Returns (metrics, originals, reconstructions), the images in [0, 1] (at most `keep` of them).
    """
    preprocess = unit_preprocessor(config, dataset, random_flip=False)
    mesh = parallel.make_mesh()

    def run(params: PyTree, images: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        rec, _, indices = model.apply({'params': params}, to_model_range(images))
        rec = jnp.clip((rec + 1.0) / 2.0, 0.0, 1.0)
        return rec, jnp.mean((rec - images) ** 2, axis=(1, 2, 3)), indices

    batch_spec = parallel.batch_sharded(mesh)
    fn = jax.jit(run, in_shardings=(parallel.replicated(mesh), batch_spec), out_shardings=batch_spec)
    parts, masks, originals, recs = [], [], [], []
    counts = np.zeros(model.num_codes)
    for _, batch, mask in device_eval_batches(dataset, batch_size, preprocess, desc='reconstruct',
                                              progress=config.runtime.progress_bar):
        rec, mse, indices = parallel.to_host(fn(params, batch['image']))
        images = parallel.to_host(batch['image'])
        parts.append({'mse': mse, 'l1': 2.0 * np.mean(np.abs(rec - images), axis=(1, 2, 3)),
                      'psnr': -10.0 * np.log10(np.maximum(mse, 1e-10))})
        masks.append(mask)
        counts += np.bincount(indices[mask].ravel(), minlength=model.num_codes)
        if sum(len(o) for o in originals) < keep:
            originals.append(images[mask])
            recs.append(rec[mask])
    metrics = _masked_means(parts, masks)
    metrics.update({k: float(v) for k, v in usage_from_counts(jnp.asarray(counts)).items()})
    return metrics, np.concatenate(originals)[:keep], np.concatenate(recs)[:keep]


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, exclude_self: bool = False,
                       chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest reference (mean squared error) for each query image in [0, 1], and the PSNR to it.

    With `exclude_self` (queries are the references) an image's own entry is skipped: the leave-one-out
    distance that says how far apart the data set's images are.
    """
    ref = references.reshape(len(references), -1).astype(np.float64)
    ref_sq = np.sum(ref**2, axis=1)
    index, mse = [], []
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk].reshape(-1, ref.shape[1]).astype(np.float64)
        d = (np.sum(q**2, axis=1)[:, None] + ref_sq[None] - 2 * q @ ref.T) / ref.shape[1]
        if exclude_self:
            d[np.arange(len(q)), np.arange(start, start + len(q))] = np.inf
        index.append(np.argmin(d, axis=1))
        mse.append(np.maximum(np.min(d, axis=1), 1e-10))
    mse = np.concatenate(mse)
    return np.concatenate(index), -10.0 * np.log10(mse)
