"""The domain of every config field, and the one check of a whole config against them.

Each config base file (configs/common.py, configs/<family>/base.py) documents its fields and ends with
`DOMAINS`, a table from the dotted field name to one of the domains below, in the order of the fields.
`gen_runtime.modes.run_mode` checks the config against its family's tables before any mode's own checks,
so a value outside its domain (a negative tolerance, NaN, an empty tuple, a choice that does not exist)
is refused in one line for every mode of every family, before any work. Relations between fields (an
order at most the number of steps, say) stay with the family's checks, which know what they mean.
"""

import dataclasses
import importlib
import json
import math
from collections.abc import Mapping
from typing import Any

import ml_collections

from gen_runtime.config import flatten
from gen_runtime.errors import ConfigError


class Domain:
    """A set of allowed values: `describe()` says which, `contains(value)` tests one."""

    def describe(self) -> str:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class Real(Domain):
    """A finite real number in an interval; `bounds` is '[]', '(]', '[)' or '()' (closed or open ends)."""

    low: float = -math.inf
    high: float = math.inf
    bounds: str = '[]'

    def describe(self) -> str:
        high = 'inf' if self.high == math.inf else f'{self.high:g}'
        low = '-inf' if self.low == -math.inf else f'{self.low:g}'
        return f'a finite number in {self.bounds[0]}{low}, {high}{self.bounds[1]}'

    def contains(self, value: Any) -> bool:
        if not _is_real(value):
            return False
        above = value > self.low if self.bounds[0] == '(' else value >= self.low
        below = value < self.high if self.bounds[1] == ')' else value <= self.high
        return above and below


@dataclasses.dataclass(frozen=True)
class Int(Domain):
    """An integer in [low, high]."""

    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        if self.high is None:
            return 'an integer' + ('' if self.low is None else f' >= {self.low}')
        return f'an integer in [{self.low}, {self.high}]'

    def contains(self, value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)
                and (self.low is None or value >= self.low) and (self.high is None or value <= self.high))


@dataclasses.dataclass(frozen=True)
class OneOf(Domain):
    """One of the listed values (strings or numbers)."""

    choices: tuple

    def __init__(self, *choices: Any) -> None:
        object.__setattr__(self, 'choices', choices)

    def describe(self) -> str:
        return 'one of ' + ', '.join(repr(c) for c in self.choices)

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)


@dataclasses.dataclass(frozen=True)
class TupleOf(Domain):
    """A tuple whose items are all in `item`, with a length in [min_len, max_len]."""

    item: Domain
    min_len: int = 0
    max_len: int | None = None

    def describe(self) -> str:
        if self.max_len is None:
            length = f'at least {self.min_len} ' if self.min_len else ''
        else:
            length = f'{self.min_len} ' if self.min_len == self.max_len else f'{self.min_len} to {self.max_len} '
        return f'a tuple of {length}items, each {self.item.describe()}'

    def contains(self, value: Any) -> bool:
        return (isinstance(value, (tuple, list)) and len(value) >= self.min_len
                and (self.max_len is None or len(value) <= self.max_len)
                and all(self.item.contains(v) for v in value))


@dataclasses.dataclass(frozen=True)
class CommaList(Domain):
    """A comma-separated, non-empty list of some of `choices` (case and spaces ignored), e.g. 'fid,kid'."""

    choices: tuple

    def __init__(self, *choices: str) -> None:
        object.__setattr__(self, 'choices', choices)

    def describe(self) -> str:
        return 'a comma-separated list of ' + ', '.join(self.choices)

    def contains(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        names = [n.strip().lower() for n in value.split(',') if n.strip()]
        return bool(names) and all(n in self.choices for n in names)


@dataclasses.dataclass(frozen=True)
class Text(Domain):
    """Any string (paths, names, folders): what it must name is checked where it is read."""

    nonempty: bool = False

    def describe(self) -> str:
        return 'a non-empty string' if self.nonempty else 'a string'

    def contains(self, value: Any) -> bool:
        return isinstance(value, str) and (bool(value) or not self.nonempty)


@dataclasses.dataclass(frozen=True)
class Bool(Domain):
    """True or False."""

    def describe(self) -> str:
        return 'True or False'

    def contains(self, value: Any) -> bool:
        return isinstance(value, bool)


POSITIVE = Real(0.0, math.inf, '()')
NON_NEGATIVE = Real(0.0, math.inf, '[]')
UNIT_OPEN = Real(0.0, 1.0, '()')  # (0, 1)
UNIT_CLOSED = Real(0.0, 1.0, '[]')  # [0, 1]
PROBABILITY_RATE = Real(0.0, 1.0, '[)')  # [0, 1): dropout rates, EMA rates, label dropout
ANY_REAL = Real()
POSITIVE_INT = Int(1)
COUNT = Int(0)  # 0 usually means "all" or "off"
BOOL = Bool()
TEXT = Text()


def leaf_fields(config: ml_collections.ConfigDict, prefix: str = '') -> dict[str, Any]:
    """`{dotted.name: value}` of every field that is not a section."""
    out = {}
    for name, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            out.update(leaf_fields(value, f'{prefix}{name}.'))
        else:
            out[f'{prefix}{name}'] = value
    return out


FAMILIES = ('sde_jax', 'ldm_jax', 'zsl_jax')


def check_family(family: str) -> None:
    """Raises a ConfigError unless `family` names one of the three packages."""
    if not family:
        raise ConfigError("the config sets no 'family'; configs must start from a family base file")
    if family not in FAMILIES:
        raise ConfigError(f'family {family!r} is not one of {", ".join(FAMILIES)}')


def family_domains(family: str) -> Mapping[str, Domain]:
    """The shared table of configs/common.py with the family base's (family 'sde_jax' -> configs/sde/base.py)."""
    check_family(family)
    common = importlib.import_module('configs.common').DOMAINS
    base = importlib.import_module(f'configs.{family.removesuffix("_jax")}.base').DOMAINS
    return {**common, **base}


def family_defaults(family: str) -> dict[str, Any]:
    """Every field of the family's base config (configs/<family>/base.py) at its default, flattened, as its
    JSON form compares (tuples as lists)."""
    check_family(family)
    base = importlib.import_module(f'configs.{family.removesuffix("_jax")}.base').get_config()
    return flatten(json.loads(base.to_json_best_effort()))


def check_domains(config: ml_collections.ConfigDict, domains: Mapping[str, Domain]) -> None:
    """Raises a ConfigError naming the first field whose value is outside its domain, or that has none."""
    for name, value in leaf_fields(config).items():
        if name not in domains:
            raise ConfigError(f'config field {name} has no declared domain; declare it in the family base '
                              "config's DOMAINS")
        if not domains[name].contains(value):
            raise ConfigError(f'--config.{name}={value!r} is not {domains[name].describe()}; '
                              'see the field in the family base config')
