"""Workdir binding and config loading; image grids."""

import json

import numpy as np
import pytest
from PIL import Image

from configs import common
from gen_runtime.config import bind_workdir, load_config_file, resolve_data_path
from gen_runtime.errors import ConfigError
from gen_runtime.images import make_grid, save_image_grid


def test_bind_workdir_writes_config_and_refuses_another_run(tmp_path):
    config = common.get_config()
    bind_workdir(config, str(tmp_path))
    assert json.loads((tmp_path / 'config.json').read_text())['optim']['learning_rate'] == 2e-4
    config.training.num_steps = 99  # training longer, or evaluating differently, is the same run
    config.eval.num_samples = 3
    bind_workdir(config, str(tmp_path))
    config.seed = 7  # no checkpoint yet (a start that failed): the new config replaces the old one
    bind_workdir(config, str(tmp_path))
    assert json.loads((tmp_path / 'config.json').read_text())['seed'] == 7
    (tmp_path / 'checkpoints' / '0').mkdir(parents=True)
    config.seed = 0
    with pytest.raises(ConfigError, match=r'holds a run of a different config \(seed: 7 there, 0 now\)'):
        bind_workdir(config, str(tmp_path))
    (tmp_path / 'config.json').write_text('{broken')
    with pytest.raises(ConfigError, match='is unreadable'):
        bind_workdir(config, str(tmp_path))


def test_load_config_file_and_data_paths(tmp_path, monkeypatch):
    config = load_config_file('configs/quickstart.py')
    assert config.family == 'sde_jax' and config.is_locked
    with pytest.raises(ConfigError, match='does not exist'):
        load_config_file(str(tmp_path / 'missing.py'))
    monkeypatch.setenv('JAXGEN_DATA_ROOT', str(tmp_path))
    assert resolve_data_path(config, 'mnist/mnist.npz') == str(tmp_path / 'mnist' / 'mnist.npz')
    assert resolve_data_path(config, '/abs/file.npz') == '/abs/file.npz'


def test_image_grid_layout_and_png(tmp_path):
    images = np.stack([np.full((4, 5, 1), v, np.float32) for v in (0.0, 0.5, 1.0)])
    grid = make_grid(images, ncols=2, padding=1)
    assert grid.shape == (2 * (4 + 1) + 1, 2 * (5 + 1) + 1, 1)
    assert grid[1, 1, 0] == 0 and grid[1, 7, 0] == 128 and grid[6, 1, 0] == 255
    path = save_image_grid(images, str(tmp_path / 'sub' / 'grid.png'), ncols=2)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), make_grid(images, ncols=2)[..., 0])


def test_a_run_of_an_earlier_version_stays_the_same_run(tmp_path, caplog):
    """A field added since (at its default) or removed since is set aside, with a warning that names it; an added
    field away from its default is another run."""
    config = common.get_config()
    config.unlock()
    saved = json.loads(config.to_json_best_effort())
    del saved['optim']['ema_warmup']  # as if the saved run predates the field
    saved['optim']['old_knob'] = 3  # and had one this version dropped
    (tmp_path / 'config.json').write_text(json.dumps(saved))
    (tmp_path / 'checkpoints' / '0').mkdir(parents=True)
    defaults = {'optim.ema_warmup': False}
    bind_workdir(config, str(tmp_path), defaults=defaults)
    assert 'new fields at their defaults: optim.ema_warmup; fields no longer read: optim.old_knob' in caplog.text
    (tmp_path / 'config.json').write_text(json.dumps(saved))
    config.optim.ema_warmup = True
    with pytest.raises(ConfigError, match=r'different config \(optim.ema_warmup: None there, True now\)'):
        bind_workdir(config, str(tmp_path), defaults=defaults)
    with pytest.raises(ConfigError, match=r'different config'):  # without defaults: any change is another run
        bind_workdir(common.get_config(), str(tmp_path))
