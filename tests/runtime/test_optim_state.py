"""Optimiser schedule, clipping and EMA against hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import common
from gen_runtime.errors import ConfigError
from gen_runtime.optim import learning_rate_schedule, make_optimizer
from gen_runtime.train_state import TrainState


def optim_config(**fields):
    config = common.get_config()
    config.optim.update(fields)
    return config.optim


def test_linear_warmup_then_constant_or_cosine():
    constant = learning_rate_schedule(optim_config(learning_rate=1.0, warmup_steps=10), 100)
    assert [float(constant(s)) for s in (0, 5, 10, 50)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    cosine = learning_rate_schedule(optim_config(learning_rate=1.0, warmup_steps=10, schedule='cosine'), 110)
    assert float(cosine(60)) == pytest.approx(0.5, abs=1e-6) and float(cosine(110)) == pytest.approx(0.0, abs=1e-6)


def test_global_norm_clipping_bounds_the_first_adam_free_update():
    tx = make_optimizer(optim_config(grad_clip=1.0, optimizer='adam'), 10)
    clip_only = optax.clip_by_global_norm(1.0)
    grads = {'a': jnp.full((4,), 3.0), 'b': jnp.full((9,), 4.0)}
    clipped, _ = clip_only.update(grads, clip_only.init(grads))
    assert float(optax.global_norm(clipped)) == pytest.approx(1.0, rel=1e-6)
    updates, _ = tx.update(grads, tx.init(grads), grads)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_unknown_optimizer_or_schedule_is_a_config_error():
    with pytest.raises(ConfigError, match="optim.optimizer='sgd' is not one of"):
        make_optimizer(optim_config(optimizer='sgd'), 10)
    with pytest.raises(ConfigError, match="optim.schedule='step' is not one of"):
        make_optimizer(optim_config(schedule='step'), 10)


@pytest.mark.parametrize('warmup', [False, True])
def test_ema_follows_its_recursion(warmup):
    tx = optax.sgd(1.0)
    state = TrainState.create({'w': jnp.zeros(())}, tx, ema_rate=0.9, ema_warmup=warmup)
    ema, params = 0.0, 0.0
    for t in range(5):
        state = state.apply_gradients({'w': jnp.asarray(-1.0)})  # params increase by 1 each step
        params += 1.0
        decay = min(0.9, (1 + t) / (10 + t)) if warmup else 0.9
        ema = decay * ema + (1 - decay) * params
        np.testing.assert_allclose(float(state.ema_params['w']), ema, rtol=1e-6)
    assert int(state.step) == 5
