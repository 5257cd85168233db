"""What the ``shortcut-psd`` subcommands read: images and labels, and ``--param KEY=VALUE`` items.

Images come from a prepared ``data.npz`` (``split`` picks a split), an NPZ with an ``images`` array (and
optionally ``labels``) or in the MedMNIST layout (``test_images``, ``test_labels``, ...), or a folder of
image files (subfolders, if any, are the classes, as in ImageFolder); pixels are read and scaled by
:mod:`shortcut_psd.data.image_io`. :func:`load_images` and :func:`parse_params` are re-exported by
:mod:`shortcut_psd.cli`. No torch here, so ``shortcut-psd --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.errors import ConfigError, DataError


def _to_nchw01(arr: np.ndarray, where: str) -> np.ndarray:
    """Images (N, H, W), (N, H, W, C) (MedMNIST) or (N, C, H, W) -> float32 NCHW in [0, 1] (integers
    divided by their type's maximum, floats already in [0, 1]; see shortcut_psd.data.image_io)."""
    from shortcut_psd.data.image_io import array_images, to_nchw

    return to_nchw(array_images(np.asarray(arr), where))


def _load_folder(folder: Path, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Every image file under ``folder`` (read by shortcut_psd.data.image_io), all of one size."""
    from shortcut_psd.data.image_io import IMAGE_EXTENSIONS, read_image, to_channels

    channels = {"L": 1, "RGB": 3}.get(mode)
    if channels is None:
        raise DataError(f"image mode must be 'L' (grey) or 'RGB'; got {mode!r}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"{folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    arrays = [to_channels(read_image(p), channels) for p in files]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images in {folder} differ in size {sorted(shapes)[:3]}...; resize them to one size")
    images = np.stack(arrays).astype(np.float32, copy=False)
    parents = [p.parent for p in files]
    if all(par != folder for par in parents):
        classes = sorted({par.relative_to(folder).parts[0] for par in parents})
        labels = np.array([classes.index(p.relative_to(folder).parts[0]) for p in files], dtype=np.int64)
        return images, labels
    return images, None


def _load_npz(path: Path, split: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if {"images", "labels", "split", "group", "classes"} <= keys:
                from shortcut_psd.data.store import load_imageset

                ds = load_imageset(path)
                if split is None:
                    return ds.images, ds.labels
                if split not in set(ds.split):
                    raise DataError(
                        f"{path} has no images in split '{split}'; it has {sorted(set(ds.split))}"
                    )
                return ds.subset(split)
            if "images" in keys:
                labels = z["labels"].reshape(-1) if "labels" in keys else None
                return _to_nchw01(z["images"], str(path)), labels
            prefix = split or "test"
            if f"{prefix}_images" in keys:
                lab = z[f"{prefix}_labels"] if f"{prefix}_labels" in keys else None
                # MedMNIST labels are (N, 1); multi-label sets would need a task choice and are refused.
                if lab is not None and lab.ndim == 2 and lab.shape[1] != 1:
                    raise DataError(f"{path}: multi-label '{prefix}_labels' {lab.shape} is not supported")
                return _to_nchw01(z[f"{prefix}_images"], str(path)), None if lab is None else lab.reshape(-1)
            raise DataError(
                f"{path} has neither a prepared data set, an 'images' array nor '{prefix}_images' "
                f"(keys: {sorted(keys)})"
            )
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def load_images(
    source: str | Path,
    *,
    split: str | None = None,
    labels: str | Path | None = None,
    limit: int | None = None,
    mode: str = "L",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, C, H, W) float32 in [0, 1] and labels (N,) or None, from an npz or a folder.

    ``labels`` (a .npy file or text with one integer per line) overrides labels found with the images;
    ``limit`` keeps the first ``limit`` images; ``mode`` is the PIL mode for image files (``L`` or ``RGB``).
    """
    path = Path(source)
    if not path.exists():
        raise DataError(f"images {path} do not exist")
    images, labs = _load_folder(path, mode) if path.is_dir() else _load_npz(path, split)
    if labels is not None:
        lp = Path(labels)
        if not lp.exists():
            raise DataError(f"labels file {lp} does not exist")
        labs = np.load(lp) if lp.suffix == ".npy" else np.loadtxt(lp, dtype=np.int64, ndmin=1)
        labs = np.asarray(labs).reshape(-1)
        if len(labs) != len(images):
            raise DataError(f"labels file {lp} has {len(labs)} labels for {len(images)} images")
    if limit is not None:
        images = images[:limit]
        labs = None if labs is None else labs[:limit]
    return images, None if labs is None else labs.astype(np.int64)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values are read as JSON (numbers, true/false, null), else as text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param expects KEY=VALUE; got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
