"""The run layer around every mode: one run per workdir, signals, and one line for what the user must fix.

Each bad input below must end with exit code 2, a last stderr line starting `error:`, no traceback,
and the workdir's earlier files unchanged.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from gen_runtime.errors import ConfigError
from gen_runtime.trainer import StopSignal
from gen_runtime.workdir_lock import LOCK_FILE, hold_workdir
from tests.conftest import run_python
from tests.runtime.test_main import one_line_error, quickstart


def _snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder)) if (folder / name).is_file()}


def test_a_second_run_on_a_held_workdir_is_refused_naming_the_holder(tmp_path):
    (tmp_path / 'run').mkdir()
    with hold_workdir(str(tmp_path / 'run')):
        before = _snapshot(tmp_path / 'run')
        proc = run_python(quickstart(tmp_path / 'run', '--config.training.num_steps=4'), check=False)
        line = one_line_error(proc)
        assert f'--workdir {tmp_path / "run"} is in use by pid {os.getpid()} on host ' in line
        assert _snapshot(tmp_path / 'run') == before  # no config.json written by the refused run
        with pytest.raises(ConfigError, match='is in use by pid'):
            with hold_workdir(str(tmp_path / 'run')):
                pass
    assert not (tmp_path / 'run' / LOCK_FILE).exists()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    code = ('import sys, time; from gen_runtime.workdir_lock import hold_workdir; '
            'held = hold_workdir(sys.argv[1]); held.__enter__(); print("held", flush=True); time.sleep(120)')
    holder = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(ConfigError, match=f'in use by pid {holder.pid}'):
            with hold_workdir(str(tmp_path)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / LOCK_FILE).read_text().startswith(f'pid {holder.pid} ')  # left behind by the kill
    with hold_workdir(str(tmp_path)):
        assert (tmp_path / LOCK_FILE).read_text().startswith(f'pid {os.getpid()} ')


def test_a_workdir_of_another_family_says_so(tmp_path):
    from configs import common
    from gen_runtime.config import bind_workdir

    config = common.get_config()
    config.family = 'sde_jax'
    bind_workdir(config, str(tmp_path))
    (tmp_path / 'checkpoints' / '4').mkdir(parents=True)
    config.family = 'ldm_jax'
    with pytest.raises(ConfigError, match=r"holds a run of another family \('sde_jax'; this config is 'ldm_jax'\)"):
        bind_workdir(config, str(tmp_path))


def test_ctrl_c_is_recorded_like_sigterm_during_training():
    previous = signal.getsignal(signal.SIGINT)
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop.raised and stop.name == 'SIGINT'
    assert signal.getsignal(signal.SIGINT) is previous


# case: (config file, workdir under tmp_path, extra flags, expected message)
BAD_INPUTS = {
    'config syntax error': ('{tmp}/broken.py', 'run', [], 'the config file .*broken.py has a syntax error at line 1'),
    'workdir is a file': (None, 'a_file', [], 'is a file; pass a folder'),
    'workdir under a file': (None, 'a_file/run', [], 'is under a file; pass a folder'),
    'zero batch': (None, 'run', ['--config.training.batch_size=0'], 'training.batch_size=0 must be a positive'),
    'negative batch': (None, 'run', ['--config.training.batch_size=-4'], 'training.batch_size=-4 must be a positive'),
    'unknown predictor': (None, 'run', ['--config.sampling.predictor=eulr'], "sampling.predictor='eulr' is not one"),
    'no get_config': ('{tmp}/no_get_config.py', 'run', [], r'the config file .*no_get_config.py defines no get_config'),
    'unknown variant': ('configs/ldm/tiny.py:bogus', 'run', [],
                        "the config file raised ValueError: unknown tiny variant 'bogus'; choose one of ddpm"),
    'no samples': (None, 'run', ['--config.sampling.num_samples=0'], 'sampling.num_samples=0 must be positive'),
}


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_the_workdir_alone(tmp_path, case):
    import re

    (tmp_path / 'broken.py').write_text('def get_config(:\n')
    (tmp_path / 'a_file').write_text('not a folder\n')
    (tmp_path / 'no_get_config.py').write_text('learning_rate = 1e-3\n')
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'notes.txt').write_text('kept\n')
    before, files = _snapshot(tmp_path / 'run'), _snapshot(tmp_path)
    config, workdir, extra, message = BAD_INPUTS[case]
    command = quickstart(tmp_path / workdir, '--config.training.num_steps=4', *extra)
    if config:
        command[command.index('--config') + 1] = config.format(tmp=tmp_path)
    proc = run_python(command, check=False)
    assert re.search(message, one_line_error(proc)), proc.stderr[-2000:]
    assert _snapshot(tmp_path) == files
    after = _snapshot(tmp_path / 'run')
    assert after == before or (workdir == 'run' and after == {**before, 'config.json': after['config.json']})
