"""Every config field has a declared domain (gen_runtime.domains), every shipped config is inside them, and
each kind of domain refuses 0, negative numbers, NaN, wrong types and empty tuples where it should."""

import glob
import importlib
import math
import os

import ml_collections
import pytest

from configs import common
from gen_runtime.domains import (
    BOOL,
    POSITIVE,
    CommaList,
    Domain,
    Int,
    OneOf,
    Real,
    Text,
    TupleOf,
    check_domains,
    family_domains,
    leaf_fields,
)
from gen_runtime.errors import ConfigError
from tests.conftest import REPO

BASES = ('configs.sde.base', 'configs.ldm.base', 'configs.zsl.base')


# The variants shipped config files take (`path.py:variant`), besides their defaults.
VARIANTS = {'configs.ldm.tiny': ('classifier', 'vq', 'ldm'), 'configs.ldm.celebahq_overfit': ('ldm',),
            'configs.sde.cifar10_ncsnpp_continuous': ('deep',),
            'configs.sde.cifar10_ddpmpp_continuous': ('deep', 'subvp', 'subvp_deep'),
            'configs.zsl.synthetic': ('cizsl',), 'configs.zsl.gazsl_cub': ('hard',), 'configs.zsl.cizsl_cub': ('hard',),
            'configs.zsl.gazsl_nab': ('hard',), 'configs.zsl.cizsl_nab': ('hard',), 'configs.zsl.cub_text': ('clip',),
            'configs.zsl.gazsl_gbu': ('AWA1', 'CUB', 'SUN', 'APY', 'FLO')}


def _config_files():
    paths = sorted(glob.glob(os.path.join(REPO, 'configs', '**', '*.py'), recursive=True))
    modules = [os.path.relpath(p, REPO)[:-3].replace(os.sep, '.') for p in paths
               if not p.endswith(('__init__.py', 'common.py'))]
    return [(m, None) for m in modules] + [(m, v) for m in modules for v in VARIANTS.get(m, ())]


@pytest.mark.parametrize('base', BASES)
def test_every_field_of_every_family_has_a_domain_and_every_domain_a_field(base):
    config = importlib.import_module(base).get_config()
    fields = leaf_fields(config)
    domains = family_domains(config.family)
    assert [name for name in fields if name not in domains] == []
    # No stale entry: each table names fields its own file defines (zsl replaces the shared eval section).
    own = importlib.import_module(base).DOMAINS
    assert [name for name in own if name not in fields] == []
    assert [name for name in common.DOMAINS if name not in leaf_fields(common.get_config())] == []


@pytest.mark.parametrize('module, variant', _config_files())
def test_every_shipped_config_is_inside_its_domains(module, variant):
    get_config = importlib.import_module(module).get_config
    config = get_config() if variant is None else get_config(variant)
    check_domains(config, family_domains(config.family))


@pytest.mark.parametrize('base', BASES)
def test_nan_and_a_wrong_type_are_refused_for_every_field(base):
    """Try every field with NaN and with a value of another type: no domain may take either."""
    config = importlib.import_module(base).get_config()
    for name, domain in family_domains(config.family).items():
        default = leaf_fields(config).get(name)
        if default is None:
            continue  # a shared field this family replaced
        assert not domain.contains(math.nan), name
        assert not domain.contains(object()), name
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert not domain.contains(str(default)), name  # a number written as text is not a number
            assert not domain.contains(True), name  # bools are not numbers here


def test_the_check_names_the_field_and_its_domain():
    config = importlib.import_module('configs.sde.base').get_config()
    domains = family_domains('sde_jax')
    config.sampling.rtol = -1.0
    with pytest.raises(ConfigError, match=r'--config.sampling.rtol=-1.0 is not a finite number in \(0, inf\)'):
        check_domains(config, domains)
    config.sampling.rtol = 1e-5
    config.model.channels = (16,)
    with pytest.raises(ConfigError, match=r'model.channels=\(16,\) is not a tuple of at least 2 items, each an '
                                          'integer >= 1'):
        check_domains(config, domains)


def test_a_field_without_a_domain_is_refused():
    config = ml_collections.ConfigDict({'section': {'declared': 1, 'forgotten': 2.0}})
    with pytest.raises(ConfigError, match='config field section.forgotten has no declared domain'):
        check_domains(config, {'section.declared': Int(0)})


@pytest.mark.parametrize('domain, inside, outside', [
    (POSITIVE, [1e-12, 3, 1e30], [0, 0.0, -1e-5, math.inf, math.nan, True, '1', None, ()]),
    (Real(0.0, 1.0, '(]'), [1.0, 0.5], [0.0, 1.0000001, -0.5, math.nan]),
    (Real(0.0, 1.0, '[)'), [0.0, 0.999], [1.0, -1e-9]),
    (Real(), [-1e9, 0.0, 7], [math.inf, -math.inf, math.nan, '0']),
    (Int(1), [1, 10**9], [0, -1, 1.0, 2.5, True, math.nan, '3']),
    (Int(1, 3), [1, 2, 3], [0, 4]),
    (Int(-1), [-1, 0, 5], [-2]),
    (OneOf('a', 'b'), ['a', 'b'], ['c', '', 'A', 0, None]),
    (OneOf(1, 3), [1, 3], [2, 1.0, True, '1']),
    (TupleOf(Int(1), min_len=2), [(8, 16), [1, 2, 3]], [(), (16,), (0, 4), (1.5, 2), 16, 'ab']),
    (TupleOf(POSITIVE), [(), (0.1,)], [(0.0,), (math.nan,), (-1.0,)]),
    (CommaList('fid', 'kid'), ['fid', 'FID, kid', 'kid,'], ['', ',', 'fidd', 'fid,is', 3]),
    (Text(nonempty=True), ['x'], ['', 3, None]),
    (BOOL, [True, False], [0, 1, 'True', None]),
])
def test_domains_take_what_they_describe_and_nothing_else(domain: Domain, inside, outside):
    assert all(domain.contains(v) for v in inside), [v for v in inside if not domain.contains(v)]
    assert not any(domain.contains(v) for v in outside), [v for v in outside if domain.contains(v)]
    assert domain.describe()
