"""Bits/dim of a whole data split, batch by batch, streamed to the workdir and resumable.

Every example of `likelihood.split` is evaluated once: `gen_runtime.data.eval_batches` pads the last
batch to full size and masks the padding out of the averages. Images are always dequantised
(x = (n + u) / L), so the reported bits/dim bound the discrete data's negative log-likelihood and
cannot be negative. Each finished batch appends one line to `<workdir>/likelihood/batches.jsonl`; a
rerun with the same checkpoint and settings skips the batches already there (the probes and
dequantisation noise of a batch are a pure function of its index and `likelihood.seed`).
"""

import json
import os
import time

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from gen_runtime import parallel
from gen_runtime.data import ArrayDataset, eval_batches, image_preprocessor
from gen_runtime.errors import ConfigError
from sde_jax.experiment import Experiment, load_images
from sde_jax.generation import batch_parallel_jit
from sde_jax.likelihood import ESTIMATORS, bits_per_dim, ode_log_likelihood

LIKELIHOOD_DIR = 'likelihood'
# Settings that make a streamed batch result reusable on resume (with the checkpoint step).
RESUME_KEYS = ('estimator', 'num_probes', 'rtol', 'atol', 'eps', 'batch_size', 'split', 'max_examples', 'seed')


class BatchBpd:
    """Jitted (params, model-space batch, rng) -> per-example bits/dim, batch sharded over devices."""

    def __init__(self, exp: Experiment, levels: int) -> None:
        lk = exp.config.likelihood
        if lk.estimator not in ESTIMATORS:
            raise ConfigError(f'likelihood.estimator={lk.estimator!r} is not one of {", ".join(ESTIMATORS)}')
        if lk.num_probes < 1:
            raise ConfigError(f'likelihood.num_probes={lk.num_probes} must be at least 1')
        self.exp, self.levels = exp, levels
        self._fn = batch_parallel_jit(self._bpd)

    def _bpd(self, params: dict, x: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        exp, lk = self.exp, self.exp.config.likelihood
        logp, _, nfe = ode_log_likelihood(exp.sde, exp.score_fn(params), x, rng, estimator=lk.estimator,
                                          num_probes=lk.num_probes, rtol=lk.rtol, atol=lk.atol, eps=lk.eps)
        return bits_per_dim(logp, int(np.prod(x.shape[1:])), self.levels, exp.model_scale()), nfe

    def __call__(self, params: dict, x: jax.Array, rng: jax.Array) -> tuple[np.ndarray, int]:
        """(bits/dim per example of the global batch, drift evaluations of the solve: the batch's
        maximum over its examples, each of which is its own ODE)."""
        bpd, nfe = (parallel.to_host(a) for a in self._fn(params, x, rng))
        return bpd, int(np.max(nfe))


def _done_batches(path: str) -> dict[int, dict]:
    if not os.path.exists(path):
        return {}
    done = {}
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: that batch is redone
                continue
            done[record['batch']] = record
    return done


def evaluate_bpd(exp: Experiment, params: dict, workdir: str, step: int) -> dict:
    """Bits/dim over the whole `likelihood.split`; writes batches.jsonl and summary.json."""
    config, lk = exp.config, exp.config.likelihood
    dataset = load_images(config, lk.split, exp.image_shape)
    if lk.max_examples and isinstance(dataset, ArrayDataset):
        dataset = ArrayDataset({k: v[:lk.max_examples] for k, v in dataset.arrays.items()}, dataset.levels)
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    data_config.dequantize, data_config.random_flip = True, False
    preprocess = image_preprocessor(data_config, dataset.levels)
    out_dir = os.path.join(workdir, LIKELIHOOD_DIR)
    os.makedirs(out_dir, exist_ok=True)
    batches_path = os.path.join(out_dir, 'batches.jsonl')
    settings = {'step': step, **{k: lk[k] for k in RESUME_KEYS}}
    done = _done_batches(batches_path)
    if done and any(next(iter(done.values())).get(k) != v for k, v in settings.items()):
        done = {}  # results of another checkpoint or other settings: start over
        if jax.process_index() == 0:
            os.remove(batches_path)
    fn = BatchBpd(exp, dataset.levels)
    mesh = parallel.make_mesh()
    num_batches = -(-len(dataset) // lk.batch_size)
    bar = tqdm(total=num_batches, initial=len(done), desc='bits/dim', unit='batch', dynamic_ncols=True,
               disable=not (jax.process_index() == 0 and config.runtime.progress_bar))
    try:
        for index, batch in enumerate(eval_batches(dataset, lk.batch_size, preprocess, seed=lk.seed)):
            if index in done:
                continue
            start = time.perf_counter()
            x = parallel.host_local_to_global(exp.to_model_space(batch['image']), mesh)
            mask = parallel.to_host(parallel.host_local_to_global(batch['mask'], mesh))
            bpd, nfe = fn(params, x, jax.random.fold_in(jax.random.key(lk.seed), index))
            real = bpd[mask]
            record = {'batch': index, **settings, 'count': int(mask.sum()), 'bpd_sum': float(real.sum()),
                      'bpd_mean': float(real.mean()), 'bpd_sq_sum': float((real**2).sum()), 'nfe': nfe,
                      'seconds': time.perf_counter() - start}
            done[index] = record
            if jax.process_index() == 0:
                with open(batches_path, 'a') as f:
                    f.write(json.dumps(record) + '\n')
            bar.update(1)
            running = sum(r['bpd_sum'] for r in done.values()) / sum(r['count'] for r in done.values())
            bar.set_postfix(bpd=f'{running:.4f}')
    finally:
        bar.close()
    return summarise(done, exp, len(dataset))


def summarise(done: dict[int, dict], exp: Experiment, num_examples: int) -> dict:
    """Mean bits/dim over all examples with its standard error, and the solver's cost."""
    count = sum(r['count'] for r in done.values())
    if count != num_examples:
        raise RuntimeError(f'{count} of {num_examples} examples were evaluated')
    mean = sum(r['bpd_sum'] for r in done.values()) / count
    var = max(sum(r['bpd_sq_sum'] for r in done.values()) / count - mean**2, 0.0)
    lk = exp.config.likelihood
    return {'bpd': mean, 'bpd_standard_error': float(np.sqrt(var / count)), 'num_examples': count,
            'split': lk.split, 'estimator': lk.estimator, 'num_probes': lk.num_probes, 'rtol': lk.rtol,
            'atol': lk.atol, 'eps': lk.eps, 'num_batches': len(done),
            'mean_nfe_per_batch': float(np.mean([r['nfe'] for r in done.values()])),
            'seconds': float(sum(r['seconds'] for r in done.values()))}
