"""gen_runtime.outputs: the files every family's modes write."""

import json

import numpy as np
from PIL import Image

from gen_runtime.outputs import write_json, write_samples
from gen_runtime.pytree import count_params


def test_write_samples_writes_the_grid_and_rounded_clipped_uint8_images(tmp_path):
    images = np.array([0.0, 0.5 / 255, 1.49 / 255, 1.0, 1.2, -0.3], np.float32).reshape(1, 2, 3, 1)
    images = np.concatenate([images, np.full_like(images, 0.5)])
    written = write_samples(str(tmp_path), images, labels=np.array([3, 7]))
    assert written == {'grid': str(tmp_path / 'samples.png'), 'npz': str(tmp_path / 'samples.npz')}
    saved = np.load(written['npz'])
    assert saved['images'].dtype == np.uint8
    assert saved['images'][0].ravel().tolist() == [0, 1, 1, 255, 255, 0]  # half up, clipped into [0, 255]
    assert saved['images'][1].ravel().tolist() == [128] * 6 and saved['labels'].tolist() == [3, 7]
    assert Image.open(written['grid']).size[0] >= 3


def test_write_json_is_atomic_and_echoes_one_line(tmp_path, capsys):
    path = tmp_path / 'r.json'
    write_json(str(path), {'b': 1, 'a': [2.5]}, echo=True)
    assert json.loads(path.read_text()) == {'a': [2.5], 'b': 1}
    assert json.loads(capsys.readouterr().out) == {'b': 1, 'a': [2.5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['r.json']


def test_count_params_counts_every_scalar():
    assert count_params({'a': np.zeros((3, 4)), 'b': [np.zeros(5), np.zeros(())]}) == 18
