"""The train state: parameters, optimiser state, step and an EMA of the parameters."""

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_runtime.optim import make_optimizer
from gen_runtime.pytree import PyTree


class TrainState(flax.struct.PyTreeNode):
    """One optimised set of parameters. A GAN holds one per player.

    `extra` carries non-trained state a model updates itself (e.g. batch statistics, an EMA
    codebook); it is checkpointed with the rest.
    """

    step: jax.Array
    params: PyTree
    opt_state: optax.OptState
    ema_params: PyTree
    extra: PyTree = None
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False, default=None)
    ema_rate: float = flax.struct.field(pytree_node=False, default=0.999)
    ema_warmup: bool = flax.struct.field(pytree_node=False, default=False)

    @classmethod
    def create(cls, params: PyTree, tx: optax.GradientTransformation, *, ema_rate: float = 0.999,
               ema_warmup: bool = False, extra: PyTree = None) -> 'TrainState':
        """A fresh state at step 0 whose EMA starts at `params`."""
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                   ema_params=params, extra=extra, tx=tx, ema_rate=ema_rate, ema_warmup=ema_warmup)

    @classmethod
    def from_config(cls, params: PyTree, config: ml_collections.ConfigDict,
                    extra: PyTree = None) -> 'TrainState':
        """`create` with the optimiser and EMA of `config.optim` (see configs/common.py)."""
        tx = make_optimizer(config.optim, config.training.num_steps)
        return cls.create(params, tx, ema_rate=config.optim.ema_rate,
                          ema_warmup=config.optim.ema_warmup, extra=extra)

    def ema_decay(self) -> jax.Array:
        """The EMA decay at this step: `ema_rate`, or min(rate, (1+t)/(10+t)) with warm-up."""
        rate = jnp.asarray(self.ema_rate, jnp.float32)
        if self.ema_warmup:
            t = self.step.astype(jnp.float32)
            rate = jnp.minimum(rate, (1.0 + t) / (10.0 + t))
        return rate

    def apply_gradients(self, grads: PyTree, extra: PyTree = None) -> 'TrainState':
        """One optimiser step, then the EMA update; `extra` replaces the state's extra if given."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        decay = self.ema_decay()
        ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, self.ema_params, params)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state, ema_params=ema,
                            extra=self.extra if extra is None else extra)
