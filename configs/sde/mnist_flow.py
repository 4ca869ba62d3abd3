"""MNIST by flow matching (the rectified flow x_t = (1 - t) x_0 + t eps) with the tutorial's U-Net.

Starts from configs/sde/mnist_tutorial.py (data, network, optimiser) and changes the process and its loss. The
network's time label is 999 t (sde_jax.conditioning), so Fourier features of scale 30 / 999 equal the tutorial's
features of t. Data in [-1, 1]; samples by DPM-Solver++(2M) in 20 uniform steps; no variational bound (the flow has
only its ODE, whose bits/dim --mode likelihood computes). `scripts/sde_mnist_flow.sh` trains it at a CPU budget.
"""

import ml_collections

from configs.sde import mnist_tutorial


def get_config() -> ml_collections.ConfigDict:
    config = mnist_tutorial.get_config()
    config.data.centered = True
    config.sde.type = 'rectified_flow'
    config.loss.type = 'flow_matching'
    config.model.fourier_scale = 30.0 / 999.0
    config.sampling.method = 'dpm_solver_pp'
    config.sampling.num_steps = 20
    config.likelihood.bound_times = 0
    return config
