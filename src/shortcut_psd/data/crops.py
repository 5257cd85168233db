"""Shared pieces of the built-in data sets: crop grids, split bands, contrast filters, the final ImageSet.

Used by :mod:`~shortcut_psd.data.photos`, :mod:`~shortcut_psd.data.clinical` and
:mod:`~shortcut_psd.data.brain_tissue`; image reading, windowing and grey conversion are in
:mod:`~shortcut_psd.data.image_io`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError

log = logging.getLogger(__name__)


def package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def skimage_sample(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        out = getattr(skimage.data, name)()
        return out[0] if isinstance(out, tuple) else out  # stereo_motorcycle: (left, right, disparity)

    return load


def resize01(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    if tuple(img.shape) == tuple(shape):
        return img.astype(np.float32)
    out = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True, mode="reflect")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def shrink(img: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` (>= 1) with anti-aliasing; 1 returns the image unchanged."""
    if factor < 1:
        raise DataError(f"downscale factor must be >= 1 (only shrinking is allowed); got {factor}")
    if factor == 1:
        return img
    h, w = img.shape
    return resize01(img, (max(1, round(h / factor)), max(1, round(w / factor))))


def grid_starts(length: int, size: int, stride: int) -> np.ndarray:
    """Start offsets of windows of ``size`` every ``stride`` that fit in ``length`` (empty if none)."""
    if length < size:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - size + 1, stride, dtype=np.int64)


def crops_at(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Square crops ``img[y:y+size, x:x+size]`` for paired offsets ``ys``, ``xs`` -> ``(n, size, size)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    if len(ys) == 0:
        return np.zeros((0, size, size), dtype=np.float32)
    windows = sliding_window_view(img, (size, size))
    return np.ascontiguousarray(windows[ys, xs], dtype=np.float32)


def grid_crops(
    img: np.ndarray,
    size: int,
    stride: int,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """All grid crops of ``img`` lying inside the row range ``rows`` and column range ``cols``."""
    r0, r1 = rows if rows is not None else (0, img.shape[0])
    c0, c1 = cols if cols is not None else (0, img.shape[1])
    ys = grid_starts(r1 - r0, size, stride) + r0
    xs = grid_starts(c1 - c0, size, stride) + c0
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return crops_at(img, yy.ravel(), xx.ravel(), size)


def check_fractions(val_fraction: float, test_fraction: float) -> dict[str, float]:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) "
            "and sum to less than 1"
        )
    return {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}


def split_bands(height: int, fractions: dict[str, float]) -> dict[str, tuple[int, int]]:
    """Split ``height`` rows into consecutive bands train, val, test (top to bottom) by ``fractions``."""
    edges = np.round(np.cumsum([0.0] + [fractions[s] for s in SPLITS]) * height).astype(int)
    edges[-1] = height
    return {s: (int(edges[i]), int(edges[i + 1])) for i, s in enumerate(SPLITS)}


def keep_mask(crops: np.ndarray, min_std: float, max_background: float | None) -> np.ndarray:
    """Crops with enough contrast: std >= ``min_std`` and at most ``max_background`` of pixels saturated.

    A pixel counts as saturated when it is within 0.02 of 0 or 1 (after windowing, the black border of
    an X-ray, the air around a CT or the dark mask around a fundus photo all map to 0).
    """
    flat = crops.reshape(len(crops), int(np.prod(crops.shape[1:])))
    keep = flat.std(axis=1) >= min_std
    if max_background is not None:
        saturated = ((flat <= 0.02) | (flat >= 0.98)).mean(axis=1)
        keep &= saturated <= max_background
    return keep


def assemble(
    name: str,
    parts: list[tuple[np.ndarray, int, str, str]],
    classes: list[str],
    meta: dict[str, Any],
) -> ImageSet:
    """Stack ``(crops (n, s, s), label, split, group)`` parts into an ImageSet and record counts in meta."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        raise DataError(f"built-in data set '{name}' came out empty; loosen its crop filters (min_std)")
    images = np.concatenate([p[0] for p in parts])[:, None]
    labels = np.concatenate([np.full(len(p[0]), p[1], dtype=np.int64) for p in parts])
    split = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    group = np.concatenate([np.full(len(p[0]), p[3], dtype=object) for p in parts]).astype(str)
    ds = ImageSet(images, labels, split, group, classes, name=name, meta=meta)
    counts = ds.counts()
    ds.meta["counts"] = counts
    ds.meta["n_images"] = len(ds.images)
    missing = [c for c in classes if counts["train"][c] == 0]
    if missing:
        raise DataError(
            f"built-in data set '{name}': classes {missing} have no training images; "
            "use a smaller image_size or stride"
        )
    log.info(
        "%s: %d crops of %dx%d (train %d, val %d, test %d), %d classes",
        name,
        len(ds.images),
        images.shape[2],
        images.shape[3],
        *(int((ds.split == s).sum()) for s in SPLITS),
        len(classes),
    )
    return ds
