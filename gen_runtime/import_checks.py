"""Settings an imported file fixes, checked against the run's config before anything is written.

Each importer knows what its file's origin records or always uses (a diffusers config.json, the buffers of
a score_sde_pytorch state dict, openaimodel's fixed time embedding and GroupNorm, the layer sizes of a
checkpoint) and hands it here as `{field: value}` for one config section; every field whose config value
differs is named in one line, with the file's value, the config's and the flags that fix it.
"""

import math
from collections.abc import Mapping
from typing import Any

import ml_collections

from gen_runtime.errors import ConfigError


def _normal(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def same_setting(ours: Any, theirs: Any) -> bool:
    """Equal, numbers to a relative 1e-6 (a value recomputed from stored buffers), sequences as tuples."""
    ours, theirs = _normal(ours), _normal(theirs)
    numbers = (int, float)
    if isinstance(ours, numbers) and isinstance(theirs, numbers) and not isinstance(ours, bool) \
            and not isinstance(theirs, bool):
        return math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=0.0)
    return ours == theirs


def _flag(value: Any) -> str:
    value = _normal(value)
    return f'({",".join(map(str, value))})' if isinstance(value, tuple) else str(value)


def mismatch_message(source: str, expected: Mapping[str, Any], section: ml_collections.ConfigDict, name: str,
                     skip: tuple[str, ...] = ()) -> str | None:
    """'{source} has {name}.f=v, ... where this config has o, ...; pass --config.{name}.f=v ...' for every field
    of `expected` (in section `name` of the config) that the config sets otherwise, None if none does."""
    differ = [(field, _normal(value), _normal(section[field])) for field, value in expected.items()
              if field not in skip and field in section and not same_setting(section[field], value)]
    if not differ:
        return None
    theirs = ', '.join(f'{name}.{field}={value!r}' for field, value, _ in differ)
    ours = ', '.join(repr(mine) for _, _, mine in differ)
    flags = ' '.join(f'--config.{name}.{field}={_flag(value)}' for field, value, _ in differ)
    return f'{source} has {theirs} where this config has {ours}; pass {flags}'


def refuse_mismatches(source: str, expected: Mapping[str, Any], section: ml_collections.ConfigDict, name: str,
                      skip: tuple[str, ...] = ()) -> None:
    """Raises a one-line ConfigError naming every field of `expected` that the config sets otherwise."""
    message = mismatch_message(source, expected, section, name, skip)
    if message is not None:
        raise ConfigError(message)
