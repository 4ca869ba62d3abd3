"""Bits/dim of a whole data split, batch by batch, streamed to the workdir and resumable.

Every example of `data.eval_split` is evaluated once: `gen_runtime.data.eval_batches` pads the last
batch to full size and masks the padding out of the averages. Images are always dequantised
(x = (n + u) / L), so the reported bits/dim bound the discrete data's negative log-likelihood and
cannot be negative. Each finished batch appends one line to `batches.jsonl` in the results folder (the
likelihood mode's `<workdir>/likelihood/step_<N>/`); a rerun with the same settings skips the batches
there (the probes and dequantisation noise of a batch are a pure function of its index and
`eval.seed`).
"""

import json
import os
import time

import jax
import ml_collections
import numpy as np

from gen_runtime import parallel
from gen_runtime.data import device_eval_batches, first_examples, image_preprocessor
from gen_runtime.rng import stream
from sde_jax.bound import variational_bound
from sde_jax.experiment import Experiment, load_images
from sde_jax.generation import batch_parallel_jit
from sde_jax.likelihood import bits_per_dim, ode_log_likelihood

# Settings that make a streamed batch result reusable on resume (with the checkpoint step).
RESUME_KEYS = ('estimator', 'num_probes', 'rtol', 'atol', 'eps', 'batch_size', 'max_examples', 'bound_times')


def check_likelihood_settings(lk: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError for a `likelihood` setting `evaluate_bpd` would refuse."""
    parallel.check_batch_size(lk.batch_size, 'likelihood.batch_size')


class BatchBpd:
    """Jitted (params, model-space batch, rng) -> per-example bits/dim, batch sharded over devices. The ODE's
    tolerances (likelihood.rtol, .atol) are arguments of the compiled solve, not constants in it: every tolerance
    of a sweep is the same program, which jax's persistent compilation cache (JAX_COMPILATION_CACHE_DIR, as the
    tests set it) then compiles once."""

    def __init__(self, exp: Experiment, levels: int) -> None:
        check_likelihood_settings(exp.config.likelihood)
        self.exp, self.levels = exp, levels
        self._fn = batch_parallel_jit(self._bpd, replicated_after=2)  # the rng and the tolerances

    def _bpd(self, params: dict, x: jax.Array, rng: jax.Array,
             tolerances: jax.Array) -> tuple[jax.Array, jax.Array]:
        exp, lk = self.exp, self.exp.config.likelihood
        rtol, atol = tolerances[0], tolerances[1]
        logp, _, nfe = ode_log_likelihood(exp.sde, exp.score_fn(params), x, rng, estimator=lk.estimator,
                                          num_probes=lk.num_probes, rtol=rtol, atol=atol, eps=lk.eps)
        return bits_per_dim(logp, int(np.prod(x.shape[1:])), self.levels, exp.model_scale()), nfe

    def __call__(self, params: dict, x: jax.Array, rng: jax.Array) -> tuple[np.ndarray, int]:
        """(bits/dim per example of the global batch, drift evaluations of the solve: the batch's
        maximum over its examples, each of which is its own ODE)."""
        lk = self.exp.config.likelihood
        tolerances = np.asarray([lk.rtol, lk.atol], np.float32)
        bpd, nfe = (parallel.to_host(a) for a in self._fn(params, x, rng, tolerances))
        return bpd, int(np.max(nfe))


class BatchBound:
    """Jitted (params, model-space batch, rng) -> per-example bits/dim of the variational bound (sde_jax.bound:
    the SDE model's, without the ODE; `likelihood.bound_times` draws of t per example), batch sharded."""

    def __init__(self, exp: Experiment, levels: int) -> None:
        self.exp, self.levels = exp, levels
        self._fn = batch_parallel_jit(self._bound)

    def _bound(self, params: dict, x: jax.Array, rng: jax.Array) -> jax.Array:
        exp, lk = self.exp, self.exp.config.likelihood
        nats = variational_bound(exp.sde, exp.score_fn(params), x, rng, eps=lk.eps, num_times=lk.bound_times)
        return bits_per_dim(-nats['bound'], int(np.prod(x.shape[1:])), self.levels, exp.model_scale())

    def __call__(self, params: dict, x: jax.Array, rng: jax.Array) -> np.ndarray:
        return parallel.to_host(self._fn(params, x, rng))


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


def evaluate_bpd(exp: Experiment, params: dict, out_dir: str, step: int) -> dict:
    """Bits/dim over the whole `data.eval_split` of checkpoint `step`'s `params`; streams batches.jsonl
    into `out_dir`."""
    config, lk = exp.config, exp.config.likelihood
    split, seed = config.data.eval_split, config.eval.seed
    dataset = first_examples(load_images(config, split, exp.image_shape), lk.max_examples)
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    data_config.dequantize, data_config.random_flip = True, False
    preprocess = image_preprocessor(data_config, dataset.levels)
    batches_path = os.path.join(out_dir, 'batches.jsonl')
    settings = {'step': step, **{k: lk[k] for k in RESUME_KEYS}, 'split': split, 'seed': seed}
    if jax.process_index() == 0:
        os.makedirs(out_dir, exist_ok=True)
    done = _done_batches(batches_path)
    if done and any(next(iter(done.values())).get(k) != v for k, v in settings.items()):
        done = {}  # results of another checkpoint or other settings: start over
        if jax.process_index() == 0:
            os.remove(batches_path)
    fn = BatchBpd(exp, dataset.levels)
    bound_fn = BatchBound(exp, dataset.levels) if lk.bound_times else None
    for index, x, mask in device_eval_batches(dataset, lk.batch_size, preprocess, seed=seed, desc='bits/dim',
                                              progress=config.runtime.progress_bar, skip=done.__contains__):
        start = time.perf_counter()
        key, data = stream(seed, 'likelihood', index), exp.to_model_space(x['image'])
        bpd, nfe = fn(params, data, key)
        real = bpd[mask]
        record = {'batch': index, **settings, 'count': int(mask.sum()), 'bpd_sum': float(real.sum()),
                  'bpd_mean': float(real.mean()), 'bpd_sq_sum': float((real**2).sum()), 'nfe': nfe,
                  'seconds': time.perf_counter() - start}
        if bound_fn is not None:
            start = time.perf_counter()
            bound = bound_fn(params, data, jax.random.fold_in(key, 1))[mask]
            record.update(bound_bpd_sum=float(bound.sum()), bound_bpd_sq_sum=float((bound**2).sum()),
                          bound_seconds=time.perf_counter() - start)
        done[index] = record
        if jax.process_index() == 0:
            with open(batches_path, 'a') as f:
                f.write(json.dumps(record) + '\n')
    return summarise(done, exp, len(dataset), dataset.levels)


def summarise(done: dict[int, dict], exp: Experiment, num_examples: int, levels: int) -> dict:
    """Mean bits/dim over all examples with its standard error, the 8-bit offset, and the solver's cost.

    `bpd` is the dequantised bound on the discrete data's negative log-likelihood (Song et al. 2021,
    app. D.2: uniform dequantisation, x = (n + u) / L). It is the model-space density's bits/dim,
    -log p(y) / (D ln 2) (`continuous_bpd`), plus the exact offset log2(L) - log2(a) of the change of
    variables from L-level images to y = a x + b: 7 bits for 8-bit data in [-1, 1], 8 in [0, 1].
    With likelihood.bound_times > 0, `bound_bpd` is the variational bound of sde_jax.bound in the same units (an
    upper bound on the SDE model's bits/dim, computed without the ODE) with its standard error.
    """
    count = sum(r['count'] for r in done.values())
    if count != num_examples:
        raise RuntimeError(f'{count} of {num_examples} examples were evaluated')
    mean, standard_error = mean_and_error(done, 'bpd', count)
    offset = float(np.log2(levels) - np.log2(exp.model_scale()))
    seconds = float(sum(r['seconds'] for r in done.values()))
    lk = exp.config.likelihood
    summary = {'bpd': mean, 'bpd_standard_error': standard_error, 'continuous_bpd': mean - offset,
            'dequantisation_offset_bits': offset, 'levels': levels, 'model_scale': exp.model_scale(),
            'num_examples': count, 'split': exp.config.data.eval_split, 'estimator': lk.estimator,
            'num_probes': lk.num_probes,
            'rtol': lk.rtol, 'atol': lk.atol, 'eps': lk.eps, 'num_batches': len(done),
            'mean_nfe_per_batch': float(np.mean([r['nfe'] for r in done.values()])),
            'seconds': seconds, 'seconds_per_example': seconds / count}
    if lk.bound_times:
        bound, bound_error = mean_and_error(done, 'bound_bpd', count)
        bound_seconds = float(sum(r['bound_seconds'] for r in done.values()))
        summary.update(bound_bpd=bound, bound_bpd_standard_error=bound_error, bound_times=lk.bound_times,
                       bound_seconds_per_example=bound_seconds / count)
    return summary


def mean_and_error(done: dict[int, dict], name: str, count: int) -> tuple[float, float]:
    """Mean over the examples of the batches' `<name>_sum` and `<name>_sq_sum`, and its standard error."""
    mean = sum(r[f'{name}_sum'] for r in done.values()) / count
    var = max(sum(r[f'{name}_sq_sum'] for r in done.values()) / count - mean**2, 0.0)
    return mean, float(np.sqrt(var / count))
