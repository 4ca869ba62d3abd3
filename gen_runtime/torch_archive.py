"""Reads the tensors of a PyTorch file (TorchScript `.pt`, `torch.save` `.pth`/`.tar`) without torch.

torch.save since PyTorch 1.6, and TorchScript, write a zip with `<prefix>/data.pkl`, a pickle whose
tensors refer to raw storages stored as `<prefix>/data/<key>`. Earlier torch.save (the "legacy" format,
e.g. checkpoints of PyTorch 0.4 training scripts) writes consecutive pickles: a magic number, the
protocol version, system info, the object (tensors refer to storages by key), the list of storage keys,
then each storage's element count (int64, little-endian) and raw bytes. A restricted unpickler rebuilds
each tensor as a numpy array, state dicts (`OrderedDict`s with `_metadata`) as dicts, `torch.save`d
containers (dicts, lists, tuples, numbers, optimizer hyper-parameters) as themselves, and every other
object (TorchScript modules) as a plain namespace of its attributes, so the library converts weights
without importing torch and without running any code from the file. Numpy values a training script put
in the file (a learning rate computed with numpy in an optimizer state, an RNG state array) are rebuilt
from their bytes, whichever numpy wrote them (`numpy.core` before 2.0, `numpy._core` since): the names
their pickles use (`multiarray.scalar`, `multiarray._reconstruct`, `numpy.dtype`, `numpy.ndarray`, and
`_codecs.encode` and `bytes()` for their byte strings) stand for functions of this module that only
accept a plain numeric dtype (booleans, integers, floats, complex numbers; never objects, strings or
records) and latin-1 text or bytes of exactly its size. Anything else the pickle names (a class of a
training script, say) is refused, or on request stood in for by an inert `ForeignObject`.
"""

import math
import pickle
import zipfile
from typing import Any

import numpy as np

from gen_runtime.errors import CheckpointError

_STORAGE_DTYPES = {
    'FloatStorage': np.float32,
    'DoubleStorage': np.float64,
    'HalfStorage': np.float16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}


class ScriptObject:
    """A pickled object of a TorchScript class: only its attributes are kept."""

    def __init__(self, *args: Any) -> None:
        del args

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class ForeignObject:
    """An object of a class the file names but a weights file does not need (with `foreign_objects`).

    Nothing of that class is imported or run: `foreign_class` makes an inert stand-in whose instances keep
    the constructor arguments and pickled state as plain data, so the tensors around them can be read.
    """

    qualified_name = ''

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def foreign_class(module: str, name: str) -> type:
    """An inert stand-in class for `module.name` (see ForeignObject)."""
    return type(name, (ForeignObject,), {'qualified_name': f'{module}.{name}'})


class StateDict(dict):
    """An `OrderedDict` of tensors as torch pickles it (it may carry a `_metadata` attribute)."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


# Type codes of the numpy dtypes a pickle may name (`numpy.dtype(code, False, True)`): plain numbers.
_NUMPY_CODES = frozenset({'b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8', 'c8', 'c16'})
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')  # numpy 1.x, numpy 2.x


class _NumpyDtype:
    """A numpy dtype of a pickle (see `_numpy_dtype`), then its BUILD state (version, byte order, ...)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        plain = isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4) \
            and state[1] in ('<', '>', '|', '=') and state[2:5] == (None, None, None) \
            and all(type(v) is int for v in state[5:8]) and (len(state) == 8 or state[8] is None)
        if not plain:
            raise CheckpointError(f'the archive holds a numpy {self.dtype} dtype with the state {state!r}, '
                                  'which is not that of a plain number type')
        if state[1] in '<>':
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_dtype(code: Any, align: Any = False, copy: Any = True) -> _NumpyDtype:
    """`numpy.dtype(code, align, copy)` of a pickle: a plain number type only."""
    if not isinstance(code, str) or code not in _NUMPY_CODES or not isinstance(align, bool) \
            or not isinstance(copy, bool):
        raise CheckpointError(f'the archive holds a numpy dtype {code!r}, which is not a plain number type')
    return _NumpyDtype(np.dtype(code))


def _latin1_bytes(text: Any, encoding: Any = 'utf-8') -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for byte strings: a str of code points < 256 to bytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise CheckpointError(f'the archive calls _codecs.encode on a {type(text).__name__} with encoding '
                              f'{encoding!r}, where only byte strings (latin1) are expected')
    return text.encode('latin-1')


def _empty_bytes(*args: Any) -> bytes:
    """`bytes()` as protocol-2 pickles write an empty byte string (e.g. the data of an empty numpy array)."""
    if args:
        raise CheckpointError(f'the archive calls bytes{args!r}, where only an empty byte string is expected')
    return b''


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """`numpy.(_)core.multiarray.scalar(dtype, bytes)`: the numpy scalar of those bytes."""
    if not isinstance(dtype, _NumpyDtype) or not isinstance(data, bytes) or len(data) != dtype.dtype.itemsize:
        raise CheckpointError(f'the archive holds a numpy scalar of {getattr(dtype, "dtype", dtype)!r} from '
                              f'{type(data).__name__} data, not the bytes of one plain number')
    return np.frombuffer(data, dtype.dtype)[0]


class _NumpyArray(np.ndarray):
    """`numpy.(_)core.multiarray._reconstruct(numpy.ndarray, ...)` of a pickle, then its BUILD state."""

    def __setstate__(self, state: Any) -> None:
        ok = isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and isinstance(state[1], tuple) \
            and all(type(n) is int and n >= 0 for n in state[1]) and isinstance(state[2], _NumpyDtype) \
            and isinstance(state[3], bool) and isinstance(state[4], bytes)
        if not ok or len(state[4]) != math.prod(state[1]) * state[2].dtype.itemsize:
            raise CheckpointError('the archive holds a numpy array that is not plain numbers of its shape and dtype')
        _, shape, dtype, fortran, data = state
        super().__setstate__((1, shape, dtype.dtype, fortran, data))


class _NdarrayName:
    """What `numpy.ndarray` of a pickle stands for: only a marker for `_numpy_reconstruct` (not a class)."""


_NDARRAY = _NdarrayName()


def _numpy_reconstruct(cls: Any, shape: Any, code: Any) -> np.ndarray:
    """`numpy.(_)core.multiarray._reconstruct`: an empty array that the pickle's BUILD state fills."""
    if cls is not _NDARRAY:
        raise CheckpointError(f'the archive rebuilds a {cls!r} with numpy, where only numpy.ndarray is expected')
    del shape, code
    return _NumpyArray((0,), np.uint8)


def _find_numpy(module: str, name: str) -> Any:
    """What a numpy name of a pickle stands for here, or None."""
    if module in _NUMPY_MODULES and name == 'scalar':
        return _numpy_scalar
    if module in _NUMPY_MODULES and name == '_reconstruct':
        return _numpy_reconstruct
    if module == 'numpy' and name == 'ndarray':
        return _NDARRAY
    if module == 'numpy' and name == 'dtype':
        return _numpy_dtype
    if module == '_codecs' and name == 'encode':
        return _latin1_bytes
    if module in ('__builtin__', 'builtins') and name == 'bytes':
        return _empty_bytes
    return None


def _rebuild_parameter(data: np.ndarray, requires_grad: bool, backward_hooks: Any, *args: Any) -> np.ndarray:
    del requires_grad, backward_hooks, args
    return data


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *args: Any) -> np.ndarray:
    del args
    if not size:
        return np.array(storage[offset])  # a 0-d array, as torch keeps 0-d tensors
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * itemsize for s in stride))
    return np.ascontiguousarray(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile | None = None, prefix: str = '',
                 foreign_objects: bool = False) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._foreign_objects = foreign_objects
        self.numpy_values = False  # whether values to finish after loading (see _resolve) may be there

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith('__torch__'):
            return ScriptObject
        if module == 'torch._utils' and name in ('_rebuild_tensor_v2', '_rebuild_tensor'):
            return _rebuild_tensor
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == 'torch._utils' and name in ('_rebuild_parameter', '_rebuild_parameter_with_state'):
            return _rebuild_parameter
        if module == 'collections' and name == 'OrderedDict':
            return StateDict
        if module == 'torch' and name == 'device':
            return str
        if module == 'torch.jit._pickle' and name.startswith('build_') and name.endswith('list'):
            return list  # typed lists of TorchScript attributes (e.g. paddings)
        if module == 'torch.jit._pickle' and name == 'restore_type_tag':
            return lambda value, type_tag: value
        numpy_value = _find_numpy(module, name)
        if numpy_value is not None:
            self.numpy_values = True
            return numpy_value
        if self._foreign_objects:
            return foreign_class(module, name)
        raise CheckpointError(f'the archive refers to {module}.{name}, which a weights file should not need')

    def persistent_load(self, pid: tuple) -> np.ndarray:
        kind, storage_type, key, _, numel = pid
        if kind != 'storage':
            raise CheckpointError(f'unknown persistent id kind {kind!r} in the archive')
        raw = self._archive.read(f'{self._prefix}/data/{key}')
        return np.frombuffer(raw, storage_type.dtype, count=numel)


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
ZIP_MAGIC = b'PK\x03\x04'


class _PlainUnpickler(pickle.Unpickler):
    """For the legacy format's header pickles and key list: plain values only."""

    def find_class(self, module: str, name: str) -> Any:
        raise CheckpointError(f'the file refers to {module}.{name} where plain values are expected')


class _LegacyStorage:
    """A storage whose bytes follow the object pickle: filled in after it, by key."""

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.array = np.empty(numel, dtype)


class _LegacyUnpickler(_Unpickler):
    def __init__(self, file: Any, foreign_objects: bool = False) -> None:
        super().__init__(file, foreign_objects=foreign_objects)
        self.storages: dict[str, _LegacyStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == 'torch._utils' and name in ('_rebuild_tensor_v2', '_rebuild_tensor'):
            return _PendingTensor
        return super().find_class(module, name)

    def persistent_load(self, pid: tuple) -> Any:
        kind, storage_type, key, _, numel, *view = pid
        if kind != 'storage' or (view and view[0] is not None):
            raise CheckpointError(f'unsupported storage reference {pid[:1] + pid[2:]!r} in the file')
        if key not in self.storages:
            self.storages[key] = _LegacyStorage(storage_type.dtype, numel)
        return self.storages[key]


class _PendingTensor:
    """A tensor of the legacy format, made into an array once its storage is read."""

    def __init__(self, storage: _LegacyStorage, offset: int, size: tuple, stride: tuple, *args: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        return _rebuild_tensor(self.storage.array, self.offset, self.size, self.stride)


def _resolve(obj: Any) -> Any:
    """The loaded object with pending legacy tensors and numpy arrays / dtypes made into plain numpy ones."""
    if isinstance(obj, _PendingTensor):
        return obj.array()
    if isinstance(obj, _NumpyArray):
        return obj.view(np.ndarray)
    if isinstance(obj, _NumpyDtype):
        return obj.dtype
    if isinstance(obj, dict):
        out = type(obj)((k, _resolve(v)) for k, v in obj.items())
        if isinstance(obj, StateDict):
            out.__dict__.update(obj.__dict__)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def _load_legacy(f: Any, foreign_objects: bool) -> Any:
    if _PlainUnpickler(f).load() != LEGACY_MAGIC:
        raise CheckpointError('not a PyTorch file (no zip archive and no legacy magic number)')
    _PlainUnpickler(f).load()  # protocol version
    _PlainUnpickler(f).load()  # system info (endianness, type sizes)
    unpickler = _LegacyUnpickler(f, foreign_objects)
    root = unpickler.load()
    for key in _PlainUnpickler(f).load():
        storage = unpickler.storages[key].array
        (numel,) = np.frombuffer(f.read(8), '<i8')
        data = f.read(int(numel) * storage.dtype.itemsize)
        if numel != storage.size or len(data) != storage.nbytes:
            raise CheckpointError(f'storage {key} is truncated or has {numel} elements where {storage.size} '
                                  'are expected')
        storage[:] = np.frombuffer(data, storage.dtype)
    return _resolve(root)


def load_archive(path: str, foreign_objects: bool = False) -> Any:
    """The unpickled root object of a PyTorch file (zip archive or legacy format), tensors as numpy arrays.

    Classes outside torch's tensors and containers are refused, or with `foreign_objects` read as inert
    `ForeignObject`s (e.g. the callback and hyper-parameter objects of a Lightning checkpoint).
    """
    try:
        with open(path, 'rb') as f:
            starts_as_zip = f.read(4) == ZIP_MAGIC
    except OSError as e:
        raise CheckpointError(f'{path} cannot be read ({e})') from e
    if not starts_as_zip and not zipfile.is_zipfile(path):
        try:
            with open(path, 'rb') as f:
                return _load_legacy(f, foreign_objects)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError) as e:
            reason = ' '.join(str(e).split())
            raise CheckpointError(f'{path} is neither a PyTorch zip archive nor a legacy torch.save file '
                                  f'({type(e).__name__}: {reason})') from e
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f'{path} is not a readable PyTorch zip archive ({e})') from e
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith('/data.pkl') and n.count('/') == 1]
        if len(pickles) != 1:
            raise CheckpointError(f'{path} has no single <prefix>/data.pkl; is it a PyTorch .pt/.pth file?')
        prefix = pickles[0].split('/')[0]
        try:
            with archive.open(pickles[0]) as f:
                unpickler = _Unpickler(f, archive, prefix, foreign_objects)
                root = unpickler.load()
            return _resolve(root) if unpickler.numpy_values else root
        except (pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as e:
            raise CheckpointError(f'{path} is corrupt ({type(e).__name__}: {e})') from e


def named_tensors(obj: Any, prefix: str = '') -> dict[str, np.ndarray]:
    """`{dotted.name: array}` of every tensor under a loaded object, as torch's state_dict names them."""
    out = {}
    items = obj.items() if isinstance(obj, dict) else vars(obj).items() if isinstance(obj, ScriptObject) else ()
    for key, value in items:
        name = f'{prefix}{key}'
        if isinstance(value, np.ndarray):
            out[name] = value
        else:
            out.update(named_tensors(value, name + '.'))
    return out
