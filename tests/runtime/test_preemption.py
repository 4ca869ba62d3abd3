"""Preemption through main.py: a SIGKILLed run resumes to identical parameters (also past a truncated
checkpoint), SIGTERM saves a checkpoint and exits 143, and a stop landing at any moment of an iteration is saved
before it is reported."""

import os
import signal
import subprocess
import sys
import time

import pytest

from gen_runtime.errors import Preempted
from gen_runtime.trainer import StopSignal
from tests.conftest import REPO, python_env, run_python
from tests.runtime.test_checkpoint import truncate_checkpoint
from tests.runtime.test_main import assert_trees_equal, checkpoint_params, quickstart


def start(args, devices=1):
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=python_env(devices), stdout=subprocess.PIPE,
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


def reported_step(message):
    """The step of 'stopped by SIGTERM at step N; ...'."""
    return int(message.split('stopped by SIGTERM at step ')[1].split(';')[0])


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
    assert f'using the previous good checkpoint, step {at_kill[-2]}' in restart.stderr
    assert_trees_equal(checkpoint_params(tmp_path / 'killed', 120), reference)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    proc = start(quickstart(tmp_path, '--config.training.num_steps=2000', '--config.training.checkpoint_every=20'))
    wait_for_checkpoint(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    assert 'stopped by SIGTERM at step' in stderr and 'run the same command to resume' in stderr
    step = reported_step(stderr)
    assert step in saved_steps(tmp_path) and step < 2000


class LateStop(StopSignal):
    """A SIGTERM that lands while an iteration of the training loop is under way: `raised` turns true at its
    FLIP-th read (every read after a step is a moment the real signal can arrive between)."""

    FLIP = 1

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    @property
    def raised(self) -> bool:
        self.reads += 1
        if self.reads >= self.FLIP:
            self.name = 'SIGTERM'
        return bool(self.name)


def test_a_stop_that_lands_mid_iteration_is_saved_before_it_is_reported(tmp_path, monkeypatch):
    """The loop read the stop flag three times per iteration; a signal landing between the read that decides the
    save and the one that stops reported 'a checkpoint was saved' at a step it had not saved (seen in CI)."""
    from gen_runtime import trainer
    from gen_runtime.config import load_config_file
    from gen_runtime.modes import run_mode

    config = load_config_file('configs/quickstart.py')  # at test_main's TINY sizes
    config.training.batch_size, config.training.log_every, config.runtime.progress_bar = 16, 2, False
    config.model.channels, config.model.embed_dim = (8, 16, 16), 16
    config.training.num_steps, config.training.checkpoint_every = 40, 1000
    monkeypatch.setattr(trainer, 'StopSignal', LateStop)
    for flip in range(1, 7):  # every moment of the first two iterations (a log every 2 steps)
        monkeypatch.setattr(LateStop, 'FLIP', flip)
        workdir = tmp_path / str(flip)
        with pytest.raises(Preempted, match='stopped by SIGTERM at step') as stopped:
            run_mode(config, str(workdir), 'train')
        step = reported_step(str(stopped.value))
        assert step in saved_steps(workdir), (flip, step, saved_steps(workdir))
