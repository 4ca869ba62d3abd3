"""Named random streams: training (every family), ldm's sampling and likelihood and zsl's evaluation draw their
random numbers from `stream(seed, name, *indices)`.

A stream is the run's seed folded with the stream's number, then with each index (a step, a batch):
the same numbers whatever the device count, resumes or the order the streams are used in, and two
streams never share numbers. New streams take new numbers; a number is never reused, so results of
earlier runs stay reproducible. (sde_jax's sampling, inpainting, colorization and likelihood still take
`jax.random.key(sampling.seed)` / `key(likelihood.seed)` folded with the batch index; moving them onto streams
changes their numbers, so it waits for the one seed field of every family.)
"""

import jax

STREAMS = {
    'training': 1,  # the update step's noise, per global step (gen_runtime.trainer)
    'zsl_evaluation': 2,  # the synthetic features of a ZSL evaluation, per step (zsl_jax.protocol)
    'sampling': 3,  # ldm_jax samples, per batch (sample and eval draw the same sequence)
    'likelihood': 4,  # ldm_jax's variational bound, per batch
}


def stream(seed: int, name: str, *indices: int | jax.Array) -> jax.Array:
    """The key of stream `name` of the run seeded `seed`, folded with `indices` in order."""
    key = jax.random.fold_in(jax.random.key(seed), STREAMS[name])
    for index in indices:
        key = jax.random.fold_in(key, index)
    return key
