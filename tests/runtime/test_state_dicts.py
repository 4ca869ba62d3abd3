"""gen_runtime.state_dicts: every kind of weights file to {name: array}, and the torch -> Flax layouts."""

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from gen_runtime.errors import CheckpointError
from gen_runtime.state_dicts import conv_kernel, dense_kernel, read_safetensors, read_state_dict, without_prefix

RNG = np.random.default_rng(0)
TENSORS = {'conv.weight': RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
           'conv.bias': RNG.standard_normal(4).astype(np.float32), 'steps': np.arange(5, dtype=np.int64)}


def _assert_tensors(out, expected=TENSORS):
    assert sorted(out) == sorted(expected)
    for name, value in expected.items():
        assert out[name].dtype == value.dtype and out[name].shape == value.shape, name
        np.testing.assert_array_equal(out[name], value)


def _write_safetensors(path, header, body=b''):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack('<Q', len(raw)) + raw + body)
    return str(path)


def test_npz(tmp_path):
    np.savez(tmp_path / 'w.npz', **TENSORS)
    _assert_tensors(read_state_dict(str(tmp_path / 'w.npz')))


def test_safetensors_written_by_hand_with_bfloat16_and_metadata(tmp_path):
    half = np.array([[1.5, -2.0, 0.25]], ml_dtypes.bfloat16)
    body = TENSORS['conv.bias'].tobytes() + half.tobytes()
    header = {'__metadata__': {'format': 'pt'},
              'conv.bias': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]},
              'half': {'dtype': 'BF16', 'shape': [1, 3], 'data_offsets': [16, 22]}}
    out = read_safetensors(_write_safetensors(tmp_path / 'w.safetensors', header, body))
    _assert_tensors(out, {'conv.bias': TENSORS['conv.bias'], 'half': half})
    out['half'][0, 0] = 3  # writable, as np.load's arrays are


def test_safetensors_written_by_the_safetensors_package(tmp_path):
    safetensors_numpy = pytest.importorskip('safetensors.numpy')
    safetensors_numpy.save_file(TENSORS, str(tmp_path / 'w.safetensors'))
    _assert_tensors(read_state_dict(str(tmp_path / 'w.safetensors')))


def test_torch_files_give_the_state_dict_of_a_checkpoint(tmp_path):
    torch = pytest.importorskip('torch')
    state_dict = {name: torch.from_numpy(value) for name, value in TENSORS.items()}
    torch.save(state_dict, tmp_path / 'plain.pth')
    torch.save({'state_dict': state_dict, 'global_step': 7, 'optimizer_states': [{'lr': 0.1}]}, tmp_path / 'l.ckpt')
    torch.save(state_dict, tmp_path / 'legacy.bin', _use_new_zipfile_serialization=False)
    for name in ('plain.pth', 'l.ckpt', 'legacy.bin'):
        _assert_tensors(read_state_dict(str(tmp_path / name)))


def test_folders_of_diffusers_transformers_and_sharded_checkpoints(tmp_path):
    safetensors_numpy = pytest.importorskip('safetensors.numpy')
    diffusers, hf, sharded = (tmp_path / name for name in ('diffusers', 'hf', 'sharded'))
    for folder in (diffusers, hf, sharded):
        folder.mkdir()
        (folder / 'config.json').write_text('{}')
    safetensors_numpy.save_file(TENSORS, str(diffusers / 'diffusion_pytorch_model.safetensors'))
    np.savez(diffusers / 'other.npz', unused=np.zeros(1))  # only the weights file is read
    safetensors_numpy.save_file(TENSORS, str(hf / 'model.safetensors'))
    names = sorted(TENSORS)
    safetensors_numpy.save_file({n: TENSORS[n] for n in names[:1]}, str(sharded / 'model-00001-of-00002.safetensors'))
    safetensors_numpy.save_file({n: TENSORS[n] for n in names[1:]}, str(sharded / 'model-00002-of-00002.safetensors'))
    for folder in (diffusers, hf, sharded):
        _assert_tensors(read_state_dict(str(folder)))


def test_torch_bin_in_a_folder(tmp_path):
    torch = pytest.importorskip('torch')
    torch.save({name: torch.from_numpy(value) for name, value in TENSORS.items()}, tmp_path / 'pytorch_model.bin')
    _assert_tensors(read_state_dict(str(tmp_path)))


def test_conv_and_dense_kernels_compute_what_torch_computes():
    torch = pytest.importorskip('torch')
    import jax

    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    weight = TENSORS['conv.weight']
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight), padding=1).numpy()
    ours = jax.lax.conv_general_dilated(x.transpose(0, 2, 3, 1), conv_kernel(weight), (1, 1), 'SAME',
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    np.testing.assert_allclose(np.asarray(ours), theirs.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    linear = RNG.standard_normal((6, 3)).astype(np.float32)
    h = x[:, :, 0, 0]
    np.testing.assert_allclose(h @ dense_kernel(linear), torch.nn.functional.linear(
        torch.from_numpy(h), torch.from_numpy(linear)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dense_kernel(linear[:, :, None, None]), linear.T)  # a 1x1 convolution
    np.testing.assert_array_equal(dense_kernel(linear[:, :, None]), linear.T)  # a kernel-1 conv1d


def test_without_prefix_takes_dataparallel_module_off():
    out = without_prefix({'module.a.weight': [1.0, 2.0], 'b': np.zeros(2)})
    assert sorted(out) == ['a.weight', 'b'] and isinstance(out['a.weight'], np.ndarray)


def test_a_missing_path_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match='none.safetensors does not exist'):
        read_state_dict(str(tmp_path / 'none.safetensors'))


def test_files_of_the_wrong_kind_are_refused(tmp_path):
    (tmp_path / 'notes.txt').write_text('weights')
    with pytest.raises(CheckpointError, match=r'notes.txt is not a .ckpt, .pt, .pth, .bin, .tar, .npz or '):
        read_state_dict(str(tmp_path / 'notes.txt'))
    for name in ('w.safetensors', 'w.npz', 'w.pth'):
        (tmp_path / name).write_bytes(b'not a weights file at all')
        with pytest.raises(CheckpointError, match=f'{name} is '):
            read_state_dict(str(tmp_path / name))


def test_corrupt_safetensors_headers_are_refused(tmp_path):
    cases = {'short': ({'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, b'\0' * 8),
             'string': ({'a': {'dtype': 'STR', 'shape': [1], 'data_offsets': [0, 1]}}, b'\0'),
             'no shape': ({'a': {'dtype': 'F32', 'data_offsets': [0, 4]}}, b'\0' * 4)}
    for name, (header, body) in cases.items():
        with pytest.raises(CheckpointError, match='is not a readable safetensors file'):
            read_safetensors(_write_safetensors(tmp_path / f'{name}.safetensors', header, body))


def test_a_torch_file_without_tensors_is_refused(tmp_path):
    torch = pytest.importorskip('torch')
    torch.save({'epoch': 3}, tmp_path / 'empty.pt')
    with pytest.raises(CheckpointError, match='empty.pt holds no tensors'):
        read_state_dict(str(tmp_path / 'empty.pt'))


def test_a_folder_without_weights_is_refused(tmp_path):
    (tmp_path / 'config.json').write_text('{}')
    with pytest.raises(CheckpointError, match='has none of diffusion_pytorch_model.safetensors, model.safetensors'):
        read_state_dict(str(tmp_path))
