"""Every setting each sde_jax mode reads, checked before any work (gen_runtime.modes calls these).

Each check builds only what is cheap (the SDE, the flax module, the samplers' settings): no data, no
weights, no compilation. A setting refused here would otherwise be refused only where it is used,
e.g. the sampler's after training.
"""

import ml_collections

from gen_runtime.errors import ConfigError
from gen_runtime.sample_quality.evaluate import check_eval_settings
from gen_runtime.trainer import check_builds, check_train_settings
from sde_jax.experiment import Experiment, initialiser, make_experiment
from sde_jax.generation import ConstrainedSampler, check_sampling
from sde_jax.likelihood_eval import check_likelihood_settings
from sde_jax.losses import check_loss_config
from sde_jax.sde import RectifiedFlow


def check_model(config: ml_collections.ConfigDict) -> Experiment:
    """The SDE, the network and the data shape; returns the Experiment they make."""
    exp = make_experiment(config)
    check_builds(initialiser(exp), 'model')
    return exp


def check_train(config: ml_collections.ConfigDict) -> None:
    """train: the loss, training, optimiser, and the sampling done after training."""
    exp = check_model(config)
    check_loss_config(config.loss, exp.sde)
    check_train_settings(config)
    check_sampling(exp)


def check_sample(config: ml_collections.ConfigDict) -> None:
    check_sampling(check_model(config))


def check_likelihood(config: ml_collections.ConfigDict) -> None:
    exp = check_model(config)
    check_likelihood_settings(config.likelihood)
    if isinstance(exp.sde, RectifiedFlow) and config.likelihood.bound_times:
        raise ConfigError("likelihood.bound_times bounds the reverse SDE's likelihood; the rectified flow has only its "
                          "ODE (whose bits/dim --mode likelihood computes): set likelihood.bound_times=0")


def check_eval(config: ml_collections.ConfigDict) -> None:
    check_sampling(check_model(config))
    check_eval_settings(config)


def check_inpaint(config: ml_collections.ConfigDict) -> None:
    exp = check_model(config)
    ConstrainedSampler(exp, 'inpaint')
    check_sampling(exp)


def check_colorize(config: ml_collections.ConfigDict) -> None:
    exp = check_model(config)
    ConstrainedSampler(exp, 'colorize')
    check_sampling(exp)
