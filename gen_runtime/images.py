"""Image grids as PNG files."""

import math
import os

import numpy as np


def make_grid(images: np.ndarray, ncols: int | None = None, padding: int = 2) -> np.ndarray:
    """Tiles NHWC images in [0, 1] into one HWC uint8 image with `padding` white pixels between."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f'make_grid expects NHWC images, got shape {images.shape}')
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.ones((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, ncols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = image
    return (np.clip(np.nan_to_num(grid), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image_grid(images: np.ndarray, path: str, ncols: int | None = None) -> str:
    """Writes NHWC images in [0, 1] as one PNG grid at `path`; returns the path."""
    from PIL import Image

    grid = make_grid(images, ncols)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path
