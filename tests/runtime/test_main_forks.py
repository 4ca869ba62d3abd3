"""tests/main_forks.py and tests/fork_python.py: a main.py run forked from the server is what a fresh `python
main.py` gives (exit code, stdout, stderr, the environment's settings, device count included), what would differ
runs fresh, and a script's `python` passes signals on to the forked run."""

import signal
import subprocess
import sys

from tests.conftest import REPO, main_forks, python_env
from tests.runtime.test_main import assert_trees_equal, checkpoint_params, quickstart
from tests.runtime.test_preemption import wait_for_checkpoint


def _fresh(args, env):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_a_forked_run_trains_what_a_fresh_process_trains(tmp_path):
    steps = ['--config.training.num_steps=4', '--config.training.checkpoint_every=4']
    env = python_env()
    forked = main_forks().run(quickstart(tmp_path / 'forked', *steps), env)
    fresh = _fresh(quickstart(tmp_path / 'fresh', *steps), env)
    assert forked.returncode == fresh.returncode == 0, forked.stderr[-3000:] + fresh.stderr[-3000:]
    # bit for bit: the same XLA flags (the library's own, set by importing gen_runtime, included) and programs
    assert_trees_equal(checkpoint_params(tmp_path / 'forked', 4), checkpoint_params(tmp_path / 'fresh', 4))


def test_a_refused_forked_run_is_a_refused_fresh_process_run(tmp_path):
    args = quickstart(tmp_path / 'run', '--config.training.batch_size=12', '--config.training.num_steps=4')
    env = python_env(devices=3)
    forks = main_forks()
    assert forks.serves(args, env)
    forked, fresh = forks.run(args, env), _fresh(args, env)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 2 and 'is not divisible by the 3 devices' in forked.stderr
    assert not (tmp_path / 'run').exists()


def test_what_is_read_at_import_or_not_main_py_runs_fresh():
    forks, env = main_forks(), python_env()
    assert not forks.serves(['main.py'], {**env, 'JAX_ENABLE_X64': '1'})
    assert not forks.serves(['main.py'], {k: v for k, v in env.items() if k != 'JAX_COMPILATION_CACHE_DIR'})
    assert not forks.serves(['-c', 'print(1)'], env)
    assert forks.serves(['main.py'], {**env, 'JAXGEN_DATA_ROOT': '/elsewhere'})  # read when a mode runs
    assert forks.serves(['main.py'], {**env, 'PYTHON': '/a/script/s/choice', 'PYTHONUNBUFFERED': '1'})


def test_a_run_past_its_timeout_is_ended(tmp_path):
    proc = main_forks().run(quickstart(tmp_path / 'run', '--config.training.num_steps=100000'), timeout=1)
    assert proc.returncode == -14  # SIGALRM


def test_a_scripts_python_forks_main_py_and_passes_signals_on(tmp_path):
    forks, env = main_forks(), python_env()
    args = quickstart(tmp_path, '--config.training.num_steps=2000', '--config.training.checkpoint_every=20')
    proc = subprocess.Popen([forks.python, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for_checkpoint(proc, tmp_path)
    with open(f'/proc/{proc.pid}/cmdline') as f:
        assert 'fork_python.py' in f.read()  # the client waits, main.py runs in the server's child
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143 and 'stopped by SIGTERM at step' in stderr, stderr[-3000:]
    fresh = subprocess.run([forks.python, '-c', 'import sys; print(sys.argv[1:])', 'a'], env=env, capture_output=True,
                           text=True, check=True)
    assert fresh.stdout == "['a']\n"
