"""gen_runtime.xla_cpu: importing the library sends XLA:CPU's convolutions to its Eigen kernels, where it can.

Each case is a fresh Python process (XLA reads its flags once per process): what XLA_FLAGS say after the import,
whether the optimised HLO of a 3x3 convolution still holds a YNNPACK fusion, and the convolution's output.
"""

import json
import os

import numpy as np

from gen_runtime.xla_cpu import EIGEN_CONVOLUTIONS_FLAG
from tests.conftest import run_python

PROBE = '''
import json, os, sys
import numpy as np
if sys.argv[1] == 'jax_first':  # a program that ran jax before importing the library
    import jax
    jax.numpy.zeros(1).block_until_ready()
import gen_runtime
import jax
x = np.random.default_rng(0).standard_normal((2, 12, 12, 32)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32) / 17
conv = jax.jit(lambda a, k: jax.lax.conv_general_dilated(a, k, (1, 1), 'SAME',
                                                         dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
hlo = conv.lower(x, w).compile().as_text()
print(json.dumps({'flags': os.environ.get('XLA_FLAGS', ''), 'ynn_fusion': '__ynn' in hlo,
                  'out': np.asarray(conv(x, w)).ravel()[::97].tolist()}))
'''


def probe(order: str, xla_flags: str) -> dict:
    proc = run_python(['-c', PROBE, order], env={'XLA_FLAGS': xla_flags})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_import_sends_convolutions_to_eigen_unless_the_user_or_a_started_backend_decided():
    ours = probe('library_first', '--xla_force_host_platform_device_count=1')
    assert ours['flags'].split() == ['--xla_force_host_platform_device_count=1', EIGEN_CONVOLUTIONS_FLAG]
    assert not ours['ynn_fusion']
    default = probe('jax_first', '')  # the backend started first: XLA's default stays, and nothing claims otherwise
    assert default['flags'] == '' and default['ynn_fusion']
    np.testing.assert_allclose(ours['out'], default['out'], rtol=1e-5, atol=1e-5)  # the same convolution
    users = probe('library_first', '--xla_cpu_experimental_ynn_fusion_type=individual_convolution')
    assert users['flags'] == '--xla_cpu_experimental_ynn_fusion_type=individual_convolution' and users['ynn_fusion']


def test_only_jaxlib_versions_known_to_take_the_flag_get_it(monkeypatch):
    from jax._src import xla_bridge

    from gen_runtime import xla_cpu

    monkeypatch.setattr(xla_bridge, 'backends_are_initialized', lambda: False)
    for version, added in (('0.10.2', True), ('0.11.2', False), ('0.9.0', False), ('0.10.dev', True)):
        monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
        monkeypatch.setattr(xla_cpu.importlib.metadata, 'version', lambda name, v=version: v)
        assert xla_cpu.prefer_eigen_convolutions() is added, version
        expected = ['--xla_force_host_platform_device_count=2'] + [EIGEN_CONVOLUTIONS_FLAG] * added
        assert os.environ['XLA_FLAGS'].split() == expected, version
