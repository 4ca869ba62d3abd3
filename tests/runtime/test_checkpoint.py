"""Checkpoints: fallback past a truncated newest checkpoint, and a clear error when none is readable."""

import logging
import os

import pytest

from gen_runtime import trainer
from gen_runtime.errors import CheckpointError
from tests.runtime.test_trainer import assert_same_params
from tests.runtime.toy_regression import flat_params, toy_config, toy_task


def truncate_checkpoint(step_dir):
    for dirpath, _, names in os.walk(step_dir):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, 'r+b') as f:
                f.truncate(os.path.getsize(path) // 2)


def test_truncated_newest_checkpoint_falls_back_to_previous_and_says_so(tmp_path, caplog):
    full = toy_config(num_steps=60, checkpoint_every=20)
    reference = trainer.train(full, str(tmp_path / 'reference'), toy_task(full, noise=0.1))
    partial = toy_config(num_steps=40, checkpoint_every=20)
    trainer.train(partial, str(tmp_path / 'run'), toy_task(partial, noise=0.1))
    truncate_checkpoint(tmp_path / 'run' / 'checkpoints' / '40')

    with caplog.at_level(logging.WARNING):
        resumed = trainer.train(full, str(tmp_path / 'run'), toy_task(full, noise=0.1))
    warnings = [r.getMessage() for r in caplog.records if r.name == 'gen_runtime.checkpoint']
    assert len(warnings) == 1  # one line, whatever the failed read left behind
    assert 'checkpoint at step 40' in warnings[0] and 'is unreadable' in warnings[0]
    assert 'using the previous good checkpoint, step 20' in warnings[0]
    moved = os.listdir(tmp_path / 'run' / 'checkpoints.unreadable')
    assert len(moved) == 1 and moved[0].startswith('40-')
    assert_same_params(flat_params(reference), flat_params(resumed))


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    config = toy_config(num_steps=20, checkpoint_every=20)
    trainer.train(config, str(tmp_path), toy_task(config))
    truncate_checkpoint(tmp_path / 'checkpoints' / '20')
    with pytest.raises(CheckpointError, match=r'none of the checkpoints \[20\].*can be read'):
        trainer.train(config, str(tmp_path), toy_task(config))
    assert os.listdir(tmp_path / 'checkpoints') == ['20']  # nothing deleted


def test_sampling_without_a_checkpoint_says_train_first(tmp_path):
    config = toy_config()
    with pytest.raises(CheckpointError, match='no checkpoint in .*; train first with --mode train'):
        trainer.load_trained_state(config, str(tmp_path), toy_task(config).init_state)


def test_trained_params_are_the_ema_or_the_raw_parameters_of_the_newest_checkpoint(tmp_path):
    config = toy_config(num_steps=20, checkpoint_every=10)
    final = trainer.train(config, str(tmp_path), toy_task(config))
    step, ema, state = trainer.trained_params(config, str(tmp_path), toy_task(config).init_state, use_ema=True)
    _, raw, _ = trainer.trained_params(config, str(tmp_path), toy_task(config).init_state, use_ema=False)
    assert step == 20 and int(state.step) == 20
    assert_same_params(flat_params(final.replace(params=final.ema_params)), flat_params(state.replace(params=ema)))
    assert_same_params(flat_params(final), flat_params(state.replace(params=raw)))
    ema, raw = flat_params(state.replace(params=ema)), flat_params(state)
    assert max(float(abs(ema[k] - raw[k]).max()) for k in raw) > 1e-3  # two different sets
