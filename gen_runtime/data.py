"""The input pipeline: data sources, step-indexed shuffled batches, per-host sharding, prefetch.

Every batch is a pure function of (seed, step): the examples of step s are positions
s*B .. s*B+B-1 of an endless stream that visits the data set in a fresh permutation each epoch.
So a resumed run sees exactly the batches an uninterrupted one would, and each host loads only its
own rows of each global batch.

Sources (`config.data.source`, documented in configs/common.py): scikit-learn's bundled 8x8 digits,
npz files, folders (or tar archives) of images, and tensorflow-datasets.
"""

import functools
import importlib.util
import io
import os
import queue
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from gen_runtime import parallel
from gen_runtime.config import resolve_data_path
from gen_runtime.errors import ConfigError, DataError

Batch = dict[str, np.ndarray]
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')


class Dataset(Protocol):
    """Random access to examples: integer images under 'image', optional 'label'."""

    levels: int  # number of intensity levels of the stored images (256 for 8-bit)

    def __len__(self) -> int: ...

    def gather(self, indices: np.ndarray) -> Batch: ...


@dataclass
class ArrayDataset:
    """A data set held in memory as arrays sharing their first axis."""

    arrays: dict[str, np.ndarray]
    levels: int = 256

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def gather(self, indices: np.ndarray) -> Batch:
        return {k: v[indices] for k, v in self.arrays.items()}


@dataclass(frozen=True)
class FirstExamples:
    """The first `count` examples of a data set."""

    dataset: Dataset
    count: int

    @property
    def levels(self) -> int:
        return self.dataset.levels

    def __len__(self) -> int:
        return min(self.count, len(self.dataset))

    def gather(self, indices: np.ndarray) -> Batch:
        return self.dataset.gather(indices)


def first_examples(dataset: Dataset, count: int) -> Dataset:
    """At most `count` examples of `dataset` (all of them for count 0)."""
    return FirstExamples(dataset, count) if 0 < count < len(dataset) else dataset


class TfdsDataset:
    """A tensorflow-datasets split read by random access (`tfds.data_source`)."""

    levels = 256

    def __init__(self, name: str, split: str, data_dir: str | None, image_size: int) -> None:
        try:
            import tensorflow_datasets as tfds  # imported only here: most runs (and GPU images) lack it
        except ImportError as e:
            raise DataError(f'tfds data set {name!r} needs the tensorflow-datasets package, which is not installed '
                            "(pip install tensorflow-datasets, or '.[tfds]' to prepare data sets)") from e

        try:
            self._source = tfds.data_source(name, split=split, data_dir=data_dir or None)
        except Exception as e:  # noqa: BLE001 - tfds raises many kinds; all mean the same to a user
            raise DataError(f'tfds data set {name!r} split {split!r} could not be opened '
                            f'({type(e).__name__}: {" ".join(str(e).split())[:300]}); prepare it '
                            'with `tfds build` or set data.tfds_dir to where it is') from e
        self._image_size = image_size

    def __len__(self) -> int:
        return len(self._source)

    def gather(self, indices: np.ndarray) -> Batch:
        examples = [self._source[int(i)] for i in indices]
        images = np.stack([_resize(np.asarray(ex['image']), self._image_size) for ex in examples])
        batch = {'image': images}
        if 'label' in examples[0]:
            batch['label'] = np.asarray([ex['label'] for ex in examples], np.int32)
        return batch


def data_set_name(data: ml_collections.ConfigDict) -> str:
    """The data set `data` (a config's data section) reads, in a word: the tfds name for source 'tfds', the base
    name of data.path for 'npz' and 'image_folder', else the source ('digits'). data.name counts only for tfds (a
    family base may name a tfds set that its leaves, reading files, keep)."""
    if data.source == 'tfds':
        return data.name
    if data.source in ('npz', 'image_folder') and data.path:
        return os.path.basename(os.path.normpath(data.path))
    return data.source


def load_dataset(config: ml_collections.ConfigDict, split: str) -> Dataset:
    """The `split` of the data set `config.data` names, with images as integer NHWC arrays."""
    data = config.data
    if data.source == 'digits':
        dataset = _digits(split)
    elif data.source == 'npz':
        dataset = _npz(resolve_data_path(config, data.path), split, data.image_size)
    elif data.source == 'image_folder':
        dataset = _image_folder(resolve_data_path(config, data.path), split, data.image_size,
                                data.num_channels, data.max_examples)
    elif data.source == 'tfds':
        if not data.name:
            raise ConfigError("data.source='tfds' needs data.name, e.g. 'mnist'")
        dataset = TfdsDataset(data.name, split, data.tfds_dir, data.image_size)
    else:
        raise ConfigError(f"data.source={data.source!r} is not one of 'digits', 'npz', "
                          "'image_folder', 'tfds'")
    dataset = first_examples(dataset, data.max_examples)  # every source, tfds included
    if len(dataset) == 0:
        raise DataError(f'split {split!r} of data source {data.source!r} has no examples')
    return dataset


def digits_table() -> np.ndarray:
    """scikit-learn's 1797 8x8 digits as the table it ships and sklearn.datasets.load_digits reads
    (sklearn/datasets/data/digits.csv.gz: 64 grey levels 0..16 and the label per row), read without importing
    sklearn.datasets, which took 1.5 s of CPU at every start of the quickstart; load_digits where a
    scikit-learn keeps the table elsewhere."""
    spec = importlib.util.find_spec('sklearn')
    path = os.path.join(os.path.dirname(spec.origin), 'datasets', 'data', 'digits.csv.gz') if spec else ''
    if os.path.isfile(path):
        return np.loadtxt(path, delimiter=',')
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.concatenate([digits.data, digits.target[:, None]], axis=1)


def _digits(split: str) -> ArrayDataset:
    """scikit-learn's 1797 8x8 digits (17 grey levels, digits_table); first 1500 'train', the rest 'test'."""
    table = digits_table()
    images = table[:, :64].reshape(-1, 8, 8, 1).astype(np.uint8)
    labels = table[:, 64].astype(np.int32)
    rows = {'train': slice(0, 1500), 'test': slice(1500, None)}
    if split not in rows:
        raise ConfigError(f"the digits data set has splits 'train' and 'test', not {split!r}")
    return ArrayDataset({'image': images[rows[split]], 'label': labels[rows[split]]}, levels=17)


def _npz(path: str, split: str, image_size: int) -> ArrayDataset:
    """An npz with arrays x_<split> (N,H,W[,C], uint8) and optionally y_<split> (N,)."""
    if not os.path.isfile(path):
        raise DataError(f'npz file {path} does not exist; check data.path and the data root')
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f'{path} is not a readable npz file ({e})') from e
    key = f'x_{split}'
    if key not in arrays:
        raise DataError(f'{path} has no array {key!r} (it has {sorted(arrays)}); name images '
                        'x_<split> and labels y_<split>')
    images = arrays[key]
    if images.ndim not in (3, 4):
        raise DataError(f'{path}: {key} has shape {images.shape}; images are (N, H, W) or (N, H, W, C)')
    if not np.issubdtype(images.dtype, np.integer):
        raise DataError(f'{path}: {key} is {images.dtype}; images must be integers 0..255 (uint8), e.g. '
                        'np.round(x * 255).astype(np.uint8) for floats in [0, 1]')
    if images.size and (images.min() < 0 or images.max() > 255):
        raise DataError(f'{path}: {key} holds values {images.min()}..{images.max()}; images must be 0..255')
    if images.ndim == 3:
        images = images[..., None]
    images = np.stack([_resize(im, image_size) for im in images]) if image_size else images
    out = {'image': images}
    if f'y_{split}' in arrays:
        out['label'] = arrays[f'y_{split}'].astype(np.int32)
    return ArrayDataset(out)


def _image_folder(path: str, split: str, image_size: int, channels: int, max_examples: int = 0) -> ArrayDataset:
    """Images under `path/<split>/<class>/`, `path/<class>/` or flat in `path` (a folder or tar).

    Classes are the sorted sub-folder names; a flat folder has the single label 0. Without a
    `<split>` sub-folder every split reads the whole folder. With `max_examples` > 0 only the first
    that many (in name order, as `first_examples` keeps them) are decoded.
    """
    if tarfile.is_tarfile(path) if os.path.isfile(path) else False:
        stat = os.stat(path)
        files = _tar_images(path, stat.st_mtime_ns, stat.st_size)
    elif os.path.isdir(path):
        files = {os.path.relpath(os.path.join(d, n), path): functools.partial(_read, os.path.join(d, n))
                 for d, _, names in os.walk(path) for n in names if n.lower().endswith(IMAGE_SUFFIXES)}
    else:
        raise DataError(f'image folder {path} does not exist (a folder or a .tar/.tgz is expected)')
    if any(name.split('/')[0] == split for name in files):
        files = {name.split('/', 1)[1]: read for name, read in files.items() if name.split('/')[0] == split}
    if not files:
        raise DataError(f'no images ({", ".join(IMAGE_SUFFIXES)}) found in {path}')
    names = sorted(files)
    classes = sorted({n.split('/')[0] for n in names if '/' in n})
    label_of = {c: i for i, c in enumerate(classes)}
    names = names[:max_examples] if max_examples > 0 else names
    images = np.stack([_decode(files[n](), image_size, channels, os.path.join(path, n)) for n in names])
    labels = np.asarray([label_of.get(n.split('/')[0], 0) if '/' in n else 0 for n in names], np.int32)
    return ArrayDataset({'image': images, 'label': labels})


@functools.lru_cache(maxsize=1)
def _tar_images(path: str, mtime_ns: int, size: int) -> dict[str, Callable[[], bytes]]:
    """The image files of a tar (name -> its bytes), read once per process while the file is unchanged
    (`mtime_ns` and `size` are the cache key: a notebook or test reads both splits and several modes)."""
    del mtime_ns, size
    with tarfile.open(path) as tar:
        blobs = {m.name.lstrip('./'): tar.extractfile(m).read() for m in tar.getmembers()
                 if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES)}
    return {name: functools.partial(lambda b: b, blob) for name, blob in blobs.items()}


def _read(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def _decode(blob: bytes, image_size: int, channels: int, name: str) -> np.ndarray:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(blob))
        image = image.convert('L' if channels == 1 else 'RGB')
    except OSError as e:
        raise DataError(f'{name} could not be decoded ({e}); remove or replace it') from e
    array = np.asarray(image)
    return _resize(array[..., None] if array.ndim == 2 else array, image_size)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resizes an HWC uint8 image to size x size with antialiased bicubic filtering (PIL)."""
    if not size or image.shape[:2] == (size, size):
        return image
    from PIL import Image

    squeeze = image.shape[-1] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(pil.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None))
    return out[..., None] if squeeze else out


@functools.lru_cache(maxsize=4)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Example indices of the global batch at `step`: a new permutation every epoch."""
    positions = step * batch_size + np.arange(batch_size)
    epochs, offsets = np.divmod(positions, num_examples)
    out = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        rows = epochs == epoch
        out[rows] = _epoch_permutation(num_examples, seed, int(epoch))[offsets[rows]]
    return out


def image_preprocessor(data: ml_collections.ConfigDict, levels: int) -> Callable[[Batch, np.random.Generator], Batch]:
    """Integer images -> float32 in [0, 1], with the dequantisation and flips `data` asks for.

    Without dequantisation x = n / (levels - 1); with it x = (n + u) / levels, u ~ U[0, 1), so that
    a density on [0, 1]^D gives a valid discrete likelihood (bits/dim offset log2(levels)).
    """

    def preprocess(batch: Batch, rng: np.random.Generator) -> Batch:
        images = batch['image'].astype(np.float32)
        if data.num_channels == 3 and images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        if data.dequantize:
            images = (images + rng.uniform(size=images.shape).astype(np.float32)) / levels
        else:
            images = images / (levels - 1)
        if data.random_flip:
            flip = rng.uniform(size=images.shape[0]) < 0.5
            images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
        return {**batch, 'image': images}

    return preprocess


class TrainBatches:
    """This host's rows of every global training batch, as a pure function of the step."""

    def __init__(self, dataset: Dataset, global_batch: int, seed: int,
                 preprocess: Callable[[Batch, np.random.Generator], Batch] | None = None) -> None:
        parallel.check_batch_size(global_batch)
        self.dataset = dataset
        self.global_batch = global_batch
        self.seed = seed
        self.preprocess = preprocess

    def host_batch(self, step: int) -> Batch:
        indices = batch_indices(len(self.dataset), self.global_batch, step, self.seed)
        rows = parallel.host_slice(self.global_batch)
        batch = self.dataset.gather(indices[rows])
        if self.preprocess is not None:
            rng = np.random.default_rng([self.seed, step, jax.process_index(), 1])
            batch = self.preprocess(batch, rng)
        return batch

    def host_batches(self, step: int, count: int) -> Batch:
        """Batches of steps step..step+count-1 stacked on a leading axis."""
        batches = [self.host_batch(s) for s in range(step, step + count)]
        return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def eval_batches(dataset: Dataset, global_batch: int,
                 preprocess: Callable[[Batch, np.random.Generator], Batch] | None = None,
                 seed: int = 0) -> Iterator[Batch]:
    """This host's rows of consecutive global batches covering the whole data set once.

    The last batch is padded to full size by repeating example 0 and every batch carries a boolean
    'mask' marking real examples, so shapes stay static and no example is dropped.
    """
    parallel.check_batch_size(global_batch, 'the evaluation batch size')
    rows = parallel.host_slice(global_batch)
    for index, start in enumerate(range(0, len(dataset), global_batch)):
        positions = np.arange(start, start + global_batch)
        mask = positions < len(dataset)
        batch = dataset.gather(np.where(mask, positions, 0)[rows])
        if preprocess is not None:
            batch = preprocess(batch, np.random.default_rng([seed, index, jax.process_index(), 2]))
        yield {**batch, 'mask': mask[rows]}


def device_eval_batches(dataset: Dataset, global_batch: int,
                        preprocess: Callable[[Batch, np.random.Generator], Batch] | None = None, seed: int = 0,
                        desc: str = '', progress: bool = True,
                        skip: Callable[[int], bool] | None = None) -> Iterator[tuple[int, Batch, np.ndarray]]:
    """The one masked-batch evaluation loop: (index, batch on the devices, mask of its real rows on the host)
    for every global batch of `eval_batches`, with a progress bar on process 0.

    The batch is batch-sharded over all devices and holds no 'mask'; results of padding rows are dropped
    by indexing them with the mask. Batches whose index `skip` accepts are counted but not loaded (a
    resumed evaluation).
    """
    mesh = parallel.make_mesh()
    total = -(-len(dataset) // global_batch)
    done = sum(1 for i in range(total) if skip is not None and skip(i))
    bar = tqdm(total=total, initial=done, desc=desc, unit='batch', dynamic_ncols=True,
               disable=not (progress and jax.process_index() == 0))
    try:
        for index, batch in enumerate(eval_batches(dataset, global_batch, preprocess, seed=seed)):
            if skip is not None and skip(index):
                continue
            placed = parallel.host_local_to_global(batch, mesh)
            mask = parallel.to_host(placed.pop('mask'))
            yield index, placed, mask
            bar.update(1)
    finally:
        bar.close()


def prefetch_to_devices(host_batches: Iterator[Batch], mesh: Mesh, leading_axes: int = 0,
                        size: int = 2) -> Iterator[Any]:
    """Loads host batches in a background thread and places them, batch-sharded, on the devices."""
    slots: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def producer() -> None:
        try:
            for batch in host_batches:
                if stop.is_set():
                    return
                slots.put(parallel.host_local_to_global(batch, mesh, leading_axes))
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            slots.put(e)
            return
        slots.put(StopIteration())

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if isinstance(item, StopIteration):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
