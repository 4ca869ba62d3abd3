"""Data parallelism: 1 device, 8 simulated devices and 2 processes give the same training run."""

import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, python_env, run_python

TOY = 'tests/runtime/toy_regression.py'


def toy_run(tmp_path, name, devices=1, steps=40, extra=()):
    out = tmp_path / f'{name}.npz'
    run_python([TOY, '--workdir', str(tmp_path / name), '--out', str(out), '--num_steps', str(steps), *extra],
               devices=devices)
    return dict(np.load(out))


def assert_params_close(a, b, atol):
    keys = [k for k in a if k.startswith('[')]
    assert keys and keys == [k for k in b if k.startswith('[')]
    for k in keys:
        np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=0, err_msg=k)


def free_port():
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def test_one_and_eight_devices_train_the_same_parameters(tmp_path):
    one = toy_run(tmp_path, 'one', devices=1)
    eight = toy_run(tmp_path, 'eight', devices=8)
    assert int(one['devices']) == 1 and int(eight['devices']) == 8
    assert_params_close(one, eight, atol=2e-5)


@pytest.mark.slow
def test_two_processes_train_together_and_agree(tmp_path):
    steps = 4
    port = free_port()
    workdir = tmp_path / 'shared_workdir'  # processes of one run share the workdir (checkpoints)
    env = python_env(1)
    procs = [subprocess.Popen(
        [sys.executable, TOY, '--workdir', str(workdir), '--out', str(tmp_path / f'p{i}.npz'),
         '--num_steps', str(steps), '--coordinator', f'localhost:{port}', '--num_processes', '2',
         '--process_id', str(i)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    p0, p1 = (dict(np.load(tmp_path / f'p{i}.npz')) for i in range(2))
    assert int(p0['processes']) == 2 and int(p0['devices']) == 2
    assert_params_close(p0, p1, atol=0.0)
    single = toy_run(tmp_path, 'single', devices=1, steps=steps)
    assert_params_close(p0, single, atol=2e-5)
