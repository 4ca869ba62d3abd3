"""The vector quantiser, the codebook against collapse, and the two-player VQGAN training step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.ldm import tiny
from gen_runtime.data import ArrayDataset, TrainBatches
from gen_runtime.errors import ConfigError
from gen_runtime.run_once import compile_once, run_once
from ldm_jax.autoencoder_task import adaptive_weight, autoencoder_task, hinge_d_loss
from ldm_jax.data import to_model_range
from ldm_jax.models import autoencoder_from_config, discriminator_from_config
from ldm_jax.nn.quantizer import VectorQuantizer, codebook_usage, ema_codebook_update, kmeans_codebook


def toy_perceptual(x, y):
    """A stand-in perceptual loss, plugged in by import path in a test."""
    return jnp.mean(jnp.abs(x.mean(-1) - y.mean(-1)), axis=(1, 2))


def _quantizer(codebook, legacy=False):
    vq = VectorQuantizer(codebook.shape[0], codebook.shape[1], beta=0.25, legacy_beta=legacy)
    return vq, {'params': {'embedding': codebook}}


def test_quantizer_picks_nearest_code_with_straight_through_gradient():
    codebook = jnp.asarray([[0.0, 0.0], [1.0, 1.0], [-2.0, 3.0]])
    vq, variables = _quantizer(codebook)
    z = jnp.asarray([[[[0.9, 1.2], [-1.5, 2.0]], [[0.1, -0.2], [5.0, 5.0]]]])
    z_q, losses, indices = vq.apply(variables, z)
    np.testing.assert_array_equal(np.asarray(indices), [[[1, 2], [0, 1]]])
    np.testing.assert_allclose(np.asarray(z_q), np.asarray(codebook)[np.asarray(indices)])
    weights = jnp.arange(8.0).reshape(z.shape)
    grad = jax.grad(lambda z: jnp.sum(vq.apply(variables, z)[0] * weights))(z)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(weights))  # straight through
    sq = float(jnp.mean((z - z_q) ** 2))
    assert float(losses['commitment']) == pytest.approx(sq) and float(losses['codebook']) == pytest.approx(sq)
    assert float(losses['vq_loss']) == pytest.approx(1.25 * sq)


def test_quantizer_loss_terms_move_the_right_side():
    codebook = jnp.asarray([[0.0, 0.0], [1.0, 1.0]])
    z = jnp.asarray([[[[0.2, 0.4]]]])
    for legacy, (z_weight, e_weight) in ((False, (0.25, 1.0)), (True, (1.0, 0.25))):
        vq, _ = _quantizer(codebook, legacy)

        def vq_loss(z, codebook, vq=vq):
            return vq.apply({'params': {'embedding': codebook}}, z)[1]['vq_loss']

        g_z, g_e = jax.grad(vq_loss, argnums=(0, 1))(z, codebook)
        np.testing.assert_allclose(np.asarray(g_z).ravel(), z_weight * 2 * np.asarray([0.2, 0.4]) / 2, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(g_e)[0], e_weight * 2 * -np.asarray([0.2, 0.4]) / 2, rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(g_e)[1], 0.0)


def test_codebook_usage_perplexity():
    usage = codebook_usage(jnp.asarray([0, 1, 2, 3] * 5), 8)
    assert float(usage['perplexity']) == pytest.approx(4.0, rel=1e-5)
    assert float(usage['codebook_usage']) == pytest.approx(0.5)
    assert float(codebook_usage(jnp.zeros(10, jnp.int32), 8)['perplexity']) == pytest.approx(1.0, rel=1e-5)


def test_ema_codebook_update_closed_form():
    stats = {'cluster_size': jnp.ones(3), 'embed_sum': jnp.asarray([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])}
    z = jnp.asarray([[1.0, 0.0], [3.0, 0.0], [1.0, 3.0]])
    indices = jnp.asarray([0, 0, 1])
    new, codebook = ema_codebook_update(stats, z, indices, decay=0.5, eps=0.0)
    np.testing.assert_allclose(np.asarray(new['cluster_size']), [1.5, 1.0, 0.5])
    np.testing.assert_allclose(np.asarray(new['embed_sum']), [[2.0, 0.0], [1.0, 2.0], [2.5, 2.5]])
    np.testing.assert_allclose(np.asarray(codebook), [[4 / 3, 0.0], [1.0, 2.0], [5.0, 5.0]], rtol=1e-6)


def test_kmeans_codebook_finds_the_clusters():
    centres = np.asarray([[-5.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    rng = np.random.default_rng(0)
    points = np.concatenate([c + 0.1 * rng.standard_normal((100, 2)) for c in centres])
    found = np.asarray(kmeans_codebook(jnp.asarray(points, jnp.float32), 3, jax.random.key(1), iterations=20))
    distances = np.linalg.norm(found[:, None] - centres[None], axis=-1)
    assert sorted(distances.argmin(1)) == [0, 1, 2] and distances.min(1).max() < 0.1


def test_hinge_loss():
    assert float(hinge_d_loss(jnp.asarray([2.0, 0.5]), jnp.asarray([-2.0, 0.0]))) == pytest.approx(0.5 * (0.25 + 0.5))


def _config(**ae):
    config = tiny.get_config('vq')
    config.data.image_size = 16
    config.autoencoder.kmeans_init = False
    for key, value in ae.items():
        config.autoencoder[key] = value
    return config


# The update steps below are fed their batches directly; the task's own data stream is never drawn.
UNUSED_DATA = TrainBatches(ArrayDataset({'image': np.zeros((4, 16, 16, 3), np.uint8)}), 4, 0)


def _batch(seed=0):
    return {'image': jnp.asarray(np.random.default_rng(seed).uniform(0, 1, (4, 16, 16, 3)), jnp.float32)}


@pytest.fixture(scope='module')
def two_steps():
    """Two VQGAN steps (discriminator from step 1, EMA codebook, k-means init, a plugged-in perceptual loss)."""
    config = _config(disc_start=1, disc_weight=0.8, codebook='ema', kmeans_init=True, num_codes=16,
                     perceptual_loss='tests.ldm.test_autoencoder:toy_perceptual', perceptual_weight=0.5)
    task = autoencoder_task(config, UNUSED_DATA, (16, 16, 3))
    s0 = run_once(task.init_state, jax.random.key(0))
    update = compile_once(task.update, s0, _batch(0), jax.random.key(1))  # run twice
    s1, m1 = update(s0, _batch(0), jax.random.key(1))
    s2, m2 = update(s1, _batch(1), jax.random.key(2))
    return config, (s0, s1, s2), (m1, m2)


def test_generator_step_uses_the_adaptive_weight_of_full_gradients(two_steps):
    """The split-at-the-last-layer gradients equal brute-force gradients of the VQGAN objective."""
    config, (_, state, _), (_, metrics) = two_steps
    vq, disc = autoencoder_from_config(config), discriminator_from_config(config)
    d = state['discriminator']
    x = to_model_range(_batch(1)['image'])

    def parts(params):
        rec, losses, _ = vq.apply({'params': params}, x)
        logits = disc.apply({'params': d.params, **d.extra}, rec, train=True, mutable=['batch_stats'])[0]
        nll = jnp.mean(jnp.abs(x - rec)) + 0.5 * jnp.mean(toy_perceptual(x, rec))
        return nll, -jnp.mean(logits), 0.25 * losses['commitment']  # EMA codebook: commitment term only

    def brute_force(params):
        g_rec = jax.grad(lambda p: parts(p)[0])(params)['decoder']['conv_out']['kernel']
        g_gan = jax.grad(lambda p: parts(p)[1])(params)['decoder']['conv_out']['kernel']
        weight = adaptive_weight(g_rec, g_gan, 0.8)
        grads = jax.grad(lambda p: parts(p)[0] + weight * parts(p)[1] + parts(p)[2])(params)
        return weight, jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))), parts(params)[0]

    weight, norm, rec = run_once(brute_force, state['generator'].params)
    assert float(metrics['disc_factor']) == 1.0
    assert float(metrics['d_weight']) == pytest.approx(float(weight), rel=1e-4)
    assert float(metrics['grad_norm']) == pytest.approx(float(norm), rel=1e-4)
    assert float(metrics['rec_loss']) == pytest.approx(float(rec), rel=1e-5)


def test_discriminator_waits_for_disc_start(two_steps):
    _, (s0, s1, s2), (m1, m2) = two_steps
    assert float(m1['disc_factor']) == 0.0 and float(m2['disc_factor']) == 1.0
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), s0['discriminator'].params, s1['discriminator'].params)
    assert all(jax.tree.leaves(same))
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), s1['discriminator'].params, s2['discriminator'].params)
    assert all(moved[name]['kernel'] for name in moved if name.startswith('conv'))
    assert int(s2['generator'].step) == 2 and int(s2['discriminator'].step) == 2


@pytest.mark.parametrize('which', ['updated', 'before_update'])
def test_discriminator_sees_the_reconstructions_of_the_generator_it_names(two_steps, which):
    """'updated': x^ of the generator after this step's update (taming's alternating optimisers)."""
    config, (_, s1, s2), (_, m2) = two_steps
    if which == 'before_update':
        config = config.copy_and_resolve_references()
        config.autoencoder.disc_reconstructions = which
        s2, m2 = run_once(autoencoder_task(config, UNUSED_DATA, (16, 16, 3)).update, s1, _batch(1), jax.random.key(2))
    vq, disc = autoencoder_from_config(config), discriminator_from_config(config)
    x, d = to_model_range(_batch(1)['image']), s1['discriminator']

    def hinge_of(generator_params):
        rec = vq.apply({'params': generator_params}, x)[0]
        real, stats = disc.apply({'params': d.params, **d.extra}, x, train=True, mutable=['batch_stats'])
        fake, _ = disc.apply({'params': d.params, **stats}, rec, train=True, mutable=['batch_stats'])
        return float(hinge_d_loss(real, fake))

    after, before = hinge_of(s2['generator'].params), hinge_of(s1['generator'].params)
    assert abs(after - before) > 1e-4
    assert float(m2['d_loss']) == pytest.approx(after if which == 'updated' else before, rel=1e-5)


def test_ema_codebook_and_kmeans_init(two_steps):
    _, states, (m1, _) = two_steps
    for state in states[1:]:
        g = state['generator']
        np.testing.assert_allclose(np.asarray(g.params['quantizer']['embedding']),
                                   np.asarray(g.extra['embed_sum'] / g.extra['cluster_size'][:, None]), rtol=1e-4)
    assert float(m1['codebook_usage']) > 0.5  # k-means put the codes on the data


def test_unknown_perceptual_loss_is_a_config_error():
    with pytest.raises(ConfigError, match='LPIPS'):
        autoencoder_task(_config(perceptual_loss='lpips'), UNUSED_DATA, (16, 16, 3))


def test_train_crop_windows_are_random_parts_of_each_image_and_bad_sizes_are_refused():
    from ldm_jax.autoencoder_task import check_autoencoder_training, random_crops, training_shape

    images = np.arange(6 * 16 * 16 * 3, dtype=np.float32).reshape(6, 16, 16, 3)
    crop = random_crops(8, lambda batch, rng: batch)
    windows = crop({'image': images, 'label': np.arange(6)}, np.random.default_rng(0))
    assert windows['image'].shape == (6, 8, 8, 3) and list(windows['label']) == list(range(6))
    offsets = set()
    for image, window in zip(images, windows['image'], strict=True):
        top, left = divmod(int(window[0, 0, 0] - image[0, 0, 0]) // 3, 16)
        np.testing.assert_array_equal(window, image[top:top + 8, left:left + 8])
        offsets.add((top, left))
    assert len(offsets) > 1  # each image its own window
    config = _config(train_crop=8)
    assert training_shape(config) == (8, 8, 3) and training_shape(_config()) == (16, 16, 3)
    check_autoencoder_training(config)
    for bad in (32, 7):  # larger than the images; not a multiple of the downsampling factor 2 (ch_mult (1, 2))
        with pytest.raises(ConfigError, match='train_crop'):
            check_autoencoder_training(_config(train_crop=bad))
