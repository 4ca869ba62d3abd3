"""Training the VQ autoencoder as a two-player game (VQGAN, Esser et al. 2021; taming's VQLPIPSWithDiscriminator).

The state is {'generator': TrainState, 'discriminator': TrainState}. One step updates both on the same
batch:
- generator: L = rec + lambda * f_disc * L_G + w_cb * L_VQ, with rec the L1 (or L2) reconstruction
  error (+ an optional perceptual term), L_G = -mean D(x^), f_disc = disc_factor from step disc_start
  on (0 before), and the adaptive weight lambda = ||grad_W rec|| / (||grad_W L_G|| + 1e-4), clipped to
  [0, 1e4], times disc_weight, with W the decoder's last layer (VQGAN eq. 7);
- discriminator: f_disc * 1/2 (mean relu(1 - D(x)) + mean relu(1 + D(sg(x^)))) (hinge loss), with x^
  from the generator after its update (`disc_reconstructions='updated'`, taming's order) or from before it.
Both gradients of the adaptive weight come from one forward pass: the decoder is split before its
last layer, the losses' gradients w.r.t. the reconstruction are pulled back through that layer alone
(cheap), and one backward pass through the trunk follows. With `codebook='ema'` the codebook follows
moving averages instead of its loss term, and `kmeans_init` sets it by k-means on the first batch's
latents.
"""

import importlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gen_runtime.data import Batch, TrainBatches
from gen_runtime.errors import ConfigError
from gen_runtime.train_state import TrainState
from gen_runtime.trainer import Initialiser, TrainTask
from ldm_jax.data import to_model_range
from ldm_jax.models import autoencoder_from_config, discriminator_from_config
from ldm_jax.nn.autoencoder import VQModel, output_conv
from ldm_jax.nn.quantizer import codebook_usage, ema_codebook_update, kmeans_codebook

PerceptualLoss = Callable[[jax.Array, jax.Array], jax.Array]


def perceptual_loss_from_config(name: str) -> PerceptualLoss | None:
    """None for 'none', else the function `module:function` names: f(x, x_rec) -> per-example loss, both in [-1, 1].

    LPIPS (what VQGAN uses) needs pretrained VGG16 weights and its learned linear heads, which cannot
    be downloaded here; a user who has them plugs an implementation in by its import path.
    """
    if name in ('', 'none'):
        return None
    module, _, function = name.partition(':')
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"autoencoder.perceptual_loss={name!r} is not 'none' or an importable 'module:function' "
                          f'({e}); LPIPS weights are not bundled, so no perceptual loss is built in') from e


def hinge_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
    """1/2 (E relu(1 - D(x)) + E relu(1 + D(x^)))."""
    return 0.5 * (jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake)))


def adaptive_weight(rec_grad: jax.Array, gan_grad: jax.Array, disc_weight: float) -> jax.Array:
    """||grad rec|| / (||grad L_G|| + 1e-4), clipped to [0, 1e4], times disc_weight, without gradient."""
    weight = jnp.linalg.norm(rec_grad) / (jnp.linalg.norm(gan_grad) + 1e-4)
    return jax.lax.stop_gradient(jnp.clip(weight, 0.0, 1e4) * disc_weight)


def check_autoencoder_training(config: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError for an `autoencoder` training setting `autoencoder_task` cannot honour."""
    ae = config.autoencoder
    if ae.perceptual_weight > 0 and perceptual_loss_from_config(ae.perceptual_loss) is None:
        raise ConfigError('autoencoder.perceptual_weight > 0 needs autoencoder.perceptual_loss (module:function)')
    factor = 2 ** (len(ae.ch_mult) - 1)
    if ae.train_crop and (ae.train_crop > config.data.image_size or ae.train_crop % factor):
        raise ConfigError(f'autoencoder.train_crop={ae.train_crop} must be at most data.image_size='
                          f'{config.data.image_size} and a multiple of the downsampling factor {factor} '
                          '(0 trains on whole images)')


def training_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """(H, W, C) of the autoencoder's training images: autoencoder.train_crop's windows or whole images."""
    crop = config.autoencoder.train_crop or config.data.image_size
    return crop, crop, config.data.num_channels


def random_crops(size: int, preprocess: Callable[[Batch, np.random.Generator], Batch]
                 ) -> Callable[[Batch, np.random.Generator], Batch]:
    """`preprocess` followed by one random size x size window of each image (offsets uniform over the image)."""
    def crop(batch: Batch, rng: np.random.Generator) -> Batch:
        batch = preprocess(batch, rng)
        images = batch['image']
        n, height, width = images.shape[:3]
        top = rng.integers(0, height - size + 1, n)
        left = rng.integers(0, width - size + 1, n)
        windows = np.stack([im[t:t + size, lo:lo + size] for im, t, lo in zip(images, top, left, strict=True)])
        return {**batch, 'image': windows}

    return crop


def autoencoder_initialiser(config: ml_collections.ConfigDict, image_shape: tuple[int, int, int]) -> Initialiser:
    """rng -> {'generator', 'discriminator'} initial TrainStates (what the autoencoder's checkpoints hold)."""
    ae = config.autoencoder
    vq = autoencoder_from_config(config)
    disc = discriminator_from_config(config)

    def init_state(rng: jax.Array) -> dict[str, TrainState]:
        g_rng, d_rng = jax.random.split(rng)
        x = jnp.zeros((1, *image_shape))
        g_params = vq.init(g_rng, x)['params']
        stats = None
        if ae.codebook == 'ema':
            codebook = g_params['quantizer']['embedding']
            stats = {'cluster_size': jnp.ones(codebook.shape[:1]), 'embed_sum': codebook}
        d_vars = disc.init(d_rng, x, train=False)
        return {'generator': TrainState.from_config(g_params, config, extra=stats),
                'discriminator': TrainState.from_config(d_vars['params'], config,
                                                        extra={'batch_stats': d_vars['batch_stats']})}

    return init_state


def autoencoder_task(config: ml_collections.ConfigDict, batches: TrainBatches,
                     image_shape: tuple[int, int, int]) -> TrainTask:
    """The TrainTask of `config.autoencoder`."""
    ae = config.autoencoder
    check_autoencoder_training(config)
    perceptual = perceptual_loss_from_config(ae.perceptual_loss)
    vq = autoencoder_from_config(config)
    disc = discriminator_from_config(config)
    last_layer = output_conv(config.data.num_channels)

    def reconstruction_loss(x: jax.Array, rec: jax.Array) -> jax.Array:
        err = jnp.abs(x - rec) if ae.pixel_loss == 'l1' else (x - rec) ** 2
        loss = jnp.mean(err)
        if perceptual is not None and ae.perceptual_weight > 0:
            loss = loss + ae.perceptual_weight * jnp.mean(perceptual(x, rec))
        return loss

    def kmeans_init(g: TrainState, x: jax.Array, rng: jax.Array) -> TrainState:
        z = vq.apply({'params': g.params}, x, method=VQModel.encode)
        codebook = kmeans_codebook(z, ae.num_codes, rng)
        params = _with_codebook(g.params, codebook)
        extra = g.extra if g.extra is None else {'cluster_size': g.extra['cluster_size'],
                                                 'embed_sum': codebook * g.extra['cluster_size'][:, None]}
        return g.replace(params=params, ema_params=_with_codebook(g.ema_params, codebook), extra=extra)

    def update(state: dict, batch: Batch, rng: jax.Array) -> tuple[dict, dict[str, jax.Array]]:
        x = to_model_range(batch['image'])
        g, d = state['generator'], state['discriminator']
        dropout_rng, kmeans_rng = jax.random.split(rng)
        if ae.kmeans_init:
            g = jax.lax.cond(g.step == 0, lambda g: kmeans_init(g, x, kmeans_rng), lambda g: g, g)
        disc_factor = jnp.where(g.step >= ae.disc_start, ae.disc_factor, 0.0)

        def trunk(params: dict) -> tuple[tuple[jax.Array, jax.Array], dict]:
            rngs = {'dropout': dropout_rng}
            z = vq.apply({'params': params}, x, True, method=VQModel.encode, rngs=rngs)
            z_q, losses, indices = vq.apply({'params': params}, z, method=VQModel.quantize)
            features = vq.apply({'params': params}, z_q, True, method=VQModel.decode_features, rngs=rngs)
            vq_loss = ae.beta * losses['commitment'] if ae.codebook == 'ema' else losses['vq_loss']
            return (features, vq_loss), {'z': z, 'indices': indices, **losses}

        (features, vq_loss), trunk_vjp, aux = jax.vjp(trunk, g.params, has_aux=True)
        w = g.params['decoder']['conv_out']
        rec, last_layer_vjp = jax.vjp(lambda w, h: last_layer.apply({'params': w}, h), w, features)

        def gan_loss(rec: jax.Array) -> jax.Array:
            logits_fake, _ = disc.apply({'params': d.params, **d.extra}, rec, train=True, mutable=['batch_stats'])
            return -jnp.mean(logits_fake)

        rec_loss, rec_cotangent = jax.value_and_grad(lambda r: reconstruction_loss(x, r))(rec)
        g_loss, gan_cotangent = jax.value_and_grad(gan_loss)(rec)
        d_weight = adaptive_weight(last_layer_vjp(rec_cotangent)[0]['kernel'],
                                   last_layer_vjp(gan_cotangent)[0]['kernel'], ae.disc_weight)
        w_grad, feature_grad = last_layer_vjp(rec_cotangent + d_weight * disc_factor * gan_cotangent)
        (grads,) = trunk_vjp((feature_grad, jnp.asarray(ae.codebook_weight, vq_loss.dtype)))
        grads['decoder']['conv_out'] = jax.tree.map(jnp.add, grads['decoder']['conv_out'], w_grad)
        objective = rec_loss + d_weight * disc_factor * g_loss
        new_g = g.apply_gradients(grads)
        if ae.codebook == 'ema':
            stats, codebook = ema_codebook_update(g.extra, aux['z'], aux['indices'], ae.ema_decay)
            new_g = new_g.replace(params=_with_codebook(new_g.params, codebook), extra=stats)

        if ae.disc_reconstructions == 'updated':
            rec = vq.apply({'params': new_g.params}, x, True, rngs={'dropout': jax.random.fold_in(dropout_rng, 1)})[0]
        rec = jax.lax.stop_gradient(rec)

        def d_objective(params: dict) -> tuple[jax.Array, tuple]:
            variables = {'params': params, **d.extra}
            logits_real, stats = disc.apply(variables, x, train=True, mutable=['batch_stats'])
            logits_fake, stats = disc.apply({'params': params, **stats}, rec, train=True, mutable=['batch_stats'])
            return disc_factor * hinge_d_loss(logits_real, logits_fake), (stats, logits_real, logits_fake)

        (d_loss, (stats, logits_real, logits_fake)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(d.params)
        new_d = d.apply_gradients(d_grads, extra=dict(stats))
        metrics = {'loss': objective + ae.codebook_weight * vq_loss, 'rec_loss': rec_loss, 'vq_loss': vq_loss,
                   'commitment': aux['commitment'], 'codebook_loss': aux['codebook'], 'g_loss': g_loss,
                   'd_weight': d_weight, 'disc_factor': disc_factor, 'd_loss': d_loss,
                   'logits_real': jnp.mean(logits_real), 'logits_fake': jnp.mean(logits_fake),
                   'grad_norm': optax.global_norm(grads), **codebook_usage(aux['indices'], ae.num_codes)}
        return {'generator': new_g, 'discriminator': new_d}, metrics

    return TrainTask(autoencoder_initialiser(config, image_shape), update, batches.host_batches)


def _with_codebook(params: dict, codebook: jax.Array) -> dict:
    return {**params, 'quantizer': {**params['quantizer'], 'embedding': codebook}}
