"""Shared fixtures: the real-data root and subprocess runs with several simulated devices."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA_ENV = 'JAXGEN_DATA_ROOT'
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def data_root() -> Path:
    """The shared real-data folder ($JAXGEN_DATA_ROOT). Skips without it, fails under CI=true."""
    root = os.environ.get(DATA_ENV, '')
    if not root or not os.path.isdir(root):
        reason = (f'{DATA_ENV} is {"unset" if not root else f"{root!r}, not a folder"}; point it at the '
                  'shared data folder (../shared/data) to run tests on real data')
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(f'under CI the real data must be present: {reason}')
        pytest.skip(reason)
    return Path(root)


def run_python(args: list[str], *, devices: int = 1, env: dict | None = None, timeout: float = 600,
               check: bool = True) -> subprocess.CompletedProcess:
    """Runs `python <args>` from the repo root with `devices` simulated CPU devices."""
    full_env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}',
                'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(REPO), **(env or {})}
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'python {" ".join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}')
    return proc
