"""The modes of `main.py` for sde_jax configs: train, sample, likelihood, eval, inpaint, colorize, import_weights.

Every mode reads `<workdir>` and writes its results into `<workdir>/<mode>/step_<N>/`, N the step of
the checkpoint it used (gen_runtime.outputs; process 0 writes files):
Modes that use the trained network take its EMA parameters (or, with eval.use_ema=False, the raw ones) and
draw their random numbers from eval.seed.
  train       trains (resumable), then draws `sampling.num_samples` samples:
              train/step_N/samples.png, samples.npz, and metrics.json at the top of the workdir;
  sample      samples from the newest checkpoint: samples.png, samples.npz, sampling.json;
  likelihood  bits/dim of the whole `data.eval_split` through the probability-flow ODE:
              batches.jsonl (streamed per batch) and likelihood.json;
  eval        `eval.num_samples` samples scored by gen_runtime.sample_quality.evaluate_samples;
  inpaint     fills the unobserved pixels (sampling.inpaint_mask) of test images: inpaint.png/.npz/.json;
  colorize    colours grey-level test images: colorize.png/.npz/.json;
  import_weights  an original score_sde / score_sde_pytorch checkpoint as step 0 (sde_jax.weights).
"""

import json
import logging
import os
import time

import jax
import ml_collections
import numpy as np

from gen_runtime import parallel, trainer
from gen_runtime.data import device_eval_batches, first_examples, image_preprocessor
from gen_runtime.images import save_image_grid
from gen_runtime.modes import Mode
from gen_runtime.outputs import LIKELIHOOD_FILE, SAMPLING_FILE, is_chief, results_dir, write_json, write_samples
from gen_runtime.pytree import count_params
from gen_runtime.rng import stream
from sde_jax import checks
from sde_jax.experiment import Experiment, initialiser, load_images, make_experiment, train_task, training_batches
from sde_jax.generation import ConstrainedSampler, sample_batches, sampling_summary
from sde_jax.likelihood_eval import evaluate_bpd
from sde_jax.weights import import_weights

log = logging.getLogger(__name__)


def draw_samples(exp: Experiment, params: dict, out: str) -> dict:
    """Draws `sampling.num_samples` images, writes samples.png and samples.npz into `out`; returns a summary."""
    sampling = exp.config.sampling
    stats: dict = {}
    start = time.perf_counter()
    images = np.concatenate(list(sample_batches(exp, params, sampling.num_samples, sampling.batch_size,
                                                exp.config.eval.seed, stats=stats)))
    seconds = time.perf_counter() - start
    summary = {**sampling_summary(sampling, stats), 'num_samples': len(images), 'seconds': seconds}
    return {**summary, **write_samples(out, images)}


def _last_logged_metrics(workdir: str) -> dict:
    path = os.path.join(workdir, 'metrics.jsonl')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    return json.loads(lines[-1]) if lines else {}


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Trains, then samples (EMA parameters if eval.use_ema) and writes metrics.json."""
    exp = make_experiment(config)
    start = time.perf_counter()
    state = trainer.train(config, workdir, train_task(exp, training_batches(exp)))
    train_seconds = time.perf_counter() - start
    step = int(jax.device_get(state.step))
    params = state.ema_params if config.eval.use_ema else state.params
    summary = draw_samples(exp, params, results_dir(workdir, 'train', step))
    num_params = count_params(state.params)
    write_json(os.path.join(workdir, 'metrics.json'), {
        'step': step,
        'final_logged': _last_logged_metrics(workdir),
        'train_seconds_this_invocation': train_seconds,
        'num_params': num_params,
        'samples': summary,
    }, echo=True)


def sample(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Samples from the newest checkpoint with `config.sampling`."""
    exp = make_experiment(config)
    step, params, _ = trainer.trained_params(config, workdir, initialiser(exp), config.eval.use_ema)
    out = results_dir(workdir, 'sample', step)
    summary = draw_samples(exp, params, out)
    write_json(os.path.join(out, SAMPLING_FILE), {'step': step, **summary}, echo=True)


def likelihood(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Bits/dim of the newest checkpoint over the whole `data.eval_split`."""
    exp = make_experiment(config)
    step, params, _ = trainer.trained_params(config, workdir, initialiser(exp), config.eval.use_ema)
    out = results_dir(workdir, 'likelihood', step)
    summary = {'step': step, **evaluate_bpd(exp, params, out, step)}
    write_json(os.path.join(out, LIKELIHOOD_FILE), summary, echo=True)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Scores `eval.num_samples` samples with gen_runtime.sample_quality (FID, KID, ...)."""
    from gen_runtime.sample_quality import evaluate_samples

    exp = make_experiment(config)
    step, params, _ = trainer.trained_params(config, workdir, initialiser(exp), config.eval.use_ema)
    batches = sample_batches(exp, params, config.eval.num_samples, config.sampling.batch_size, config.eval.seed,
                             progress=False)
    evaluate_samples(config, results_dir(workdir, 'eval', step), batches, step=step, echo=True)


def _controllable(config: ml_collections.ConfigDict, workdir: str, kind: str) -> None:
    """Inpaints or colorizes the first `sampling.num_samples` images of data.eval_split."""
    exp = make_experiment(config)
    step, params, _ = trainer.trained_params(config, workdir, initialiser(exp), config.eval.use_ema)
    dataset = first_examples(load_images(config, config.data.eval_split, exp.image_shape), config.sampling.num_samples)
    sampler = ConstrainedSampler(exp, kind)
    preprocess = image_preprocessor(config.data, dataset.levels)
    rng = stream(config.eval.seed, 'sampling')
    originals, results = [], []
    for index, batch, mask in device_eval_batches(dataset, config.sampling.batch_size, preprocess, desc=kind,
                                                  progress=config.runtime.progress_bar):
        result = sampler(params, batch['image'], jax.random.fold_in(rng, index))
        results.append(parallel.to_host(result)[mask])
        originals.append(parallel.to_host(batch['image'])[mask])
    originals, results = np.concatenate(originals), np.concatenate(results)
    count, out = len(originals), results_dir(workdir, kind, step)
    grid, npz = os.path.join(out, f'{kind}.png'), os.path.join(out, f'{kind}.npz')
    if is_chief():
        rows = np.concatenate([originals, sampler.observation(originals), results])
        save_image_grid(rows, grid, ncols=count)
        np.savez_compressed(npz, originals=originals, results=results)
    write_json(os.path.join(out, f'{kind}.json'), {'step': step, 'num_images': count, 'grid': grid, 'npz': npz,
                                                   'grid_rows': ['originals', 'observations', 'results']}, echo=True)


def inpaint(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Inpainting of test images (mask: sampling.inpaint_mask) with the PC sampler: inpaint.png/.npz."""
    _controllable(config, workdir, 'inpaint')


def colorize(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Colorization of grey-level test images with the PC sampler: colorize.png/.npz."""
    _controllable(config, workdir, 'colorize')


# Sections that may change between invocations on one workdir (besides gen_runtime.config's): how to
# sample and evaluate, and where imported weights came from (recorded in import.json).
RUN_INDEPENDENT_FIELDS = ('sampling', 'likelihood', 'weights')
MODES: dict[str, Mode] = {
    'train': Mode(train, 'train (resumable), then sample', checks.check_train),
    'sample': Mode(sample, 'sample from the newest checkpoint (sampling.method pc or ode)', checks.check_sample),
    'likelihood': Mode(likelihood, 'bits/dim of data.eval_split through the probability-flow ODE',
                       checks.check_likelihood),
    'eval': Mode(evaluate, 'FID/KID/IS/PR of eval.num_samples samples', checks.check_eval),
    'inpaint': Mode(inpaint, 'fill the masked pixels of test images (sampling.inpaint_mask)', checks.check_inpaint),
    'colorize': Mode(colorize, 'colour grey-level test images', checks.check_colorize),
    'import_weights': Mode(import_weights, 'an original score_sde / score_sde_pytorch checkpoint as step 0',
                           checks.check_model),
}
