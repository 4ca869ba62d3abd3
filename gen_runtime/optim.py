"""Optimisers from config: Adam or AdamW, linear warm-up, optional cosine decay, global-norm clipping."""

import ml_collections
import optax

from gen_runtime.errors import ConfigError

SCHEDULES = ('constant', 'cosine')
OPTIMIZERS = ('adam', 'adamw')


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to `optim.learning_rate`, then constant or cosine decay to 0."""
    peak, warmup = optim.learning_rate, optim.warmup_steps
    if optim.schedule == 'constant':
        after = optax.constant_schedule(peak)
    elif optim.schedule == 'cosine':
        after = optax.cosine_decay_schedule(peak, max(num_steps - warmup, 1))
    else:
        raise ConfigError(f'optim.schedule={optim.schedule!r} is not one of {", ".join(SCHEDULES)}')
    if warmup <= 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def make_optimizer(optim: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """The optimiser an `optim` config section describes (see configs/common.py)."""
    schedule = learning_rate_schedule(optim, num_steps)
    if optim.optimizer == 'adam':
        opt = optax.adam(schedule, b1=optim.beta1, b2=optim.beta2, eps=optim.eps)
    elif optim.optimizer == 'adamw':
        opt = optax.adamw(schedule, b1=optim.beta1, b2=optim.beta2, eps=optim.eps,
                          weight_decay=optim.weight_decay)
    else:
        raise ConfigError(f'optim.optimizer={optim.optimizer!r} is not one of {", ".join(OPTIMIZERS)}')
    if optim.grad_clip > 0:
        return optax.chain(optax.clip_by_global_norm(optim.grad_clip), opt)
    return opt
