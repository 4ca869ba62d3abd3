"""The shared runtime of the three families (sde_jax, ldm_jax, zsl_jax).

One copy of what every family needs to train and evaluate a model: configuration loading and
checking, the train state with its optimiser and EMA, data parallelism over every device and host,
checkpoints, metric logging, the input pipeline and image grids.
"""

from gen_runtime.xla_cpu import prefer_eigen_convolutions

prefer_eigen_convolutions()
