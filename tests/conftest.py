"""Shared fixtures: the real-data root and subprocess runs with several simulated devices; the longest tests
first; one XLA compilation cache for the whole session; one OpenMP thread per process."""

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gen_runtime.run_once import CPU_ONCE_OPTIONS
from tests.main_forks import MainForks

DATA_ENV = 'JAXGEN_DATA_ROOT'
REPO = Path(__file__).resolve().parent.parent
# jax's persistent compilation cache, one folder per test session (made by the controlling process, inherited by
# the xdist workers, every main.py subprocess and the notebooks' kernels): the same computation compiled again
# by another test or process (the quickstart's train step in a dozen subprocess runs, say) is read back instead
# of compiled. Only compiles of a second or more are cached (jax's default: caching every compile made thousands
# of entries, and jax's size check lists the whole folder on every write, which cost more than it saved); a size
# limit turns on jax's file lock around reads and writes, so concurrent processes never read a half-written
# entry. The results are those of a fresh compile (the key is the computation, jax/XLA versions and flags); a
# session that sets JAX_COMPILATION_CACHE_DIR itself keeps its own.
XLA_CACHE_ENV = {'JAX_COMPILATION_CACHE_DIR': '', 'JAX_COMPILATION_CACHE_MAX_SIZE': str(8 << 30)}
_CACHE_KEY = pytest.StashKey[str]()
# XLA's flags for the tests' subprocesses (main.py runs, the notebooks' kernels, the scripts): gen_runtime.run_once's
# CPU_ONCE_OPTIONS as flags, LLVM's optimisation of XLA:CPU's generated code at level 0. Those runs train tiny
# networks a few steps, where compiling is most of the time, and level 0 halves it (the cascade's end to end: 71 s ->
# 42 s). XLA's graph passes and the library kernels behind convolutions and matmuls are the same at every level, but
# the rounding of the generated code is not (at level 0 tests/sde/test_ode_accuracy's VE error moved from below
# scipy's to 7.2e-6 against 6.6e-6, and a GAZSL run trained to another accuracy), and long computations run slower. So
# the tests that compare numbers to tight tolerances, train to a measured bound or compute for long run in the pytest
# process at the default level. At level 0 XLA:CPU's older (elemental) fusion emitters compile in half the time of its
# MLIR fusion emitters (a tiny DDPM UNet's train step: 7.2 s -> 3.0 s; scripts/exercises_gpu.sh ldm at TINY: 157 s ->
# 92 s), and the code they generate runs no slower there. (At the default level it is the other way round: 22.6 s ->
# 29.5 s.)
XLA_TEST_FLAGS = ' '.join(f'--{name}={str(value).lower()}' for name, value in CPU_ONCE_OPTIONS.items())


def xla_flags(devices: int = 1) -> str:
    """XLA_FLAGS for a test's subprocess: the test flags and `devices` simulated CPU devices."""
    return f'{XLA_TEST_FLAGS} --xla_force_host_platform_device_count={devices}'


def python_env(devices: int = 1) -> dict[str, str]:
    """The environment of a test's `python` subprocess run from the repo root: this one, on the CPU with
    `devices` simulated devices and the test flags, the repo importable."""
    return {**os.environ, 'XLA_FLAGS': xla_flags(devices), 'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(REPO)}


# One OpenMP (and OpenBLAS) thread per test process, for PyTorch and numpy: the two xdist workers keep both cores
# busy, and there a process's two OpenMP threads wait on each other for a core after every operation (a tiny
# PyTorch U-Net's 10 sampling steps: 4.2 s on two threads, 0.045 s on one). XLA's thread pool does not read it.
# Set in the controlling process before any test imports torch; the workers and every subprocess inherit it.
THREAD_ENV = {'OMP_NUM_THREADS': '1'}


def pytest_configure(config: pytest.Config) -> None:
    for name, value in THREAD_ENV.items():
        os.environ.setdefault(name, value)
    if 'JAX_COMPILATION_CACHE_DIR' in os.environ:  # a worker (the controller set it) or the user's own
        return
    config.stash[_CACHE_KEY] = folder = tempfile.mkdtemp(prefix='jaxgen-tests-xla-cache-')
    os.environ.update({**XLA_CACHE_ENV, 'JAX_COMPILATION_CACHE_DIR': folder})


def pytest_unconfigure(config: pytest.Config) -> None:
    if main_forks.cache_info().currsize:
        main_forks().close()
    folder = config.stash.get(_CACHE_KEY, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        for name in XLA_CACHE_ENV:
            os.environ.pop(name, None)



@pytest.fixture(autouse=True)
def _fast_compile(request: pytest.FixtureRequest):
    """For a test marked `fast_compile`: the computations it compiles in this process are compiled with most of
    XLA's optimisations off (jax_disable_most_optimizations: LLVM at level 0, as XLA_TEST_FLAGS give the tests'
    subprocesses), then jax's caches are cleared, so no later test runs what was compiled so. For end-to-end
    tests that train and sample tiny networks a few steps and check shapes, ranges and sums: compiling is most of
    their time, and level 0 takes about 40% off it (the cascade's end to end: 66 s -> 39 s)."""
    if request.node.get_closest_marker('fast_compile') is None:
        yield
        return
    import jax

    jax.config.update('jax_disable_most_optimizations', True)
    try:
        yield
    finally:
        jax.config.update('jax_disable_most_optimizations', False)
        jax.clear_caches()


def without_xla_cache(env: dict[str, str]) -> dict[str, str]:
    """`env` without the session's compilation cache (for a process whose file writes are made to fail)."""
    return {k: v for k, v in env.items() if k not in XLA_CACHE_ENV}


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


@functools.cache
def main_forks() -> MainForks:
    """This test process's main.py fork server (tests/main_forks.py), started at its first main.py run."""
    return MainForks(REPO, python_env())


def run_python(args: list[str], *, devices: int = 1, env: dict | None = None, timeout: float = 600,
               check: bool = True) -> subprocess.CompletedProcess:
    """Runs `python <args>` from the repo root with `devices` simulated CPU devices: main.py forked from this
    process's fork server where it runs there as in a fresh process (tests/main_forks.py), else a new process."""
    full_env = {**python_env(devices), **(env or {})}
    if main_forks().serves(args, full_env):
        proc = main_forks().run(args, full_env, timeout)
    else:
        proc = subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True,
                              timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'python {" ".join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}')
    return proc


# The longest self-contained tests (no module-scoped fixture; seconds in CI on two cores, 2026-12-05): collected
# first, in this order. `--dist worksteal` hands each worker a contiguous half of the collection and lets an idle
# worker steal from the end of the other's queue, so these start at once, and what is left at the end of the run
# is short tests, instead of one worker finishing a 2-minute test alone while the other idles.
SLOW_FIRST = (
    'tests/runtime/test_exercises_gpu.py::test_the_ldm_part_runs_both_stages_and_writes_their_table',  # 122
    'tests/runtime/test_tutorials.py::test_tutorial_runs_in_fast_mode',  # 36-79 each
    'tests/runtime/test_device_check.py::test_device_check_runs_as_the_gpu_image_is',  # 77
    'tests/sde/test_imported_end_to_end.py::',  # 71
    'tests/runtime/test_exercises_gpu.py::test_a_part_trains_evaluates_and_writes_its_table',  # 34-52
    'tests/runtime/test_benchmarks.py::test_every_tiny_benchmark_ran_checked_and_recorded',  # 66
    'tests/ldm/test_end_to_end.py::test_latent_diffusion_end_to_end',  # 51
    'tests/runtime/test_preemption.py::test_sigkill_then_same_command_resumes_to_identical_parameters',  # 44
    'tests/ldm/test_cascade.py::test_a_two_stage_cascade_trains_and_samples_end_to_end',  # 41
    'tests/ldm/test_end_to_end_pixel.py::',  # 36
    'tests/runtime/test_run_layer.py::test_disk_full_is_one_line_keeps_the_saved_checkpoint_and_the_same_command_',
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Moves SLOW_FIRST to the front (a stable sort: everything else keeps its order)."""

    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)
