"""Shared fixtures: the real-data root and subprocess runs with several simulated devices; the longest tests
first."""

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


# The longest self-contained tests (no module-scoped fixture; seconds in CI on two shared cores, 2026-12):
# collected first, in this order. `--dist worksteal` hands each worker a contiguous half of the collection and
# lets an idle worker steal from the end of the other's queue, so these start at once, and what is left at the
# end of the run is short tests, instead of one worker finishing a 4-minute test alone while the other idles.
SLOW_FIRST = (
    'tests/runtime/test_device_check.py::test_device_check_runs_as_the_gpu_image_is',  # 272
    'tests/sde/test_imported_end_to_end.py::',  # 117
    'tests/runtime/test_tutorials.py::test_tutorial_runs_in_fast_mode',  # 72-96 each
    'tests/ldm/test_end_to_end.py::test_latent_diffusion_end_to_end',  # 86
    'tests/runtime/test_preemption.py::test_sigkill_then_same_command_resumes_to_identical_parameters',  # 63
    'tests/ldm/test_end_to_end_pixel.py::',  # 59
    'tests/runtime/test_run_layer.py::test_disk_full_is_one_line_keeps_the_saved_checkpoint_and_the_same_command_',
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Moves SLOW_FIRST to the front (a stable sort: everything else keeps its order)."""

    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)
