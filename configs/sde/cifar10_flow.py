"""CIFAR-10 by flow matching: the DDPM++ cont. network and training of configs/sde/cifar10_ddpmpp_continuous.py on
the rectified flow x_t = (1 - t) x_0 + t eps, with logit-normal training times (Esser et al. 2024).

Samples through the adaptive probability-flow ODE (the few-step solvers with sampling.method and sampling.shift);
no variational bound (the flow has only its ODE).
"""

import ml_collections

from configs.sde import cifar10_ddpmpp_continuous


def get_config() -> ml_collections.ConfigDict:
    config = cifar10_ddpmpp_continuous.get_config()
    config.sde.type = 'rectified_flow'
    config.loss.type = 'flow_matching'
    config.loss.time_sampling = 'logit_normal'
    config.sampling.method = 'ode'
    config.likelihood.bound_times = 0
    return config
