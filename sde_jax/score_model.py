"""Score functions s_theta(x, t) from a network and its parameters (convention: sde_jax.conditioning)."""

from collections.abc import Callable

import flax.linen as nn
import jax

from gen_runtime.pytree import PyTree
from sde_jax.conditioning import network_time, noise_std, score_from_output
from sde_jax.sde import SDE, RectifiedFlow, ScoreFn, VelocityScore


def network_fn(model: nn.Module, params: PyTree, sde: SDE, continuous: bool, *, train: bool = False,
               dropout_rng: jax.Array | None = None) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """(x, t) -> the network's output at continuous time t (shape (B,)): the noise, or the flow's velocity."""

    def apply(x: jax.Array, t: jax.Array) -> jax.Array:
        rngs = {'dropout': dropout_rng} if dropout_rng is not None else None
        return model.apply({'params': params}, x, network_time(sde, t, continuous), train=train, rngs=rngs)

    return apply


def score_fn(model: nn.Module, params: PyTree, sde: SDE, continuous: bool = True) -> ScoreFn:
    """(x, t) -> s_theta(x, t) = -net(x, label(t)) / std(t), evaluated without dropout; for the rectified flow the
    network is the velocity, wrapped as a VelocityScore."""
    net = network_fn(model, params, sde, continuous)
    if isinstance(sde, RectifiedFlow):
        return VelocityScore(net)

    def score(x: jax.Array, t: jax.Array) -> jax.Array:
        return score_from_output(net(x, t), noise_std(sde, t, continuous))

    return score
