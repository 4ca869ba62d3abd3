"""gen_runtime.torch_archive on hand-built pickles: numpy values are read in both numpy spellings, nothing else
runs.

torch.save writes protocol-2 pickles, in which a numpy scalar is `<multiarray>.scalar(numpy.dtype(code, False,
True) + BUILD state, _codecs.encode(latin1 text, 'latin1'))` and an array `<multiarray>._reconstruct(
numpy.ndarray, (0,), b'b')` + BUILD state; `<multiarray>` is `numpy.core.multiarray` under numpy 1.x and
`numpy._core.multiarray` under numpy 2.x. The pickles here are what `pickle.dumps(value, protocol=2)` writes,
with the module name set to each spelling, inside a zip archive (torch >= 1.6) and a legacy torch.save file.
"""

import pickle
import pickletools
import re
import zipfile

import numpy as np
import pytest

from gen_runtime.errors import CheckpointError
from gen_runtime.torch_archive import LEGACY_MAGIC, ForeignObject, load_archive

SPELLINGS = {'numpy1': b'numpy.core.multiarray', 'numpy2': b'numpy._core.multiarray'}
FORMATS = ('zip', 'legacy')


def numpy_pickle(value, spelling: str) -> bytes:
    """`pickle.dumps(value, protocol=2)` as the numpy of `spelling` writes it."""
    data = pickle.dumps(value, protocol=2)
    for other in SPELLINGS.values():
        data = data.replace(b'c' + other + b'\n', b'c' + SPELLINGS[spelling] + b'\n')
    return data


def write(tmp_path, data: bytes, fmt: str) -> str:
    """A torch.save-like file whose object pickle is `data` (no tensors)."""
    path = tmp_path / f'{fmt}.pth'
    if fmt == 'zip':
        with zipfile.ZipFile(path, 'w') as archive:
            archive.writestr('archive/data.pkl', data)
            archive.writestr('archive/version', '3\n')
    else:
        header = b''.join(pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, 1001, {'little_endian': True}))
        path.write_bytes(header + data + pickle.dumps([], protocol=2))
    return str(path)


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('spelling', sorted(SPELLINGS))
def test_numpy_scalars_and_dtypes_are_read_in_both_spellings(tmp_path, spelling, fmt):
    lr = 2e-4 * np.minimum(3 / 5000, 1.0)  # as score_sde_pytorch's warm-up leaves it in the optimizer state
    value = {'param_groups': [{'lr': lr, 'betas': (0.9, 0.999)}], 'f32': np.float32(1.5), 'i64': np.int64(-7),
             'u8': np.uint8(200), 'flag': np.bool_(True), 'c64': np.complex64(1 - 2j), 'half': np.float16(0.1),
             'dtype': np.dtype('float32'), 'big': np.dtype('>f8'), 'text': b'\x00\xff bytes'}
    data = numpy_pickle(value, spelling)
    if spelling == 'numpy1':
        assert b'cnumpy.core.multiarray\nscalar\n' in data and b'numpy._core' not in data
    else:
        assert b'cnumpy._core.multiarray\nscalar\n' in data and b'numpy.core' not in data
    assert b'c_codecs\nencode\n' in data and b'cnumpy\ndtype\n' in data
    out = load_archive(write(tmp_path, data, fmt))
    read_lr = out['param_groups'][0]['lr']
    assert type(read_lr) is np.float64 and read_lr == lr
    assert out['param_groups'][0]['betas'] == (0.9, 0.999)
    for key in ('f32', 'i64', 'u8', 'flag', 'c64', 'half'):
        assert type(out[key]) is type(value[key]) and out[key] == value[key], key
    assert out['dtype'] == np.dtype('float32') and out['big'] == np.dtype('>f8')
    assert out['text'] == b'\x00\xff bytes'


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('spelling', sorted(SPELLINGS))
def test_numpy_arrays_of_numbers_are_read_in_both_spellings(tmp_path, spelling, fmt):
    """E.g. `np.random.get_state()` that a training script saved with its checkpoint."""
    rng_state = np.random.RandomState(3).get_state()
    value = {'rng': rng_state, 'big_endian': np.arange(6, dtype='>i4').reshape(2, 3),
             'fortran': np.asfortranarray(np.arange(6.0).reshape(2, 3)), 'empty': np.zeros((0, 4), np.float32),
             'zero_d': np.array(2.5)}
    data = numpy_pickle(value, spelling)
    assert SPELLINGS[spelling] + b'\n_reconstruct\n' in data
    out = load_archive(write(tmp_path, data, fmt))
    assert out['rng'][0] == 'MT19937' and out['rng'][2:] == rng_state[2:]
    assert type(out['rng'][1]) is np.ndarray and out['rng'][1].dtype == np.uint32
    np.testing.assert_array_equal(out['rng'][1], rng_state[1])
    for key in ('big_endian', 'fortran', 'empty', 'zero_d'):
        assert type(out[key]) is np.ndarray and out[key].shape == value[key].shape, key
        np.testing.assert_array_equal(out[key], value[key])


def marker_payloads(marker) -> dict[str, bytes]:
    """Pickles that would create `marker` if anything in them ran."""
    command = f'touch {marker}'.encode()
    source = f'open({str(marker)!r}, "w").close()'.encode()
    return {
        'os.system': b'cos\nsystem\n(V' + command + b'\ntR.',
        'posix.system': b'cposix\nsystem\n(V' + command + b'\ntR.',
        'builtins.eval': b'cbuiltins\neval\n(V' + source + b'\ntR.',
        'builtins.exec': b'c__builtin__\nexec\n(V' + source + b'\ntR.',
        # numpy's own names around a call that would run: the call is refused before numpy sees it
        'scalar of eval': b'cnumpy.core.multiarray\nscalar\n(cbuiltins\neval\n(V' + source + b'\ntRtR.',
        'subprocess.Popen': b'csubprocess\nPopen\n((Vtouch\nV' + str(marker).encode() + b'\nltR.',
    }


@pytest.mark.parametrize('fmt', FORMATS)
def test_pickles_that_would_run_code_are_refused_and_run_nothing(tmp_path, fmt):
    marker = tmp_path / 'ran'
    for name, data in marker_payloads(marker).items():
        path = write(tmp_path, data, fmt)
        with pytest.raises(CheckpointError, match='should not need'):
            load_archive(path)
        assert not marker.exists(), name
        # Read as inert stand-ins on request, still without running them (a stand-in is no numpy dtype).
        if name == 'scalar of eval':
            with pytest.raises(CheckpointError, match='numpy scalar'):
                load_archive(path, foreign_objects=True)
        else:
            assert isinstance(load_archive(path, foreign_objects=True), ForeignObject), name
        assert not marker.exists(), name


def text(value: str) -> bytes:
    """BINUNICODE `value`."""
    data = value.encode()
    return b'X' + len(data).to_bytes(4, 'little') + data


def scalar_pickle(code: str, data: str, byteorder: str = '<', module: bytes = SPELLINGS['numpy1']) -> bytes:
    """`<module>.scalar(numpy.dtype(code) + state, _codecs.encode(data, 'latin1'))`, as numpy pickles a scalar."""
    return (b'\x80\x02c' + module + b'\nscalar\ncnumpy\ndtype\n' + text(code) + b'\x89\x88\x87R(K\x03' +
            text(byteorder) + b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbc_codecs\nencode\n' + text(data) +
            text('latin1') + b'\x86R\x86R.')


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('spelling', sorted(SPELLINGS))
def test_hand_written_scalar_pickles_are_read(tmp_path, spelling, fmt):
    module = SPELLINGS[spelling]
    value = load_archive(write(tmp_path, scalar_pickle('f8', '\x00' * 7 + '\x40', module=module), fmt))
    assert type(value) is np.float64 and value == 2.0
    value = load_archive(write(tmp_path, scalar_pickle('f8', '\x40' + '\x00' * 7, '>', module), fmt))
    assert type(value) is np.float64 and value == 2.0
    value = load_archive(write(tmp_path, scalar_pickle('i8', '\xff' * 8, module=module), fmt))
    assert type(value) is np.int64 and value == -1
    # What numpy itself writes, less its memo entries.
    written = pickletools.optimize(numpy_pickle(np.frombuffer(b'abcdefgh')[0], spelling))
    assert scalar_pickle('f8', 'abcdefgh', module=module) == written


@pytest.mark.parametrize('fmt', FORMATS)
def test_numpy_values_that_are_not_plain_numbers_are_refused(tmp_path, fmt):
    dtype, scalar, encode = 'not a plain number type', 'not the bytes of one plain number', 'only byte strings'
    refused = {  # name: (pickle, what the refusal says)
        'object array': (numpy_pickle(np.array([1, 'a', None], dtype=object), 'numpy1'), "dtype 'O8'"),
        'object array, numpy 2': (numpy_pickle(np.array([1, 'a', None], dtype=object), 'numpy2'), "dtype 'O8'"),
        'record array': (numpy_pickle(np.zeros(2, [('a', 'f4'), ('b', 'i4')]), 'numpy2'), dtype),
        'string scalar': (numpy_pickle(np.str_('abc'), 'numpy2'), dtype),
        'object scalar': (scalar_pickle('O8', 'abcdefgh'), dtype),
        'datetime scalar': (scalar_pickle('M8', 'abcdefgh'), dtype),
        'void scalar': (scalar_pickle('V8', 'abcdefgh'), dtype),
        'long double scalar': (scalar_pickle('f16', 'abcdefghabcdefgh'), dtype),
        'scalar of the wrong size': (scalar_pickle('f4', 'abc'), scalar),
        'scalar of too many bytes': (scalar_pickle('f8', 'abcdefghi'), scalar),
        'bytes of a string': (b'\x80\x02c__builtin__\nbytes\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00ascii\x86R.',
                              'only an empty byte string'),
        # _codecs.encode for anything but latin1 byte strings of a pickle
        'rot13': (b'\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.', encode),
        'zlib': (b'\x80\x02c_codecs\nencode\nC\x03abcX\x0a\x00\x00\x00zlib_codec\x86R.', encode),
        'unicode escape': (b'\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x0e\x00\x00\x00unicode_escape\x86R.',
                           encode),
        # _reconstruct of something other than numpy.ndarray
        'reconstruct of dtype': (b'\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85C\x01b\x87R.',
                                 'only numpy.ndarray'),
        # a dtype state with fields, which would make a plain type a record
        'dtype with fields': (b'\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R(K\x03X\x01\x00\x00\x00<N'
                              b'X\x01\x00\x00\x00a\x85}J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.',
                              'not that of a plain number type'),
    }
    assert b'O8' in refused['object array'][0] and b'_reconstruct' in refused['object array'][0]
    for name, (data, says) in refused.items():
        with pytest.raises(CheckpointError, match=re.escape(says)):
            load_archive(write(tmp_path, data, fmt))
            pytest.fail(f'{name} was read')


@pytest.mark.parametrize('fmt', FORMATS)
def test_numpy_names_cannot_make_objects_without_their_checks(tmp_path, fmt):
    """NEWOBJ on what numpy.ndarray / numpy.dtype stand for (they are no classes), and numpy names the reader
    does not know, are refused."""
    for data in (b'\x80\x02cnumpy\nndarray\n)\x81.', b'\x80\x02cnumpy\ndtype\n)\x81.',
                 b'\x80\x02cnumpy\nload\nX\x01\x00\x00\x00x\x85R.',
                 b'\x80\x02cnumpy.core.multiarray\nfromstring\nC\x01xX\x01\x00\x00\x00O\x86R.'):
        with pytest.raises(CheckpointError):
            load_archive(write(tmp_path, data, fmt))
