"""tests/main_forks.py: a main.py run forked from the server is what a fresh `python main.py` gives (exit code,
stdout, stderr, the environment's settings, device count included), and what would differ runs fresh."""

import subprocess
import sys

from tests.conftest import REPO, main_forks, python_env
from tests.runtime.test_main import quickstart


def _fresh(args, env):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_a_forked_run_is_a_fresh_process_run(tmp_path):
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


def test_a_run_past_its_timeout_is_ended(tmp_path):
    proc = main_forks().run(quickstart(tmp_path / 'run', '--config.training.num_steps=100000'), timeout=1)
    assert proc.returncode == -14  # SIGALRM
