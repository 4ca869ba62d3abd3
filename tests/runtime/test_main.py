"""main.py end to end on the quickstart: one-line errors, SIGKILL resume, SIGTERM, device counts."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.conftest import REPO, run_python
from tests.runtime.test_checkpoint import truncate_checkpoint
from tests.runtime.test_trainer import read_metrics

TINY = ['--config.training.batch_size=16', '--config.training.log_every=4',
        '--config.sampling.num_steps=4', '--config.sampling.num_samples=8', '--config.sampling.batch_size=8',
        '--config.model.channels=(8, 16, 16)', '--config.model.embed_dim=16']


def quickstart(workdir, *extra):
    return ['main.py', '--config', 'configs/quickstart.py', '--workdir', str(workdir), *TINY, *extra]


def one_line_error(proc):
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith('error: '), proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    return lines[-1]


def checkpoint_params(workdir, step):
    """The parameters saved at `step`, read back raw (no model code involved)."""
    path = os.path.join(workdir, 'checkpoints', str(step), 'default')
    checkpointer = ocp.StandardCheckpointer()
    # The run may have used more devices than this process has: read every array onto one device.
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          checkpointer.metadata(path).item_metadata.tree)
    return checkpointer.restore(path, target)['state']['params']


def assert_trees_equal(a, b, atol=0.0):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


@pytest.mark.parametrize('args, message', [
    (['--config.training.batchsize=3'], "config field 'batchsize' does not exist.*did you mean 'batch_size'"),
    (['--config.training.batch_size=abc'], 'flag --config.training.batch_size=abc: invalid literal'),
    (['--mode=dream'], "unknown --mode 'dream' for family sde_jax; choose one of .*train"),
    (['--config.data.source=npz', '--config.data.path=/nonexistent/x.npz'],
     'npz file /nonexistent/x.npz does not exist'),
    (['stray'], 'unexpected arguments stray'),
])
def test_bad_input_gets_a_one_line_error(tmp_path, args, message):
    proc = run_python(quickstart(tmp_path / 'run', '--config.training.num_steps=4', *args), check=False)
    import re

    assert re.search(message, one_line_error(proc)), proc.stderr[-2000:]


def test_missing_config_file_and_unknown_field_in_an_override_file(tmp_path):
    proc = run_python(['main.py', '--config', 'configs/no_such.py', '--workdir', str(tmp_path)], check=False)
    assert "config file 'configs/no_such.py' does not exist" in one_line_error(proc)
    override = tmp_path / 'typo.py'
    override.write_text('from configs import quickstart\n\n\ndef get_config():\n    config = quickstart.get_config()\n'
                        '    config.optim.learnin_rate = 1.0\n    return config\n')
    proc = run_python(['main.py', '--config', str(override), '--workdir', str(tmp_path)], check=False)
    assert "config field 'learnin_rate' does not exist" in one_line_error(proc)


def test_workdir_of_another_config_is_refused_and_left_alone(tmp_path):
    run_python(quickstart(tmp_path, '--config.training.num_steps=4', '--config.training.checkpoint_every=4'))
    before = sorted(os.listdir(tmp_path / 'checkpoints'))
    proc = run_python(quickstart(tmp_path, '--config.training.num_steps=4', '--config.optim.learning_rate=0.1'),
                      check=False)
    assert 'holds a run of a different config (optim.learning_rate' in one_line_error(proc)
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == before
    # Training longer, or sampling differently, is the same run: allowed.
    run_python(quickstart(tmp_path, '--config.training.num_steps=8', '--config.training.checkpoint_every=4',
                          '--config.sampling.num_steps=2'))


def test_batch_that_does_not_split_over_devices_is_refused(tmp_path):
    proc = run_python(quickstart(tmp_path, '--config.training.batch_size=12', '--config.training.num_steps=4'),
                      devices=8, check=False)
    assert 'training.batch_size=12 is not divisible by the 8 devices' in one_line_error(proc)


def start(args, devices=1):
    env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}', 'JAX_PLATFORMS': 'cpu',
           'PYTHONPATH': str(REPO)}
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc, workdir, count=1, timeout=300):
    """Polls until `count` checkpoints are complete; fails if the run ended before that."""
    deadline = time.time() + timeout
    ckpt = workdir / 'checkpoints'
    while time.time() < deadline:
        if ckpt.exists() and sum(name.isdigit() for name in os.listdir(ckpt)) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f'run ended before its first checkpoint:\n{proc.stderr.read()[-3000:]}')
        time.sleep(0.02)
    raise AssertionError('no checkpoint appeared in time')


def saved_steps(workdir):
    return sorted(int(n) for n in os.listdir(workdir / 'checkpoints') if n.isdigit())


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_to_identical_parameters(tmp_path):
    steps = ['--config.training.num_steps=120', '--config.training.checkpoint_every=20']
    run_python(quickstart(tmp_path / 'reference', *steps))
    reference = checkpoint_params(tmp_path / 'reference', 120)

    # Kill a second run mid-way and truncate its newest checkpoint as a crash during the write would:
    # the same command falls back to the previous one, says so, and still ends on the same parameters.
    command = quickstart(tmp_path / 'killed', *steps)
    proc = start(command)
    wait_for_checkpoint(proc, tmp_path / 'killed', count=2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = saved_steps(tmp_path / 'killed')
    newest = at_kill[-1]
    assert len(at_kill) >= 2 and newest < 120, f'the run was not killed mid-way: {at_kill}'
    truncate_checkpoint(tmp_path / 'killed' / 'checkpoints' / str(newest))
    restart = run_python(command)
    assert f'checkpoint at step {newest}' in restart.stderr and 'is unreadable' in restart.stderr
    assert f'resumed from the previous good checkpoint, step {at_kill[-2]}' in restart.stderr
    assert_trees_equal(checkpoint_params(tmp_path / 'killed', 120), reference)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    proc = start(quickstart(tmp_path, '--config.training.num_steps=2000', '--config.training.checkpoint_every=20'))
    wait_for_checkpoint(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    assert 'stopped by SIGTERM at step' in stderr and 'run the same command to resume' in stderr
    step = int(stderr.split('stopped by SIGTERM at step ')[1].split(';')[0])
    assert step in saved_steps(tmp_path) and step < 2000


@pytest.mark.slow
def test_quickstart_on_one_and_eight_devices_trains_the_same_model(tmp_path):
    steps = ['--config.training.num_steps=8', '--config.training.log_every=1', '--config.optim.warmup_steps=0']
    run_python(quickstart(tmp_path / 'one', *steps), devices=1)
    run_python(quickstart(tmp_path / 'eight', *steps), devices=8)
    one, eight = read_metrics(tmp_path / 'one'), read_metrics(tmp_path / 'eight')
    # Each step's loss is taken before its update, so steps 2..8 see the parameters trained so far on the
    # global batch. (Parameters are not compared leaf by leaf: Adam turns the float noise on exactly-zero
    # gradients, such as a bias in front of a normalisation, into learning-rate-sized moves.)
    losses = np.array([[m['loss'] for m in run] for run in (one, eight)])
    assert losses.shape == (2, 8) and np.ptp(losses[0]) > 1e-3
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
