"""The training loop on a real (tiny) problem: learning, scan fusion, resume, NaN stops."""

import json
import os

import jax
import numpy as np
import pytest

from gen_runtime import trainer
from gen_runtime.checkpoint import Checkpointer
from gen_runtime.errors import ConfigError, NonFiniteError
from tests.runtime.toy_regression import flat_params, toy_config, toy_task


def read_metrics(workdir):
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


def assert_same_params(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=0, err_msg=k)


def test_loss_drops_and_everything_is_written(tmp_path):
    config = toy_config(num_steps=200, log_every=20, checkpoint_every=100)
    config.runtime.tensorboard = True
    state = trainer.train(config, str(tmp_path), toy_task(config))
    assert int(state.step) == 200
    losses = [m['loss'] for m in read_metrics(tmp_path)]
    assert len(losses) == 10
    assert losses[-1] < 0.05 * losses[0], losses
    assert 'compile_and_first_call_seconds' in read_metrics(tmp_path)[0]
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['100', '200']
    assert any(name.startswith('events.out.tfevents') for name in os.listdir(tmp_path / 'tensorboard'))


@pytest.mark.parametrize('step_loop', ['scan', 'host'])
def test_steps_per_call_runs_steps_without_changing_them(tmp_path, step_loop):
    single = toy_config(num_steps=40, log_every=20, steps_per_call=1)
    fused = toy_config(num_steps=40, log_every=20, steps_per_call=4)
    fused.training.step_loop = step_loop
    a = trainer.train(single, str(tmp_path / 'a'), toy_task(single, noise=0.1))
    b = trainer.train(fused, str(tmp_path / 'b'), toy_task(fused, noise=0.1))
    assert_same_params(flat_params(a), flat_params(b), atol=1e-6)


def test_resume_continues_exactly(tmp_path):
    full = toy_config(num_steps=40)
    uninterrupted = trainer.train(full, str(tmp_path / 'full'), toy_task(full, noise=0.1))
    half = toy_config(num_steps=20)
    trainer.train(half, str(tmp_path / 'resumed'), toy_task(half, noise=0.1))
    resumed = trainer.train(full, str(tmp_path / 'resumed'), toy_task(full, noise=0.1))
    assert_same_params(flat_params(uninterrupted), flat_params(resumed))
    steps = [m['step'] for m in read_metrics(tmp_path / 'resumed')]
    assert steps == [10, 20, 30, 40]


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    config = toy_config(num_steps=40, log_every=10, checkpoint_every=20)
    with pytest.raises(NonFiniteError, match=r'loss became NaN/Inf between steps 31 and 40.*last good checkpoint '
                                             r'is step 20'):
        trainer.train(config, str(tmp_path), toy_task(config, nan_after=33))
    ckpt = Checkpointer(str(tmp_path / 'checkpoints'))
    assert ckpt.steps() == [20]
    step, state = ckpt.restore_latest(trainer.init_state(toy_task(config).init_state, 0, jax.sharding.Mesh(
        np.asarray(jax.devices()), ('batch',))))
    ckpt.close()
    assert step == 20 and all(np.all(np.isfinite(v)) for v in flat_params(state).values())


@pytest.mark.parametrize('field, value, message', [
    ('steps_per_call', 3, 'training.num_steps=40 must be a positive multiple of training.steps_per_call=3'),
    ('log_every', 0, 'training.log_every=0 must be a positive multiple'),
    ('step_loop', 'python', "training.step_loop='python' must be one of auto, scan, host"),
])
def test_inconsistent_step_counts_are_refused(field, value, message):
    config = toy_config(**{field: value})
    with pytest.raises(ConfigError, match=message):
        trainer.check_train_settings(config)
