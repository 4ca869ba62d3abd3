"""Pytrees (nested structures of arrays: parameters, optimiser states, batches): the one name for them in type
hints, and the one parameter count every family reports."""

from typing import Any

import jax
import numpy as np

PyTree = Any  # a JAX pytree: nested dicts, lists, tuples and dataclasses of arrays


def count_params(params: PyTree) -> int:
    """Number of scalars in a pytree of arrays (or of shapes from jax.eval_shape)."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params)))
