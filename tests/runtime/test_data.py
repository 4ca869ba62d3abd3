"""The input pipeline: step-indexed batches, whole-set evaluation, every source on real files."""

import tarfile

import numpy as np
import pytest
from PIL import Image

from configs import common
from gen_runtime import data
from gen_runtime.errors import ConfigError, DataError


def config_for(**fields):
    config = common.get_config()
    config.data.update(fields)
    return config


def test_batches_visit_every_example_once_per_epoch_and_depend_only_on_step():
    n, b = 50, 8
    seen = np.concatenate([data.batch_indices(n, b, step, seed=3) for step in range(25)])  # 200 = 4 epochs
    for epoch in range(4):
        assert sorted(seen[epoch * n:(epoch + 1) * n]) == list(range(n))
    assert not np.array_equal(seen[:n], seen[n:2 * n])  # reshuffled each epoch
    np.testing.assert_array_equal(data.batch_indices(n, b, 17, seed=3), seen[17 * b:18 * b])
    assert not np.array_equal(data.batch_indices(n, b, 0, seed=4), seen[:b])


def test_eval_batches_cover_the_whole_set_with_static_shapes():
    ds = data.ArrayDataset({'x': np.arange(10)})
    batches = list(data.eval_batches(ds, 4))
    assert [len(b['x']) for b in batches] == [4, 4, 4]
    real = np.concatenate([b['x'][b['mask']] for b in batches])
    np.testing.assert_array_equal(real, np.arange(10))


def test_dequantisation_fills_each_bin_and_plain_scaling_hits_the_ends():
    batch = {'image': np.array([0, 255] * 500, np.uint8).reshape(1000, 1, 1, 1)}
    rng = np.random.default_rng(0)
    plain = data.image_preprocessor(config_for().data, 256)(batch, rng)['image']
    assert plain.min() == 0.0 and plain.max() == 1.0
    deq = data.image_preprocessor(config_for(dequantize=True).data, 256)(batch, rng)['image'].ravel()
    low, high = deq[::2], deq[1::2]
    assert low.min() >= 0 and low.max() < 1 / 256 and high.min() >= 255 / 256 and high.max() < 1
    assert low.std() > 0.25 / 256  # uniform within the bin, not a constant offset


def test_the_digits_table_is_what_load_digits_reads(monkeypatch):
    from sklearn.datasets import load_digits

    digits = load_digits()
    table = data.digits_table()
    np.testing.assert_array_equal(table[:, :64].reshape(-1, 8, 8), digits.images)
    np.testing.assert_array_equal(table[:, 64], digits.target)
    # a scikit-learn that keeps the table elsewhere: load_digits itself
    monkeypatch.setattr(data.importlib.util, 'find_spec', lambda name: None)
    np.testing.assert_array_equal(data.digits_table(), table)


def test_digits_source_needs_no_download():
    train = data.load_dataset(config_for(source='digits'), 'train')
    test = data.load_dataset(config_for(source='digits'), 'test')
    assert len(train) == 1500 and len(test) == 297 and train.levels == 17
    assert train.gather(np.arange(3))['image'].shape == (3, 8, 8, 1)


def write_png(path_or_file, color, size=(12, 10)):
    Image.fromarray(np.full((*size, 3), color, np.uint8)).save(path_or_file, format='PNG')


def test_image_folder_with_split_and_class_folders_and_as_a_tar(tmp_path):
    for split in ('train', 'test'):
        for label, cls in enumerate(('cat', 'dog')):
            (tmp_path / 'imgs' / split / cls).mkdir(parents=True)
            for i in range(3):
                write_png(tmp_path / 'imgs' / split / cls / f'{i}.png', 40 + 100 * label)
    config = config_for(source='image_folder', path=str(tmp_path / 'imgs'), image_size=8, num_channels=3)
    ds = data.load_dataset(config, 'train')
    batch = ds.gather(np.arange(len(ds)))
    assert batch['image'].shape == (6, 8, 8, 3) and batch['image'].dtype == np.uint8
    np.testing.assert_array_equal(batch['label'], [0, 0, 0, 1, 1, 1])
    assert np.all(batch['image'][batch['label'] == 1] == 140)

    with tarfile.open(tmp_path / 'imgs.tgz', 'w:gz') as tar:
        tar.add(tmp_path / 'imgs', arcname='.')
    from_tar = data.load_dataset(config_for(source='image_folder', path=str(tmp_path / 'imgs.tgz'),
                                            image_size=8, num_channels=3), 'test')
    np.testing.assert_array_equal(from_tar.gather(np.arange(6))['image'], batch['image'])

    # data.max_examples decodes only the first images (name order), labels still counted over every class;
    # a tar rewritten in place is read again, not taken from the process's cache.
    config.data.max_examples = 4
    first = data.load_dataset(config, 'train')
    assert len(first) == 4
    np.testing.assert_array_equal(first.gather(np.arange(4))['label'], [0, 0, 0, 1])
    (tmp_path / 'imgs' / 'test' / 'dog' / '0.png').unlink()
    with tarfile.open(tmp_path / 'imgs.tgz', 'w:gz') as tar:
        tar.add(tmp_path / 'imgs', arcname='.')
    assert len(data.load_dataset(config_for(source='image_folder', path=str(tmp_path / 'imgs.tgz'),
                                            image_size=8, num_channels=3), 'test')) == 5


def test_missing_and_malformed_data_get_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match='npz file .*missing.npz does not exist'):
        data.load_dataset(config_for(source='npz', path=str(tmp_path / 'missing.npz')), 'train')
    np.savez(tmp_path / 'wrong.npz', images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"has no array 'x_train' \(it has \['images'\]\)"):
        data.load_dataset(config_for(source='npz', path=str(tmp_path / 'wrong.npz')), 'train')
    for name, images, message in (
            ('floats', np.full((2, 4, 4), 0.5, np.float32), r'x_train is float32; images must be integers 0\.\.255'),
            ('flat', np.zeros((2, 16), np.uint8), r'x_train has shape \(2, 16\); images are \(N, H, W\)'),
            ('wide', np.full((2, 4, 4), 1000, np.int32), r'x_train holds values 1000\.\.1000; images must be 0')):
        np.savez(tmp_path / f'{name}.npz', x_train=images)
        with pytest.raises(DataError, match=message):  # never a silent rescaling
            data.load_dataset(config_for(source='npz', path=str(tmp_path / f'{name}.npz')), 'train')
    monkeypatch.delenv('JAXGEN_DATA_ROOT', raising=False)
    with pytest.raises(ConfigError, match='relative and no data root is set; set JAXGEN_DATA_ROOT'):
        data.load_dataset(config_for(source='npz', path='no/such/relative.npz'), 'train')
    with pytest.raises(ConfigError, match="data.source='hdf5' is not one of"):
        data.load_dataset(config_for(source='hdf5'), 'train')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='no images'):
        data.load_dataset(config_for(source='image_folder', path=str(tmp_path / 'empty')), 'train')
    (tmp_path / 'broken').mkdir()
    (tmp_path / 'broken' / 'a.png').write_bytes(b'not a png')
    with pytest.raises(DataError, match=r'broken/a\.png could not be decoded .*; remove or replace it$'):
        data.load_dataset(config_for(source='image_folder', path=str(tmp_path / 'broken')), 'train')


@pytest.mark.data
def test_npz_source_reads_the_real_mnist(data_root, monkeypatch):
    monkeypatch.setenv('JAXGEN_DATA_ROOT', str(data_root))
    config = config_for(source='npz', path='mnist/mnist.npz')
    train, test = data.load_dataset(config, 'train'), data.load_dataset(config, 'test')
    assert len(train) == 60000 and len(test) == 10000
    batch = data.TrainBatches(train, 32, seed=0, preprocess=data.image_preprocessor(config.data, 256)).host_batch(0)
    assert batch['image'].shape == (32, 28, 28, 1) and batch['image'].dtype == np.float32
    assert 0.0 <= batch['image'].min() and batch['image'].max() <= 1.0 and batch['image'].max() > 0.9
    assert set(np.unique(test.gather(np.arange(10000))['label'])) == set(range(10))


@pytest.mark.data
def test_flat_image_folder_reads_the_real_celebahq_faces(data_root):
    config = config_for(source='image_folder', path=str(data_root / 'celebahq_samples'), image_size=32,
                        num_channels=3)
    faces = data.load_dataset(config, 'train')
    assert len(faces) == 56
    batch = faces.gather(np.arange(56))
    assert batch['image'].shape == (56, 32, 32, 3) and np.all(batch['label'] == 0)
    assert 40 < batch['image'].mean() < 220


def test_tfds_source_runs_on_mock_data():
    import tensorflow_datasets as tfds

    config = config_for(source='tfds', name='mnist', image_size=0)
    with tfds.testing.mock_data(num_examples=20):
        ds = data.load_dataset(config, 'train')
        assert len(ds) == 20
        preprocess = data.image_preprocessor(config.data, 256)
        batch = data.TrainBatches(ds, 8, seed=0, preprocess=preprocess).host_batches(0, 2)
    assert batch['image'].shape == (2, 8, 28, 28, 1) and batch['label'].shape == (2, 8)
    assert batch['image'].dtype == np.float32
    config.data.max_examples = 12  # applies to tfds as to every source (it was ignored there)
    with tfds.testing.mock_data(num_examples=20):
        assert len(data.load_dataset(config, 'train')) == 12


def test_tfds_data_set_that_cannot_be_opened_says_what_to_do(tmp_path):
    config = config_for(source='tfds', name='no_such_data_set', tfds_dir=str(tmp_path))
    message = "tfds data set 'no_such_data_set' split 'train' could not be opened.*tfds build"
    with pytest.raises(DataError, match=message):
        data.load_dataset(config, 'train')
