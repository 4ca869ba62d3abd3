"""The ldm_jax modes of `python main.py --config configs/ldm/<file>.py --workdir <dir> --mode <mode>`.

- preprocess: resize a folder of images (CelebA-HQ 1024x1024) to preprocess.size squares.
- train_autoencoder: train the VQ autoencoder (`autoencoder` section) with its patch discriminator.
- reconstruct: reconstruction metrics and an image grid of a trained autoencoder on the eval split.
- train: train what `task` says: the diffusion model (in pixel space, or on the latents of the first stage
  in latent.first_stage_workdir) or the noise-conditional classifier of classifier guidance.
- sample: draw sampling.num_samples images: a PNG grid and an npz.
- eval: draw eval.num_samples images and score them with gen_runtime.sample_quality (FID, KID, ...).
- likelihood: the variational bound in bits/dim on the eval split (pixel-space models).
- memorization: PSNR of the newest `sample` results to their nearest training images (the overfitting check).
- import_weights / import_autoencoder: PyTorch weights (latent-diffusion or diffusers layout, as .npz or
  .safetensors) as step 0 of the workdir (see ldm_jax/weights.py).

A mode that uses a trained checkpoint writes into `<workdir>/<mode>/step_<N>/` (gen_runtime.outputs); it takes
the EMA parameters of the run's network (or, with eval.use_ema=False, the raw ones), those of a first stage or
guidance classifier as their own runs' configs say, and draws its random numbers from eval.seed.
"""

import glob
import json
import logging
import os

import ml_collections
import numpy as np

from gen_runtime import trainer
from gen_runtime.data import TrainBatches, data_set_name, first_examples, load_dataset
from gen_runtime.errors import DataError
from gen_runtime.images import save_image_grid
from gen_runtime.modes import Mode
from gen_runtime.outputs import LIKELIHOOD_FILE, SAMPLING_FILE, results_dir, write_json, write_samples
from gen_runtime.pytree import PyTree
from gen_runtime.rng import stream
from ldm_jax import checks
from ldm_jax.autoencoder_task import autoencoder_initialiser, autoencoder_task, random_crops, training_shape
from ldm_jax.data import (
    cached_latents,
    image_shape,
    latent_dataset,
    latent_preprocessor,
    preprocess_paths,
    resize_folder,
    unit_preprocessor,
)
from ldm_jax.evaluation import likelihood as likelihood_of_split
from ldm_jax.evaluation import nearest_neighbours, reconstructions
from ldm_jax.experiment import Experiment, initialiser, make_experiment, train_task
from ldm_jax.generation import sample_batches
from ldm_jax.models import autoencoder_from_config
from ldm_jax.pretrained import FirstStage
from ldm_jax.weights import import_autoencoder, import_unet

log = logging.getLogger(__name__)


def _check_labels(config: ml_collections.ConfigDict, dataset: object, classes: int) -> None:
    if not classes:
        return
    first = dataset.gather(np.arange(1))
    if 'label' not in first:
        raise DataError(f'the data set {config.data.source}:{data_set_name(config.data)} has no labels, '
                        'but the model is class-conditional (model.num_classes) or a classifier')
    labels = getattr(dataset, 'arrays', first)['label']
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(f'labels range over {labels.min()}..{labels.max()}, outside 0..{classes - 1}; set '
                        'model.num_classes / classifier.num_classes to the number of classes')


def saved_use_ema(run_config: ml_collections.ConfigDict) -> bool:
    """eval.use_ema of another run's saved config (True, the default, where a run saved before the field)."""
    return run_config.eval.get('use_ema', True)


def first_stage_params(first_stage: FirstStage) -> tuple[str, PyTree]:
    """(name, parameters) of the newest checkpoint of the first stage run, EMA or raw as its own config's
    eval.use_ema says (what its --mode reconstruct evaluates); the name records which, for the latent cache."""
    fs_config = first_stage.config
    use_ema = saved_use_ema(fs_config)
    fs_init = autoencoder_initialiser(fs_config, first_stage.image_shape)
    step, params, _ = trainer.trained_params(fs_config, first_stage.workdir, fs_init, use_ema, 'generator')
    return f'step {step}, {"EMA" if use_ema else "raw"} parameters', params


def trained_networks(exp: Experiment, workdir: str) -> tuple[int, dict]:
    """(step, params) of what sampling from the run in `workdir` needs (ldm_jax.generation.Sampler): the newest
    checkpoint's denoiser (EMA parameters if eval.use_ema) and latent scale factor; the first stage and the guidance
    classifier from their runs, EMA or raw as their own configs say."""
    step, unet, state = trainer.trained_params(exp.config, workdir, initialiser(exp), exp.config.eval.use_ema)
    params = {'unet': unet, 'scale_factor': state.extra['scale_factor']}
    if exp.first_stage is not None:
        params['first_stage'] = first_stage_params(exp.first_stage)[1]
    if exp.guide is not None:
        guide = exp.guide
        params['classifier'] = trainer.trained_params(guide.config, guide.workdir, initialiser(make_experiment(
            guide.config)), saved_use_ema(guide.config))[1]
    if exp.base is not None:
        params['base'] = trained_networks(exp.base, exp.config.cascade.base_workdir)[1]
    return step, params


def training_batches(exp: Experiment, workdir: str) -> tuple[TrainBatches, float]:
    """The training batches of the diffusion model or classifier, and the latent scale factor (1 for pixels)."""
    config = exp.config
    dataset = load_dataset(config, config.data.train_split)
    classes = config.classifier.num_classes if config.task == 'classifier' else config.model.num_classes
    _check_labels(config, dataset, classes)
    size, seed = config.training.batch_size, config.seed
    if exp.first_stage is None:
        return TrainBatches(dataset, size, seed, unit_preprocessor(config, dataset)), 1.0
    name, fs_params = first_stage_params(exp.first_stage)
    arrays = cached_latents(config, workdir, config.data.train_split, name, exp.first_stage.encode, fs_params, dataset)
    scale = config.latent.scale_factor or float(1.0 / np.std(arrays['latent']))
    log.info('latent scale factor %.6g (latent std %.4g)', scale, np.std(arrays['latent']))
    return TrainBatches(latent_dataset(arrays), size, seed, latent_preprocessor(config.data.random_flip)), scale


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
    exp = make_experiment(config)
    batches, scale = training_batches(exp, workdir)
    trainer.train(config, workdir, train_task(exp, batches, scale))


def train_autoencoder(config: ml_collections.ConfigDict, workdir: str) -> None:
    dataset = load_dataset(config, config.data.train_split)
    preprocess = unit_preprocessor(config, dataset)
    if config.autoencoder.train_crop:
        preprocess = random_crops(config.autoencoder.train_crop, preprocess)
    batches = TrainBatches(dataset, config.training.batch_size, config.seed, preprocess)
    trainer.train(config, workdir, autoencoder_task(config, batches, training_shape(config)))


def reconstruct(config: ml_collections.ConfigDict, workdir: str) -> None:
    step, params, _ = trainer.trained_params(config, workdir, autoencoder_initialiser(config, image_shape(config)),
                                             config.eval.use_ema, 'generator')
    dataset = load_dataset(config, config.data.eval_split)
    metrics, originals, recs = reconstructions(config, autoencoder_from_config(config), params, dataset,
                                               config.latent.encode_batch_size)
    out = results_dir(workdir, 'reconstruct', step)
    pairs = np.stack([originals, recs], axis=1).reshape(-1, *originals.shape[1:])
    save_image_grid(pairs, os.path.join(out, 'originals_and_reconstructions.png'), ncols=8)
    write_json(os.path.join(out, 'metrics.json'), {'step': step, **metrics}, echo=True)


def sample(config: ml_collections.ConfigDict, workdir: str) -> None:
    exp = make_experiment(config)
    step, params = trained_networks(exp, workdir)
    sampling = config.sampling
    parts = list(sample_batches(exp, params, sampling.num_samples, sampling.batch_size, config.eval.seed))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    out = results_dir(workdir, 'sample', step)
    summary = {'step': step, 'num_samples': len(images), **write_samples(out, images, labels=labels)}
    write_json(os.path.join(out, SAMPLING_FILE), summary, echo=True)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
    from gen_runtime.sample_quality import evaluate_samples

    exp = make_experiment(config)
    step, params = trained_networks(exp, workdir)
    batches = (images for images, _ in sample_batches(exp, params, config.eval.num_samples,
                                                      config.sampling.batch_size, config.eval.seed))
    evaluate_samples(config, results_dir(workdir, 'eval', step), batches, step=step, echo=True)


def likelihood(config: ml_collections.ConfigDict, workdir: str) -> None:
    exp = make_experiment(config)
    step, params, _ = trainer.trained_params(config, workdir, initialiser(exp), config.eval.use_ema)
    dataset = first_examples(load_dataset(config, config.data.eval_split), config.likelihood.max_examples)
    results = likelihood_of_split(config, exp.network, params, dataset, stream(config.eval.seed, 'likelihood'))
    write_json(os.path.join(results_dir(workdir, 'likelihood', step), LIKELIHOOD_FILE), {'step': step, **results},
               echo=True)


def memorization(config: ml_collections.ConfigDict, workdir: str) -> None:
    """How close the newest samples are to training images: PSNR to the nearest one, against the PSNR
    between training images (leave-one-out). A model that reproduces its training set scores far above it."""
    runs = sorted(glob.glob(os.path.join(workdir, 'sample', 'step_*', 'samples.npz')),
                  key=lambda p: int(p.split('step_')[-1].split(os.sep)[0]))
    if not runs:
        raise DataError(f'no samples in {workdir}/sample; run --mode sample first')
    step = int(runs[-1].split('step_')[-1].split(os.sep)[0])
    with np.load(runs[-1]) as f:
        samples = f['images'].astype(np.float32) / 255.0
    dataset = load_dataset(config, config.data.train_split)
    preprocess = unit_preprocessor(config, dataset, random_flip=False, dequantize=False)
    train = preprocess(dataset.gather(np.arange(len(dataset))), np.random.default_rng(0))['image']
    nearest, psnr = nearest_neighbours(samples, train)
    _, train_psnr = nearest_neighbours(train, train, exclude_self=True)
    out = results_dir(workdir, 'memorization', step)
    pairs = np.stack([samples, train[nearest]], axis=1).reshape(-1, *samples.shape[1:])
    save_image_grid(pairs[:64], os.path.join(out, 'samples_and_nearest_training_images.png'), ncols=8)
    write_json(os.path.join(out, 'memorization.json'), {
        'samples': len(samples), 'training_images': len(train),
        'sample_to_nearest_training_psnr_mean': float(np.mean(psnr)),
        'sample_to_nearest_training_psnr_median': float(np.median(psnr)),
        'training_to_nearest_other_training_psnr_mean': float(np.mean(train_psnr)),
        'distinct_training_images_matched': int(len(np.unique(nearest)))}, echo=True)


def preprocess(config: ml_collections.ConfigDict, workdir: str) -> None:
    source, destination = preprocess_paths(config, workdir)
    count = resize_folder(source, destination, config.preprocess.size)
    print(json.dumps({'images': count, 'size': config.preprocess.size, 'folder': destination}))


# Sections that may change between invocations on one workdir (besides gen_runtime.config's): how to
# sample and evaluate, and where imported weights came from (recorded in import.json).
RUN_INDEPENDENT_FIELDS = ('sampling', 'likelihood', 'weights', 'cascade.sample_level', 'cascade.truncated',
                          'cascade.base_workdir')
MODES: dict[str, Mode] = {
    'preprocess': Mode(preprocess, 'resize a folder of images to preprocess.size squares', checks.check_preprocess),
    'train_autoencoder': Mode(train_autoencoder, 'train the VQ autoencoder with its patch discriminator',
                              checks.check_train_autoencoder),
    'reconstruct': Mode(reconstruct, "a trained autoencoder's reconstructions of the eval split",
                        checks.check_autoencoder),
    'train': Mode(train, 'train the diffusion model (pixels or first-stage latents) or the guidance classifier',
                  checks.check_train),
    'sample': Mode(sample, 'draw sampling.num_samples images (DDPM or DDIM, guidance)', checks.check_sample),
    'eval': Mode(evaluate, 'FID/KID/IS/PR of eval.num_samples samples', checks.check_eval),
    'likelihood': Mode(likelihood, 'the variational bound in bits/dim on the eval split (pixel space)',
                       checks.check_likelihood),
    'memorization': Mode(memorization, 'PSNR of the newest samples to their nearest training images'),
    'import_weights': Mode(import_unet, 'a latent-diffusion or diffusers UNet as step 0', checks.check_diffusion),
    'import_autoencoder': Mode(import_autoencoder, 'a taming / latent-diffusion or diffusers VQ model as step 0',
                               checks.check_autoencoder),
}
