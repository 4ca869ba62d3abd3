"""Data parallelism over every device of every host with `jax.sharding`.

One mesh with a single 'batch' axis spans all devices; parameters are replicated and the leading
(batch) axis of every input is split across it. Each host loads only its own slice of a global batch
and `host_local_to_global` assembles the global array, so the same code runs on one CPU, on a GPU
server and on a TPU pod slice.
"""

from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gen_runtime.errors import ConfigError

BATCH_AXIS = 'batch'


def init_distributed(runtime: ml_collections.ConfigDict) -> None:
    """Starts jax.distributed when `runtime.distributed` asks for it (call before any JAX work).

    On CPU the gloo collectives are selected so that several processes on one machine (or a CPU
    cluster) can run one program together.
    """
    if not runtime.distributed:
        return
    if jax.config.jax_platforms in (None, '', 'cpu') or 'cpu' in str(jax.config.jax_platforms):
        jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    kwargs = {}
    if runtime.coordinator_address:
        kwargs['coordinator_address'] = runtime.coordinator_address
    if runtime.num_processes > 0:
        kwargs['num_processes'] = runtime.num_processes
    if runtime.process_id >= 0:
        kwargs['process_id'] = runtime.process_id
    jax.distributed.initialize(**kwargs)


def make_mesh() -> Mesh:
    """A 1-D mesh over all devices of all processes, axis name 'batch'."""
    return Mesh(np.asarray(jax.devices()), (BATCH_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of an array copied onto every device (parameters, optimiser state)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, leading_axes: int = 0) -> NamedSharding:
    """Sharding that splits the batch axis, after `leading_axes` unsplit axes (e.g. scanned steps)."""
    return NamedSharding(mesh, PartitionSpec(*([None] * leading_axes), BATCH_AXIS))


def check_batch_size(global_batch: int, what: str = 'training.batch_size') -> None:
    """Raises a ConfigError unless the global batch splits evenly over devices and hosts."""
    if global_batch < 1:
        raise ConfigError(f'{what}={global_batch} must be a positive number of examples')
    n = jax.device_count()
    if global_batch % n:
        raise ConfigError(f'{what}={global_batch} is not divisible by the {n} devices; '
                          f'use a multiple of {n}')


def host_slice(global_batch: int) -> slice:
    """The rows of a global batch that this process loads."""
    per_host = global_batch // jax.process_count()
    start = jax.process_index() * per_host
    return slice(start, start + per_host)


def host_local_to_global(tree: Any, mesh: Mesh, leading_axes: int = 0) -> Any:
    """Assembles global, batch-sharded arrays from each process's host-local numpy slices."""
    sharding = batch_sharded(mesh, leading_axes)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), tree)


def to_host(tree: Any) -> Any:
    """Fetches arrays to numpy on this host; batch-sharded arrays of other hosts are gathered."""

    def fetch(x: jax.Array) -> np.ndarray:
        if x.is_fully_addressable:
            return np.asarray(jax.device_get(x))
        if x.sharding.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(fetch, tree)
