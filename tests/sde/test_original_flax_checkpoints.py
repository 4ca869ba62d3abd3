"""Original score_sde (Flax) checkpoints imported and run against the original code's own outputs.

The fixtures under fixtures/score_sde/ were written by running yang-song/score_sde's linen models
(fixtures/make_score_sde_fixtures.py): their parameter trees carry the names the original modules give
themselves (`ResnetBlockBigGANpp_3/Conv_0/kernel`, `AttnBlockpp_0/NIN_2/W`, ...), so these tests prove
the name mapping, not a layout restated here.
"""

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_runtime import trainer
from gen_runtime.errors import CheckpointError
from sde_jax.experiment import initialiser, make_experiment
from sde_jax.weights import detect_layout, import_weights
from tests.sde.test_original_checkpoints import OURS, TINY_FIELDS, close, original_std

FIXTURES = Path(__file__).parent / 'fixtures' / 'score_sde'


def reference(name: str) -> tuple[dict, dict]:
    with np.load(FIXTURES / name / 'reference.npz') as f:
        ref = {k: f[k] for k in f.files}
    return ref, json.loads(str(ref['config_json']))


def tiny_config(name: str, original: dict, **weights):
    module, variant = OURS[name]
    config = module.get_config(variant)
    config.unlock()
    config.data.image_size = original['data']['image_size']
    for field in TINY_FIELDS:
        value = original['model'][field]
        config.model[field] = tuple(value) if isinstance(value, list) else value
    config.weights.path = str(FIXTURES / name / 'checkpoint_2')
    config.weights.update(weights)
    config.lock()
    return config


@pytest.fixture(scope='module', params=sorted(OURS))
def imported(request, tmp_path_factory):
    name = request.param
    ref, original = reference(name)
    config = tiny_config(name, original)
    workdir = str(tmp_path_factory.mktemp(f'import_flax_{name}'))
    import_weights(config, workdir)
    exp = make_experiment(config)
    step, state = trainer.load_trained_state(config, workdir, initialiser(exp))
    assert step == 0
    with open(os.path.join(workdir, 'import.json')) as f:
        record = json.load(f)
    assert record['layout'] == 'score_sde' and record['original_step'] == 2
    return name, ref, original, exp, state


def test_flax_layout_is_detected_from_the_file():
    assert detect_layout(str(FIXTURES / 've' / 'checkpoint_2')) == 'score_sde'


def test_imported_flax_scores_equal_the_original_get_score_fn(imported):
    """Network outputs within 1e-5 at every t, raw and EMA weights (scores too where the original's
    float32 std keeps its digits: see the score_sde_pytorch test)."""
    name, ref, original, exp, state = imported
    x, t = jnp.asarray(ref['score_x']), jnp.asarray(ref['score_t'])
    std = original_std(name, original, ref['score_t'])[:, None, None, None]
    accurate = ref['score_t'] > 0.1 if name != 've' else np.ones(len(std), bool)
    for params, key in ((state.ema_params, 'score_ema'), (state.params, 'score_raw')):
        ours = np.asarray(jax.jit(exp.score_fn(params))(x, t))
        net = -ours * np.asarray(exp.sde.marginal_coefs(t)[1])[:, None, None, None]
        assert close(net, -ref[key] * std) < 1e-5, key
        assert close(ours[accurate], ref[key][accurate]) < 1e-5, key
    assert close(ref['score_ema'], ref['score_raw']) > 1e-2


def test_flax_checkpoint_of_another_width_is_refused_before_writing(tmp_path):
    """A config whose network differs from the file stops naming a parameter and both shapes."""
    _, original = reference('vp')
    original['model']['nf'] = 16
    workdir = tmp_path / 'w'
    with pytest.raises(CheckpointError, match=r'AttnBlockpp_0.GroupNorm_0.bias has shape \(16,\).*\(expects \(32,\)'):
        import_weights(tiny_config('vp', original), str(workdir))
    assert not workdir.exists() or not any(workdir.iterdir())
