"""main.py end to end on the quickstart: one-line errors, workdirs of another run, device counts."""

import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.conftest import run_python
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


def test_batch_that_does_not_split_over_devices_is_refused(tmp_path):
    proc = run_python(quickstart(tmp_path, '--config.training.batch_size=12', '--config.training.num_steps=4'),
                      devices=8, check=False)
    assert 'training.batch_size=12 is not divisible by the 8 devices' in one_line_error(proc)


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


def test_help_lists_every_familys_modes_without_importing_a_family():
    """--help reads each family's MODES from its modes.py (gen_runtime.modes.mode_summaries): the same names and
    summaries as the imported tables, and neither jax nor a family is loaded to print them."""
    from gen_runtime.modes import family_modes, mode_summaries

    for family in ('sde_jax', 'ldm_jax', 'zsl_jax'):
        assert mode_summaries(family) == {name: mode.summary for name, mode in family_modes(family).items()}
    script = ("import sys\nsys.argv = ['main.py', '--help']\nimport main\nprint(main.flags.FLAGS['mode'].help)\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'sde_jax', 'ldm_jax', 'zsl_jax'}))")
    out = run_python(['-c', script]).stdout
    assert out.strip().endswith('[]'), out
    assert 'ldm_jax:\n  preprocess: resize a folder of images' in out and '  colorize: colour grey-level' in out
