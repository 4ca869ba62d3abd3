"""Inception features of image batches: one jitted computation (quantise, resize, InceptionV3) on
fixed-size batches split over every device, whatever sizes the incoming batches have."""

import functools
from collections.abc import Iterable, Iterator

import jax
import numpy as np
from tqdm import tqdm

from gen_runtime import parallel
from gen_runtime.errors import DataError, NonFiniteError
from gen_runtime.sample_quality.inception import InceptionV3
from gen_runtime.sample_quality.preprocess import to_inception_input
from gen_runtime.sample_quality.weights import InceptionWeights


@functools.partial(jax.jit, static_argnames='with_logits')
def inception_outputs(params: dict, images: jax.Array, with_logits: bool) -> tuple[jax.Array, jax.Array | None]:
    """(pool_3, logits or None) of NHWC images in [0, 1]: preprocessing and network in one computation."""
    return InceptionV3(with_logits=with_logits).apply({'params': params}, to_inception_input(images))


def check_images(images: np.ndarray) -> np.ndarray:
    """Validates one NHWC batch of images in [0, 1] (1 or 3 channels) and returns it as float32."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f'sample batches must be NHWC arrays with 1 or 3 channels, got shape {images.shape}')
    images = images.astype(np.float32, copy=False)
    if not np.all(np.isfinite(images)):
        raise NonFiniteError(f'a sample batch of shape {images.shape} holds NaN or Inf values; the sampler '
                             'diverged (check the checkpoint and the sampling settings)')
    return images


class FeatureExtractor:
    """pool_3 features (N, 2048) and, if the weights have the classifier, logits (N, 1008) of images.

    `batch_size` is the global batch of one compiled call (divisible by the device count); each host
    passes its own images, and with several hosts every host must pass the same number of images.
    """

    def __init__(self, weights: InceptionWeights, batch_size: int) -> None:
        parallel.check_batch_size(batch_size, 'eval.batch_size')
        self._mesh = parallel.make_mesh()
        self._params = jax.device_put(weights.params, parallel.replicated(self._mesh))
        self._host_rows = batch_size // jax.process_count()
        self._with_logits = weights.has_logits

    def _run(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Outputs of up to one host batch of rows (padded to the compiled size, padding dropped)."""
        count = len(rows)
        if count < self._host_rows:
            rows = np.concatenate([rows, np.zeros((self._host_rows - count, *rows.shape[1:]), rows.dtype)])
        global_rows = parallel.host_local_to_global(rows, self._mesh)
        pool, logits = parallel.to_host(inception_outputs(self._params, global_rows, self._with_logits))
        return self._real_rows(pool, count), (None if logits is None else self._real_rows(logits, count))

    def _real_rows(self, gathered: np.ndarray, count: int) -> np.ndarray:
        """Drops the padding of each host's rows from a batch gathered from all hosts."""
        per_host = gathered.reshape(jax.process_count(), self._host_rows, *gathered.shape[1:])
        return per_host[:, :count].reshape(-1, *gathered.shape[1:])

    def stream(self, batches: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(pool_3, logits) per full batch of `batch_size` images, regrouping batches of any sizes; only
        the last call is padded."""
        pending = None
        for images in batches:
            images = check_images(images)
            if pending is not None and pending.shape[1:] != images.shape[1:]:
                raise DataError(f'all sample batches must have the same image shape; got {pending.shape[1:]} '
                                f'and then {images.shape[1:]}')
            pending = images if pending is None else np.concatenate([pending, images])
            while len(pending) >= self._host_rows:
                yield self._run(pending[:self._host_rows])
                pending = pending[self._host_rows:]
        if pending is not None and len(pending):
            yield self._run(pending)

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(pool_3, logits) of one array of images."""
        outputs = list(self.stream([images]))
        logits = [lg for _, lg in outputs if lg is not None]
        return np.concatenate([p for p, _ in outputs]), (np.concatenate(logits) if logits else None)


def with_progress(batches: Iterable[np.ndarray], total: int, desc: str, enabled: bool) -> Iterator[np.ndarray]:
    """Yields `batches` while a progress bar counts their images (shown on process 0 only)."""
    with tqdm(total=total or None, unit='img', desc=desc, disable=not enabled or jax.process_index() != 0) as bar:
        for images in batches:
            yield images
            bar.update(len(images))
