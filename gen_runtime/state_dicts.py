"""A PyTorch model's weights as `{name: array}`, read without torch, and their layouts turned into Flax's.

`read_state_dict(path)` reads
  a torch file (`.ckpt`, `.pt`, `.pth`, `.bin`, `.tar`) with gen_runtime.torch_archive: tensors only, other
      objects inert, the `state_dict` entry of a Lightning or training-script checkpoint if it has one;
  a `.npz` of arrays;
  a `.safetensors` file, parsed here (an 8-byte little-endian header size, a JSON header
      `{name: {dtype, shape, data_offsets}}`, then the raw bytes), bfloat16 and float8 tensors included;
  a Hugging Face / diffusers `save_pretrained` folder: the first of `FOLDER_FILES` in it, else all its
      `*.safetensors` files (a sharded checkpoint).
Names stay torch's (`encoder.down.0.block.1.conv1.weight`), arrays keep torch's layouts; each family's
importer maps the names onto its modules and turns the layouts with `conv_kernel` and `dense_kernel`.
"""

import glob
import json
import math
import os
import struct
from collections.abc import Mapping
from typing import Any

import ml_dtypes
import numpy as np

from gen_runtime.errors import CheckpointError
from gen_runtime.torch_archive import load_archive, named_tensors

TORCH_SUFFIXES = ('.ckpt', '.pt', '.pth', '.bin', '.tar')
# The weights file of a save_pretrained folder, in the order they are looked for: diffusers', then transformers'.
FOLDER_FILES = ('diffusion_pytorch_model.safetensors', 'model.safetensors', 'diffusion_pytorch_model.bin',
                'pytorch_model.bin')
_SAFETENSORS_DTYPES = {
    'BOOL': np.bool_, 'U8': np.uint8, 'I8': np.int8, 'U16': np.uint16, 'I16': np.int16, 'U32': np.uint32,
    'I32': np.int32, 'U64': np.uint64, 'I64': np.int64, 'F16': np.float16, 'BF16': ml_dtypes.bfloat16,
    'F32': np.float32, 'F64': np.float64, 'F8_E4M3': ml_dtypes.float8_e4m3fn, 'F8_E5M2': ml_dtypes.float8_e5m2,
}


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """`{name: array}` of a torch, `.npz` or `.safetensors` file, or of a save_pretrained folder."""
    if os.path.isdir(path):
        return _read_folder(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'{path} does not exist; give the path of a weights file or save_pretrained folder')
    if path.endswith('.safetensors'):
        return read_safetensors(path)
    if path.endswith('.npz'):
        return _read_npz(path)
    if path.endswith(TORCH_SUFFIXES):
        return torch_state_dict(load_archive(path, foreign_objects=True), path)
    raise CheckpointError(f'{path} is not a {", ".join(TORCH_SUFFIXES)}, .npz or .safetensors file; give a weights '
                          'file of one of these kinds (named so) or a save_pretrained folder')


def torch_state_dict(root: Any, source: str) -> dict[str, np.ndarray]:
    """`{name: array}` of a loaded torch file (`load_archive`): its `state_dict` entry if it has one (Lightning
    and many training scripts save one beside their bookkeeping), else every tensor in it."""
    if isinstance(root, dict) and isinstance(root.get('state_dict'), dict):
        root = root['state_dict']
    tensors = named_tensors(root)
    if not tensors:
        raise CheckpointError(f'{source} holds no tensors; give the checkpoint of a model (a state dict)')
    return tensors


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """`{name: array}` of a `.safetensors` file (writable arrays; `__metadata__` is left out)."""
    try:
        with open(path, 'rb') as f:
            data = bytearray(os.fstat(f.fileno()).st_size)
            f.readinto(data)
    except OSError as e:
        raise CheckpointError(f'{path} cannot be read ({e})') from e
    try:
        (size,) = struct.unpack('<Q', data[:8])
        header = json.loads(data[8:8 + size])
        body = memoryview(data)[8 + size:]
        tensors = {}
        for name, entry in header.items():
            if name == '__metadata__':
                continue
            if entry['dtype'] not in _SAFETENSORS_DTYPES:
                raise ValueError(f'tensor {name!r} has the dtype {entry["dtype"]!r}, which is not a number type')
            dtype = np.dtype(_SAFETENSORS_DTYPES[entry['dtype']])
            shape = tuple(int(n) for n in entry['shape'])
            start, end = (int(n) for n in entry['data_offsets'])
            if end - start != math.prod(shape) * dtype.itemsize or not 0 <= start <= end <= len(body):
                raise ValueError(f'tensor {name!r} has bytes {start}..{end} for {shape} {dtype} in {len(body)}')
            tensors[name] = np.frombuffer(body[start:end], dtype).reshape(shape)
        return tensors
    except (struct.error, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f'{path} is not a readable safetensors file ({type(e).__name__}: {e}); give a file that '
                              'safetensors.save_file or save_pretrained wrote') from e


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise CheckpointError(f'{path} is not a readable .npz of arrays ({e}); write it with numpy.savez') from e


def _read_folder(folder: str) -> dict[str, np.ndarray]:
    for name in FOLDER_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return read_state_dict(path)
    shards = sorted(glob.glob(os.path.join(folder, '*.safetensors')))
    if not shards:
        raise CheckpointError(f'{folder} has none of {", ".join(FOLDER_FILES)} and no *.safetensors file; give the '
                              'folder that save_pretrained wrote')
    tensors = {}
    for path in shards:
        tensors.update(read_safetensors(path))
    return tensors


def without_prefix(state_dict: Mapping[str, Any], prefix: str = 'module.') -> dict[str, np.ndarray]:
    """The state dict as arrays with `prefix` (DataParallel's `module.` by default) taken off the names."""
    return {k.removeprefix(prefix): np.asarray(v) for k, v in state_dict.items()}


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """A torch Conv2d weight (out, in, kh, kw) as a Flax Conv kernel (kh, kw, in, out)."""
    return np.transpose(weight, (2, 3, 1, 0))


def dense_kernel(weight: np.ndarray) -> np.ndarray:
    """A torch Linear weight (out, in), or a 1x1 convolution's (out, in, 1[, 1]), as a Flax Dense kernel (in, out)."""
    if weight.ndim > 2:
        weight = weight.reshape(weight.shape[:2])
    return weight.T
