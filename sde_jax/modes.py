"""The modes of `main.py` for sde_jax configs: train, sample, likelihood, eval.

Every mode reads `<workdir>` and writes its results there (process 0 writes files):
  train       trains (resumable), then draws `sampling.num_samples` samples with the EMA parameters:
              samples.png, samples.npz and metrics.json;
  sample      samples from the newest checkpoint: samples.png, samples.npz, sampling.json;
  likelihood  bits/dim of the whole `likelihood.split` through the probability-flow ODE:
              likelihood/batches.jsonl (streamed per batch) and likelihood/summary.json;
  eval        `eval.num_samples` samples scored by gen_runtime.sample_quality.evaluate_samples;
  inpaint     fills the unobserved pixels (sampling.inpaint_mask) of test images: inpaint.png/.npz;
  colorize    colours grey-level test images: colorize.png/.npz;
  import_weights  an original score_sde / score_sde_pytorch checkpoint as step 0 (sde_jax.weights).
"""

import json
import logging
import os
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from gen_runtime import parallel, trainer
from gen_runtime.data import eval_batches, image_preprocessor
from gen_runtime.images import save_image_grid
from sde_jax.experiment import Experiment, init_only_task, load_images, make_experiment, train_task
from sde_jax.generation import ConstrainedSampler, check_sampling, sample_batches, sampling_summary
from sde_jax.likelihood_eval import LIKELIHOOD_DIR, evaluate_bpd
from sde_jax.weights import import_weights

log = logging.getLogger(__name__)


def _is_chief() -> bool:
    return jax.process_index() == 0


def write_json(path: str, payload: dict) -> None:
    """Writes `payload` atomically as indented JSON (process 0 only)."""
    if not _is_chief():
        return
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def draw_samples(exp: Experiment, params: dict, workdir: str, prefix: str = 'samples') -> dict:
    """Draws `sampling.num_samples` images, writes <prefix>.png and <prefix>.npz; returns a summary."""
    sampling = exp.config.sampling
    stats: dict = {}
    start = time.perf_counter()
    images = np.concatenate(list(sample_batches(exp, params, sampling.num_samples, sampling.batch_size,
                                                sampling.seed, stats=stats)))
    seconds = time.perf_counter() - start
    summary = {**sampling_summary(sampling, stats), 'num_samples': len(images), 'seconds': seconds}
    if _is_chief():
        summary['grid'] = save_image_grid(images[:256], os.path.join(workdir, f'{prefix}.png'))
        summary['npz'] = os.path.join(workdir, f'{prefix}.npz')
        np.savez_compressed(summary['npz'], images=(images * 255 + 0.5).astype(np.uint8))
    return summary


def _last_logged_metrics(workdir: str) -> dict:
    path = os.path.join(workdir, 'metrics.jsonl')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    return json.loads(lines[-1]) if lines else {}


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Trains, then samples with the EMA parameters and writes metrics.json."""
    exp = make_experiment(config)
    check_sampling(exp)  # the samples drawn after training: refused now, not after the last step
    start = time.perf_counter()
    state = trainer.train(config, workdir, train_task(exp))
    train_seconds = time.perf_counter() - start
    summary = draw_samples(exp, state.ema_params, workdir)
    num_params = int(sum(np.prod(p.shape) for p in jax.tree.leaves(state.params)))
    write_json(os.path.join(workdir, 'metrics.json'), {
        'step': int(jax.device_get(state.step)),
        'final_logged': _last_logged_metrics(workdir),
        'train_seconds_this_invocation': train_seconds,
        'num_params': num_params,
        'samples': summary,
    })
    if _is_chief():
        print(f'samples: {summary["grid"]}; metrics: {os.path.join(workdir, "metrics.json")}')


def sample(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Samples from the newest checkpoint with `config.sampling`."""
    exp = make_experiment(config)
    step, state = trainer.load_trained_state(config, workdir, init_only_task(exp))
    summary = draw_samples(exp, state.ema_params, workdir)
    write_json(os.path.join(workdir, 'sampling.json'), {'step': step, **summary})
    if _is_chief():
        print(f'samples: {summary["grid"]}, {summary["npz"]}')


def likelihood(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Bits/dim of the newest checkpoint's EMA parameters over the whole `likelihood.split`."""
    exp = make_experiment(config)
    step, state = trainer.load_trained_state(config, workdir, init_only_task(exp))
    summary = {'step': step, **evaluate_bpd(exp, state.ema_params, workdir, step)}
    path = os.path.join(workdir, LIKELIHOOD_DIR, 'summary.json')
    write_json(path, summary)
    if _is_chief():
        print(f'bits/dim on {summary["split"]} ({summary["num_examples"]} examples): {summary["bpd"]:.4f} '
              f'+- {summary["bpd_standard_error"]:.4f}; {path}')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Scores `eval.num_samples` samples with gen_runtime.sample_quality (FID, KID, ...)."""
    from gen_runtime.sample_quality import evaluate_samples

    exp = make_experiment(config)
    step, state = trainer.load_trained_state(config, workdir, init_only_task(exp))
    batches = sample_batches(exp, state.ema_params, config.eval.num_samples, config.sampling.batch_size,
                             config.sampling.seed, progress=False)
    results = evaluate_samples(config, workdir, batches)
    if _is_chief():
        print(f'step {step}: ' + ', '.join(f'{k}={v:.4g}' for k, v in sorted(results.items())))


def _controllable(config: ml_collections.ConfigDict, workdir: str, kind: str) -> None:
    """Inpaints or colourises the first `sampling.num_samples` images of data.eval_split."""
    exp = make_experiment(config)
    step, state = trainer.load_trained_state(config, workdir, init_only_task(exp))
    dataset = load_images(config, config.data.eval_split, exp.image_shape)
    sampler = ConstrainedSampler(exp, kind)
    preprocess = image_preprocessor(config.data, dataset.levels)
    batch_size, count = config.sampling.batch_size, min(config.sampling.num_samples, len(dataset))
    rng = jax.random.key(config.sampling.seed)
    originals, results = [], []
    for index, batch in enumerate(eval_batches(dataset, batch_size, preprocess)):
        if index * batch_size >= count:
            break
        mesh_batch = parallel.host_local_to_global(batch['image'], parallel.make_mesh())
        results.append(parallel.to_host(sampler(state.ema_params, mesh_batch, jax.random.fold_in(rng, index))))
        originals.append(parallel.to_host(mesh_batch))
    originals, results = np.concatenate(originals)[:count], np.concatenate(results)[:count]
    if _is_chief():
        rows = np.concatenate([originals, sampler.observation(originals), results])
        grid = save_image_grid(rows, os.path.join(workdir, f'{kind}.png'), ncols=count)
        np.savez_compressed(os.path.join(workdir, f'{kind}.npz'), originals=originals, results=results)
        print(f'step {step}: {grid} (rows: originals, observations, results)')


def inpaint(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Inpainting of test images (mask: sampling.inpaint_mask) with the PC sampler: inpaint.png/.npz."""
    _controllable(config, workdir, 'inpaint')


def colorize(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Colourisation of grey-level test images with the PC sampler: colorize.png/.npz."""
    _controllable(config, workdir, 'colorize')


MODES: dict[str, Callable[[ml_collections.ConfigDict, str], None]] = {
    'train': train,
    'sample': sample,
    'likelihood': likelihood,
    'eval': evaluate,
    'inpaint': inpaint,
    'colorize': colorize,
    'import_weights': import_weights,
}
