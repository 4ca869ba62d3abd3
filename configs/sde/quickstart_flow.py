"""The quickstart (configs/quickstart.py: 8x8 digits, the 66k-parameter U-Net, 2000 steps) as a rectified flow.

Only the process and its loss change: x_t = (1 - t) x_0 + t eps trained by flow matching, sampled by
DPM-Solver++(2M) in 20 uniform steps, no variational bound (the flow has only its ODE). benchmarks/few_step_digits.py
compares its samplers with the quickstart's (`--flow-workdir`).
"""

import ml_collections

from configs import quickstart


def get_config() -> ml_collections.ConfigDict:
    config = quickstart.get_config()
    config.sde.type = 'rectified_flow'
    config.loss.type = 'flow_matching'
    config.sampling.method = 'dpm_solver_pp'
    config.sampling.num_steps = 20
    config.likelihood.bound_times = 0
    return config
