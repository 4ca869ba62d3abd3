"""Named random streams: every jax key of a run (training, sampling, inpainting and colorization, likelihood,
evaluation; every family) is drawn from `stream(seed, name, *indices)`.

A stream is the run's seed folded with the stream's number, then with each index (a step, a batch):
the same numbers whatever the device count, resumes or the order the streams are used in, and two
streams never share numbers. New streams take new numbers; a number is never reused, so results of
earlier runs stay reproducible. Training draws from `config.seed` (zsl_jax's evaluation during training too: it
belongs to the run of that seed); every mode that uses a trained model draws from `eval.seed`, so that one
trained run can be sampled with several.
"""

import jax

STREAMS = {
    'training': 1,  # the update step's noise, per global step (gen_runtime.trainer)
    'zsl_evaluation': 2,  # the synthetic features of a ZSL evaluation, per step (zsl_jax.protocol)
    'sampling': 3,  # samples (and sde's inpainting / colorization), per batch (sample and eval draw the same)
    'likelihood': 4,  # the probes and dequantisation of a likelihood (sde's ODE, ldm's variational bound), per batch
}


def stream(seed: int, name: str, *indices: int | jax.Array) -> jax.Array:
    """The key of stream `name` of the run seeded `seed`, folded with `indices` in order."""
    key = jax.random.fold_in(jax.random.key(seed), STREAMS[name])
    for index in indices:
        key = jax.random.fold_in(key, index)
    return key
