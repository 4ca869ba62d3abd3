"""Mixed precision (runtime.compute_dtype=bfloat16, gen_runtime/precision.py) against float32.

Every trainable network of the three families, built from its configs at tiny widths: with the same float32
parameters, the bfloat16 network's output is float32 and agrees with the float32 one within bfloat16's
tolerance, but not to float32 precision (so the computation really is bf16: bf16 has an 8-bit
significand, relative rounding 2^-9 = 2e-3 per operation). Then a DSM train step (loss and gradients), a
DPM-Solver++ sampler run, and the loss falling over a short bf16 training run of the quickstart digits.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_runtime.config import load_config_file
from gen_runtime.precision import compute_dtype
from gen_runtime.run_once import run_once

# (config file, overrides at tiny size, the network's builder) for each family's networks.
SDE_TINY = {'model.nf': 16, 'model.ch_mult': (1, 2), 'model.num_res_blocks': 1, 'model.attn_resolutions': (4,),
            'data.image_size': 8}
NETWORKS = {
    'sde-tutorial_unet': ('configs/quickstart.py', {}),
    'sde-ncsnpp': ('configs/sde/cifar10_ncsnpp_continuous.py', SDE_TINY),
    'sde-ddpmpp': ('configs/sde/cifar10_ddpmpp_continuous.py', SDE_TINY),
    'ldm-unet': ('configs/ldm/cifar10_cfg.py', {'model.model_channels': 32, 'model.channel_mult': (1, 2),
                                                'model.num_res_blocks': 1, 'model.attention_resolutions': (2,),
                                                'model.norm_groups': 8}),
    'zsl-gan': ('configs/zsl/cizsl_cub.py', {}),
}


def _config(path, overrides, dtype='float32'):
    config = load_config_file(path)
    for key, value in {**overrides, 'runtime.compute_dtype': dtype}.items():
        section, field = key.split('.')
        config[section][field] = value
    return config


def _jitter(params, rng):
    """Parameters plus noise, so zero-initialised output layers do not hide the rest of the network."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(rng, len(leaves))
    noisy = [p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, noisy)


def _jittered(init, seed=0):
    """`_jitter` of `init(key(seed))`, both run once (gen_runtime/run_once.py)."""
    return run_once(_jitter, run_once(init, jax.random.key(seed)), jax.random.key(3))


def _network_and_inputs(name, dtype):
    """(apply(params, inputs) -> outputs, init(rng) -> params, inputs) of the network `name` in `dtype`."""
    path, overrides = NETWORKS[name]
    config = _config(path, overrides, dtype)
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, config.data.num_channels if name.startswith('sde') else 3))
    if name.startswith('sde'):
        from sde_jax.models import get_model

        model, inputs = get_model(config), (x, jnp.linspace(0.1, 0.9, 4))
    elif name == 'ldm-unet':
        from ldm_jax.models import unet_from_config

        model, inputs = unet_from_config(config, 3), (x, jnp.array([5, 250, 500, 999]), jnp.array([0, 1, 2, 3]))
    else:
        from zsl_jax.models import make_models

        generator, discriminator = make_models(config.model, 64, 10, compute_dtype(dtype))
        z, text = jax.random.normal(jax.random.key(2), (4, config.model.noise_dim)), jnp.ones((4, 300)) / 17.0

        def init(rng):
            return {'g': generator.init(rng, z, text)['params'],
                    'd': discriminator.init(rng, jnp.zeros((4, 64)))['params']}

        def apply(params):
            features = generator.apply({'params': params['g']}, z, text)
            return (features, *discriminator.apply({'params': params['d']}, features))

        return apply, init
    return (lambda params: model.apply({'params': params}, *inputs)), (lambda rng: model.init(rng, *inputs)['params'])


def _relative_error(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_bf16_network_matches_float32_within_bf16_tolerance(name):
    apply32, init32 = _network_and_inputs(name, 'float32')
    apply16, init16 = _network_and_inputs(name, 'bfloat16')
    params = _jittered(init32)
    stored = jax.eval_shape(init16, jax.random.key(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(stored))  # stored in float32
    # each forward pass runs once: compiled for its compile time (gen_runtime/run_once.py), far below bf16's rounding
    outputs = zip(jax.tree.leaves(run_once(apply16, params)), jax.tree.leaves(run_once(apply32, params)), strict=True)
    for out16, out32 in outputs:
        assert out16.dtype == jnp.float32
        error = _relative_error(out16, out32)
        assert 1e-4 < error < 3e-2, error


def _quickstart(dtype, **overrides):
    from sde_jax.experiment import make_experiment

    return make_experiment(_config('configs/quickstart.py', overrides, dtype))


def test_bf16_train_step_matches_float32():
    """One DSM loss and its gradients: float32 gradients, within bf16 tolerance of the float32 step."""
    from sde_jax.losses import make_loss_fn

    results = {}
    for dtype in ('float32', 'bfloat16'):
        exp = _quickstart(dtype)
        params = run_once(exp.init_params, jax.random.key(0))
        x = jax.random.uniform(jax.random.key(1), (32, 8, 8, 1))
        loss_fn = make_loss_fn(exp.config.loss, exp.model, exp.sde)
        results[dtype] = run_once(jax.value_and_grad(loss_fn), params, exp.to_model_space(x), jax.random.key(2))
    (loss32, grads32), (loss16, grads16) = results['float32'], results['bfloat16']
    assert loss16.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads16))
    assert 1e-5 < abs(float(loss16 / loss32) - 1) < 2e-2
    flat32, flat16 = (jnp.concatenate([g.ravel() for g in jax.tree.leaves(g)]) for g in (grads32, grads16))
    assert 1e-4 < _relative_error(flat16, flat32) < 5e-2


def test_bf16_sampler_matches_float32():
    """DPM-Solver++ (10 steps) from the same prior draw: float32 state, samples within bf16 tolerance."""
    from sde_jax.generation import few_step_times
    from sde_jax.sampling import few_step_sample

    samples = {}
    for dtype in ('float32', 'bfloat16'):
        exp = _quickstart(dtype, **{'sampling.method': 'dpm_solver_pp', 'sampling.num_steps': 10})
        params = _jittered(exp.init_params)
        run = functools.partial(few_step_sample, exp.sde, exp.score_fn(params), (16, 8, 8, 1),
                                times=few_step_times(exp), method='dpm_solver_pp')
        samples[dtype] = run_once(run, jax.random.key(4))
    assert samples['bfloat16'].dtype == jnp.float32
    assert 1e-4 < _relative_error(samples['bfloat16'], samples['float32']) < 5e-2


def test_bf16_training_loss_falls():
    """150 Adam steps of the quickstart digits model in bf16 through the family's own train step: the mean
    loss of the last 25 steps is below 70% of the first 25 (float32 on the same batches, printed beside it,
    falls alike)."""
    from sde_jax.experiment import train_task, training_batches

    falls = {}
    for dtype in ('float32', 'bfloat16'):
        exp = _quickstart(dtype, **{'training.batch_size': 64})
        task = train_task(exp, training_batches(exp))
        state = run_once(task.init_state, jax.random.key(0))
        update = jax.jit(task.update)
        losses = []
        for step in range(150):
            batch = jax.tree.map(lambda v: jnp.asarray(v[0]), task.host_batches(step, 1))
            state, logs = update(state, batch, jax.random.key(step))
            losses.append(float(logs['loss']))
        assert np.all(np.isfinite(losses))
        falls[dtype] = np.mean(losses[-25:]) / np.mean(losses[:25])
    print('last / first mean loss', falls)
    assert falls['bfloat16'] < 0.7, falls
