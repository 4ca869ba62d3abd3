"""gen_runtime/run_once.py: a one-shot computation compiled at XLA's level 0 on the CPU agrees with jax.jit at
the default level to float32 rounding (MAX_ULP), for the initialisers it is used on (each family's, at tiny
widths), and the options reach the compile."""

import importlib

import jax
import numpy as np
import pytest

from gen_runtime.config import load_config_file
from gen_runtime.run_once import CPU_ONCE_OPTIONS, run_once

# family -> a tiny config (each family's `experiment.initialiser` builds its run's initial state)
CONFIGS = {'sde_jax': 'configs/quickstart.py', 'ldm_jax': 'configs/ldm/tiny.py:ddpm',
           'zsl_jax': 'configs/zsl/synthetic.py'}


# Level 0 leaves float rounding to LLVM unoptimised (no contraction of the normal's inverse-erf polynomial into
# fused multiply-adds, say): some parameters move by an ulp or two, the integer threefry streams not at all.
MAX_ULP = 4


@pytest.mark.parametrize('family', sorted(CONFIGS))
def test_run_once_equals_jit_to_float32_rounding(family):
    experiment = importlib.import_module(f'{family}.experiment')
    config = load_config_file(CONFIGS[family])
    problem = (importlib.import_module('zsl_jax.data').load_problem(config, 'final'),) if family == 'zsl_jax' else ()
    init = experiment.initialiser(experiment.make_experiment(config, *problem))
    once, jitted = run_once(init, jax.random.key(7)), jax.jit(init)(jax.random.key(7))
    assert jax.tree.structure(once) == jax.tree.structure(jitted)
    for a, b in zip(jax.tree.leaves(once), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_array_max_ulp(np.asarray(a), np.asarray(b), maxulp=MAX_ULP)


def test_run_once_compiles_at_level_zero_on_the_cpu(monkeypatch):
    """The options reach the compile (recorded from jax's own compile call), and so does the output placement."""
    seen = []
    original = jax.stages.Lowered.compile

    def recording(self, compiler_options=None):
        seen.append(compiler_options)
        return original(self, compiler_options=compiler_options)

    monkeypatch.setattr(jax.stages.Lowered, 'compile', recording)
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    out = run_once(lambda x: x * 3, np.float32(2.0), out_shardings=sharding)
    assert float(out) == 6.0 and out.sharding == sharding
    assert seen == [CPU_ONCE_OPTIONS if jax.default_backend() == 'cpu' else None]
