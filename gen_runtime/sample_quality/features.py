"""Inception features of image batches: one jitted computation (quantise, resize, InceptionV3) on
fixed-size batches split over every device, whatever sizes the incoming batches have."""

from collections.abc import Iterable, Iterator

import jax
import numpy as np
from tqdm import tqdm

from gen_runtime import parallel
from gen_runtime.errors import DataError, NonFiniteError
from gen_runtime.sample_quality.preprocess import to_inception_input
from gen_runtime.sample_quality.weights import InceptionWeights


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
        model = weights.model()
        self._apply = jax.jit(lambda params, images: model.apply({'params': params}, to_inception_input(images)))

    def _chunks(self, images: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
        for start in range(0, len(images), self._host_rows):
            rows = images[start:start + self._host_rows]
            if len(rows) < self._host_rows:
                rows = np.concatenate([rows, np.zeros((self._host_rows - len(rows), *rows.shape[1:]), rows.dtype)])
            yield rows, min(self._host_rows, len(images) - start)

    def _real_rows(self, gathered: np.ndarray, count: int) -> np.ndarray:
        """Drops the padding of each host's rows from a batch gathered from all hosts."""
        per_host = gathered.reshape(jax.process_count(), self._host_rows, *gathered.shape[1:])
        return per_host[:, :count].reshape(-1, *gathered.shape[1:])

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        images = check_images(images)
        pools, logits = [], []
        for rows, count in self._chunks(images):
            pool, logit = parallel.to_host(self._apply(self._params, parallel.host_local_to_global(rows, self._mesh)))
            pools.append(self._real_rows(pool, count))
            if logit is not None:
                logits.append(self._real_rows(logit, count))
        return np.concatenate(pools), (np.concatenate(logits) if logits else None)

    def stream(self, batches: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for images in batches:
            if len(images):
                yield self(images)


def with_progress(batches: Iterable[np.ndarray], total: int, desc: str, enabled: bool) -> Iterator[np.ndarray]:
    """Yields `batches` while a progress bar counts their images (shown on process 0 only)."""
    with tqdm(total=total or None, unit='img', desc=desc, disable=not enabled or jax.process_index() != 0) as bar:
        for images in batches:
            yield images
            bar.update(len(images))
