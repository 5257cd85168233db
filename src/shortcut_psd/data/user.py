"""Users' own data sets: ImageFolder trees, CSV manifests and MedMNIST-layout NPZ files -> ImageSet.

``load_user_dataset(spec, image_size=..., channels=..., seed=..., ...)`` reads ``spec["format"]``:

- ``imagefolder``: ``path/<class>/<image>`` or, with split folders, ``path/<split>/<class>/<image>``
  (``split`` in train, val, test; train must exist). Classes are the sorted folder names unless
  ``spec["classes"]`` fixes their order. Without split folders each image is its own group.
- ``csv``: a manifest at ``path`` with columns ``path`` (relative to the manifest's folder, or
  absolute), ``label``, optional ``split`` and optional ``group`` (patient). ``spec["columns"]`` can map
  other column names onto these. Paths may not leave the manifest's folder (``..``, absolute paths
  elsewhere) unless ``spec["allow_outside"]`` is true.
- ``npz``: ``train_images``, ``train_labels``, optional ``val_*`` and ``test_*`` (MedMNIST). Images
  ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``; labels ``(N,)`` or ``(N, 1)``.

Splits missing from the data are made from the images left, by group (patient) when there is one,
seeded, stratified by class: no group ever lands in two splits. Every image is converted to ``channels``
(grey = luminance; grey to RGB = replicate), resized to ``image_size`` square (anti-aliased bilinear,
``spec["fit"]``: ``stretch`` or ``crop`` the centre square first) and scaled to ``[0, 1]``
(``spec["intensity"]``: ``dtype`` divides integers by their type's maximum and requires floats to lie in
``[0, 1]``; ``minmax`` and ``percentile`` (0.5 to 99.5) rescale each image). DICOM files (``.dcm``) are
read with numpy alone and windowed by percentiles. Bad input raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.data.builtin import dicom_frames, robust_window
from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".dcm")
FORMATS = ("imagefolder", "csv", "npz")
_SPEC_KEYS = {
    "imagefolder": {"format", "path", "name", "classes", "fit", "intensity", "licence", "description"},
    "csv": {
        "format",
        "path",
        "name",
        "classes",
        "fit",
        "intensity",
        "licence",
        "description",
        "columns",
        "allow_outside",
    },
    "npz": {"format", "path", "name", "classes", "fit", "intensity", "licence", "description"},
}


# ------------------------------------------------------------------------------------------------
# Reading and converting one image
# ------------------------------------------------------------------------------------------------


def _to_unit_range(arr: np.ndarray, intensity: str, where: str) -> np.ndarray:
    """float32 in [0, 1] from an image array, per ``intensity`` (see the module docstring)."""
    if intensity == "percentile":
        out = robust_window(arr.astype(np.float64))
        return np.zeros(arr.shape, np.float32) if out is None else out
    if intensity == "minmax":
        arr = arr.astype(np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        return np.zeros(arr.shape, np.float32) if hi <= lo else ((arr - lo) / (hi - lo)).astype(np.float32)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0 and arr.min() < 0:
            raise DataError(
                f"{where}: signed image with negative values; set intensity: minmax or percentile"
            )
        if arr.dtype.itemsize > 2 and arr.max() > 65535:
            raise DataError(f"{where}: {arr.dtype} values above 65535; set intensity: minmax or percentile")
        top = 255 if arr.dtype.itemsize == 1 else 65535
        return (arr.astype(np.float32) / top).clip(0, 1)
    arr = arr.astype(np.float32)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise DataError(
            f"{where}: floating-point values span [{arr.min():.3g}, {arr.max():.3g}], not [0, 1]; "
            "set intensity: minmax or percentile"
        )
    return arr


def read_image(path: str | os.PathLike, *, intensity: str = "dtype") -> np.ndarray:
    """One image file as float32 ``(H, W)`` (grey) or ``(H, W, 3)`` (colour) in ``[0, 1]``.

    Pillow reads the common formats (alpha dropped, palette expanded, 16-bit grey kept), pydicom reads
    uncompressed ``.dcm`` (first frame of a multi-frame file is refused, not guessed). A missing,
    truncated, corrupt or non-image file raises :class:`DataError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(
            f"{path} is not an image file (extension '{path.suffix}'); accepted: {', '.join(IMAGE_EXTENSIONS)}"
        )
    if path.suffix.lower() == ".dcm":
        frames = dicom_frames(path)
        if len(frames) != 1:
            raise DataError(f"{path}: DICOM with {len(frames)} usable frames; export one image per file")
        return frames[0]
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()  # decodes now, so a truncated file fails here, not later
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA")
            if im.mode in ("LA", "La"):
                im = im.convert("L")
            if im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBa"):
                im = im.convert("RGB")
            if im.mode == "1":
                im = im.convert("L")
            arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise DataError(
            f"{path} cannot be read as an image ({exc}); it is corrupt, truncated or not an image"
        ) from exc
    if arr.ndim == 3:
        arr = arr[..., :3]  # drop alpha
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise DataError(f"{path}: unexpected image array of shape {arr.shape}")
    return _to_unit_range(arr, intensity, str(path))


def _fit(img: np.ndarray, image_size: int, fit: str) -> np.ndarray:
    """Resize ``(H, W[, C])`` to ``(image_size, image_size[, C])``: stretch, or crop the centre square."""
    from skimage.transform import resize

    if fit == "crop":
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top : top + side, left : left + side]
    shape = (image_size, image_size) + img.shape[2:]
    if img.shape == shape:
        return img.astype(np.float32)
    out = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True, mode="reflect")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` -> ``(channels, H, W)``: luminance for grey, replication for RGB."""
    if img.ndim == 2:
        return np.repeat(img[None], channels, axis=0)
    if channels == 3:
        return np.moveaxis(img, -1, 0)
    grey = img @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)  # scikit-image's rgb2gray weights
    return grey[None]


def _prepare(img: np.ndarray, image_size: int, channels: int, fit: str) -> np.ndarray:
    return _to_channels(_fit(img, image_size, fit), channels).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Splits
# ------------------------------------------------------------------------------------------------


def split_by_group(
    labels: np.ndarray,
    group: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> np.ndarray:
    """Assign each image a split so that no group is in two splits (seeded, stratified by class).

    Each group belongs to its majority label's class. Within a class the groups, in seeded random
    order, go one by one to the split furthest below its target share (train ``1 - val - test``) of the
    class's images; train is served first, so a class with a single group is train-only.
    """
    fractions = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    rng = np.random.default_rng(seed)
    names, inverse = np.unique(group, return_inverse=True)
    sizes = np.bincount(inverse)
    majority = np.array([np.bincount(labels[inverse == g]).argmax() for g in range(len(names))])
    group_split = np.empty(len(names), dtype=object)
    for cls in np.unique(majority):
        members = rng.permutation(np.flatnonzero(majority == cls))
        total = sizes[members].sum()
        have = dict.fromkeys(SPLITS, 0)
        for g in members:
            candidates = [s for s in SPLITS if fractions[s] > 0]
            split = max(candidates, key=lambda s: (fractions[s] * total - have[s], s == "train"))
            if have["train"] == 0:
                split = "train"
            group_split[g] = split
            have[split] += sizes[g]
    return group_split[inverse].astype(str)


def _check_classes(classes: Sequence[str], labels: np.ndarray, split: np.ndarray, where: str) -> None:
    present = np.unique(labels)
    if len(present) < 2:
        only = classes[int(present[0])] if len(present) else "none"
        raise DataError(f"{where}: only one class ({only}) has images; a classifier needs at least two")
    missing = [classes[k] for k in range(len(classes)) if not ((labels == k) & (split == "train")).any()]
    if missing:
        raise DataError(f"{where}: classes {missing} have no training images; add images or change the split")


def _class_order(found: Iterable[str], spec: dict[str, Any], where: str) -> list[str]:
    found = sorted({str(c) for c in found}, key=_natural_key)
    if spec.get("classes") is None:
        return found
    classes = [str(c) for c in spec["classes"]]
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{where}: labels {unknown} are not in the classes listed in the config ({classes})")
    return classes


def _natural_key(label: str) -> tuple:
    """Sort numeric labels numerically (2 before 10), others alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


# ------------------------------------------------------------------------------------------------
# Formats
# ------------------------------------------------------------------------------------------------


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``; hidden files are ignored, any other file is an error."""
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            raise DataError(
                f"{p}: unexpected folder inside class folder {folder}; nest images one level only"
            )
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"{p} is not an image file (extension '{p.suffix}'); accepted: {', '.join(IMAGE_EXTENSIONS)}. "
                "Move it out of the class folder"
            )
        files.append(p)
    return files


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_imagefolder(spec: dict[str, Any]) -> tuple[list[Path], list[str], list[str | None], list[str]]:
    root = Path(spec["path"])
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    top = _subfolders(root)
    split_layout = any(p.name in SPLITS for p in top)
    if split_layout:
        unknown = [p.name for p in top if p.name not in SPLITS]
        if unknown:
            raise DataError(
                f"{root}: folders {unknown} beside split folders {list(SPLITS)}; remove or rename them"
            )
        if not (root / "train").is_dir():
            raise DataError(f"{root}: split folders found but no 'train' folder")
        roots = [(p.name, p) for p in top]
    else:
        roots = [(None, root)]
    paths: list[Path] = []
    labels: list[str] = []
    splits: list[str | None] = []
    for split, base in roots:
        class_dirs = _subfolders(base)
        if not class_dirs:
            raise DataError(f"{base} holds no class folders; expected {base}/<class>/<image>")
        for class_dir in class_dirs:
            files = _image_files(class_dir)
            if not files:
                raise DataError(
                    f"class folder {class_dir} is empty; add images of class '{class_dir.name}' or remove it"
                )
            paths += files
            labels += [class_dir.name] * len(files)
            splits += [split] * len(files)
    groups = [str(p.relative_to(root)) for p in paths]
    return paths, labels, splits, groups


def _read_csv(spec: dict[str, Any]) -> tuple[list[Path], list[str], list[str | None], list[str]]:
    import pandas as pd

    manifest = Path(spec["path"])
    if not manifest.is_file():
        raise DataError(f"manifest {manifest} does not exist")
    names = {"path": "path", "label": "label", "split": "split", "group": "group"}
    names.update(spec.get("columns") or {})
    try:
        frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"manifest {manifest} cannot be read as CSV ({exc})") from exc
    missing = [names[k] for k in ("path", "label") if names[k] not in frame.columns]
    if missing:
        raise DataError(
            f"manifest {manifest} lacks columns {missing}; it has {list(frame.columns)} "
            "(map other names with the 'columns' option)"
        )
    if frame.empty:
        raise DataError(f"manifest {manifest} lists no images")
    base = manifest.parent.absolute()
    allow_outside = bool(spec.get("allow_outside", False))
    paths: list[Path] = []
    for row, raw in enumerate(frame[names["path"]], start=2):  # row 1 is the header
        raw = raw.strip()
        if not raw:
            raise DataError(f"manifest {manifest}, line {row}: empty path")
        full = Path(os.path.normpath(base / raw))  # normpath folds '..'; absolute paths replace base
        if not allow_outside and not full.is_relative_to(base):
            raise DataError(
                f"manifest {manifest}, line {row}: path '{raw}' points outside the manifest's folder {base}; "
                "move the image inside it or set allow_outside: true in the data set's config"
            )
        if not full.is_file():
            raise DataError(f"manifest {manifest}, line {row}: image file {full} does not exist")
        paths.append(full)
    labels = [v.strip() for v in frame[names["label"]]]
    for row, value in enumerate(labels, start=2):
        if not value:
            raise DataError(f"manifest {manifest}, line {row}: empty label")
    if names["split"] in frame.columns:
        splits: list[str | None] = [v.strip().lower() or None for v in frame[names["split"]]]
        bad = sorted({s for s in splits if s is not None and s not in SPLITS})
        if bad:
            raise DataError(
                f"manifest {manifest}: unknown split values {bad}; use {list(SPLITS)} or leave empty"
            )
    else:
        splits = [None] * len(paths)
    if names["group"] in frame.columns:
        groups = [g.strip() or str(p) for g, p in zip(frame[names["group"]], paths, strict=True)]
    else:
        groups = [str(p) for p in paths]
    return paths, labels, splits, groups


def _complete_splits(
    labels: np.ndarray,
    splits: Sequence[str | None],
    groups: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
) -> np.ndarray:
    """Splits for every image: the given ones (None = not given) checked, the rest drawn by group.

    A group with a given split must not have another; its images without a split follow it. Images
    left without a split are split by group with the fractions. If the result still has no val (or
    no test) split and its fraction is positive, it is carved out of train, by group.
    """
    split = np.array([s if s is not None else "" for s in splits], dtype=object)
    given = split != ""
    known: dict[str, str] = {}
    for g, s in zip(groups[given], split[given], strict=True):
        if known.setdefault(g, s) != s:
            raise DataError(
                f"{where}: group '{g}' is in splits {sorted({known[g], s})}; a group (patient) must stay in one"
            )
    for i in np.flatnonzero(~given):
        split[i] = known.get(groups[i], "")
    todo = split == ""
    if todo.any():
        split[todo] = split_by_group(
            labels[todo], groups[todo], val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        )
    missing = {
        s: f for s, f in (("val", val_fraction), ("test", test_fraction)) if f > 0 and not (split == s).any()
    }
    if missing:
        log.info("%s: no %s split given; drawing it from train by group", where, " or ".join(missing))
        train = split == "train"
        split[train] = split_by_group(
            labels[train],
            groups[train],
            val_fraction=missing.get("val", 0.0),
            test_fraction=missing.get("test", 0.0),
            seed=seed,
        )
    return split.astype(str)


def _load_files(paths: list[Path], *, image_size: int, channels: int, fit: str, intensity: str) -> np.ndarray:
    images = np.empty((len(paths), channels, image_size, image_size), dtype=np.float32)
    for i, p in enumerate(paths):
        images[i] = _prepare(read_image(p, intensity=intensity), image_size, channels, fit)
        if i and i % 1000 == 0:
            log.info("read %d / %d images", i, len(paths))
    return images


def _read_npz(
    spec: dict[str, Any], *, image_size: int, channels: int, fit: str, intensity: str
) -> tuple[np.ndarray, np.ndarray, list[str | None], list[str]]:
    path = Path(spec["path"])
    if not path.is_file():
        raise DataError(f"NPZ file {path} does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path} cannot be read as an NPZ file ({exc})") from exc
    with z:
        keys = set(z.files)
        if "train_images" not in keys or "train_labels" not in keys:
            raise DataError(
                f"{path} lacks 'train_images'/'train_labels' (MedMNIST layout); it has {sorted(keys)}"
            )
        images, labels, splits, groups = [], [], [], []
        for split in SPLITS:
            if f"{split}_images" not in keys:
                continue
            if f"{split}_labels" not in keys:
                raise DataError(f"{path} has '{split}_images' but no '{split}_labels'")
            try:
                x, y = z[f"{split}_images"], z[f"{split}_labels"]
            except Exception as exc:
                raise DataError(
                    f"{path}: array '{split}_images' or '{split}_labels' is damaged ({exc})"
                ) from exc
            x = _npz_images(x, f"{path} '{split}_images'", intensity)
            y = _npz_labels(y, len(x), f"{path} '{split}_labels'")
            images.append(_resize_batch(x, image_size, channels, fit))
            labels.append(y)
            splits += [split] * len(x)
            groups += [f"{split}/{i}" for i in range(len(x))]
    label_arr = np.concatenate(labels)
    return np.concatenate(images), label_arr, splits, groups


def _npz_images(x: np.ndarray, where: str, intensity: str) -> np.ndarray:
    """``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (C in 1, 3) -> ``(N, H, W[, 3])`` in [0, 1]."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: dtype {x.dtype} is not numeric")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise DataError(f"{where}: image {bad} contains NaN or inf; fix or drop it")
    if x.ndim == 4:
        if x.shape[-1] in (1, 3):
            pass
        elif x.shape[1] in (1, 3):
            x = np.moveaxis(x, 1, -1)
        else:
            raise DataError(f"{where}: shape {x.shape} has no channel axis of size 1 or 3")
        if x.shape[-1] == 1:
            x = x[..., 0]
    elif x.ndim != 3:
        raise DataError(f"{where}: images must be (N, H, W) or (N, H, W, C); got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{where}: no images")
    if intensity == "dtype":
        return _to_unit_range(x, "dtype", where)
    return np.stack([_to_unit_range(im, intensity, f"{where}[{i}]") for i, im in enumerate(x)])


def _npz_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{where}: labels must be (N,) or (N, 1) class indices; got shape {y.shape} (multi-label?)"
        )
    if len(y) != n:
        raise DataError(f"{where}: {len(y)} labels for {n} images")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(f"{where}: labels contain NaN or inf")
        if not np.all(y == np.round(y)):
            raise DataError(f"{where}: labels must be whole numbers (class indices)")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{where}: labels of dtype {y.dtype} are not class indices")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise DataError(f"{where}: negative label {int(y.min())}")
    return y


def _resize_batch(x: np.ndarray, image_size: int, channels: int, fit: str) -> np.ndarray:
    """``(N, H, W[, 3])`` in [0, 1] -> ``(N, channels, image_size, image_size)`` in chunks."""
    out = np.empty((len(x), channels, image_size, image_size), dtype=np.float32)
    step = 512
    for start in range(0, len(x), step):
        chunk = x[start : start + step].astype(np.float32)
        if fit == "crop":
            h, w = chunk.shape[1:3]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            chunk = chunk[:, top : top + side, left : left + side]
        if chunk.shape[1:3] != (image_size, image_size):
            from skimage.transform import resize

            shape = (len(chunk), image_size, image_size) + chunk.shape[3:]
            chunk = resize(chunk, shape, order=1, anti_aliasing=True, preserve_range=True, mode="reflect")
            chunk = np.clip(chunk, 0.0, 1.0)
        if chunk.ndim == 3:
            out[start : start + step] = np.repeat(chunk[:, None], channels, axis=1)
        elif channels == 3:
            out[start : start + step] = np.moveaxis(chunk, -1, 1)
        else:
            out[start : start + step, 0] = chunk @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return out


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def load_user_dataset(
    spec: dict[str, Any],
    *,
    image_size: int,
    channels: int = 1,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> ImageSet:
    """Read a user's data set described by ``spec`` (see the module docstring) into an ImageSet.

    ``spec`` keys: ``format`` (imagefolder, csv, npz), ``path``, optional ``name``, ``classes`` (label
    order; the positive class of a binary task is index 1), ``fit`` (stretch, crop), ``intensity``
    (dtype, minmax, percentile), ``licence``, ``description``; csv also ``columns`` (e.g.
    ``{"path": "file", "group": "patient_id"}``) and ``allow_outside``.
    """
    if not isinstance(spec, dict) or "format" not in spec or "path" not in spec:
        raise DataError(f"a user data set needs 'format' ({', '.join(FORMATS)}) and 'path'; got {spec!r}")
    fmt = spec["format"]
    if fmt not in FORMATS:
        raise DataError(f"unknown data set format {fmt!r}; use one of {list(FORMATS)}")
    unknown = sorted(set(spec) - _SPEC_KEYS[fmt])
    if unknown:
        raise DataError(f"data set {spec['path']}: unknown keys {unknown} for format {fmt!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3; got {channels}")
    if image_size < 1:
        raise DataError(f"image_size must be positive; got {image_size}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(f"val_fraction {val_fraction} + test_fraction {test_fraction} must be below 1")
    fit = spec.get("fit", "stretch")
    if fit not in ("stretch", "crop"):
        raise DataError(f"data set {spec['path']}: fit must be 'stretch' or 'crop'; got {fit!r}")
    intensity = spec.get("intensity", "dtype")
    if intensity not in ("dtype", "minmax", "percentile"):
        raise DataError(
            f"data set {spec['path']}: intensity must be dtype, minmax or percentile; got {intensity!r}"
        )
    where = f"data set {spec['path']}"
    name = str(spec.get("name") or Path(spec["path"]).stem)

    if fmt == "npz":
        images, labels, splits, groups = _read_npz(
            spec, image_size=image_size, channels=channels, fit=fit, intensity=intensity
        )
        n_classes = int(labels.max()) + 1
        if spec.get("classes") is not None:
            classes = [str(c) for c in spec["classes"]]
            if n_classes > len(classes):
                raise DataError(f"{where}: label {n_classes - 1} has no name in classes {classes}")
        else:
            classes = [str(k) for k in range(n_classes)]
        label_idx = labels
    else:
        reader = _read_imagefolder if fmt == "imagefolder" else _read_csv
        paths, label_names, splits, groups = reader(spec)
        classes = _class_order(label_names, spec, where)
        index = {c: k for k, c in enumerate(classes)}
        label_idx = np.array([index[v] for v in label_names], dtype=np.int64)
        if len(set(label_names)) < 2:
            raise DataError(
                f"{where}: only one class ({label_names[0]}) has images; a classifier needs at least two"
            )
        log.info("%s: reading %d images of %d classes", where, len(paths), len(classes))
        images = _load_files(paths, image_size=image_size, channels=channels, fit=fit, intensity=intensity)
    group_arr = np.asarray(groups, dtype=str)
    split = _complete_splits(
        label_idx,
        splits,
        group_arr,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        where=where,
    )
    _check_classes(classes, label_idx, split, where)
    meta = {
        "description": spec.get("description", f"user data set ({fmt}) from {spec['path']}"),
        "sources": [
            {
                "name": name,
                "path": str(spec["path"]),
                "format": fmt,
                "licence": spec.get("licence", "unknown (user data)"),
            }
        ],
        "params": {
            "image_size": image_size,
            "channels": channels,
            "seed": seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "fit": fit,
            "intensity": intensity,
        },
    }
    ds = ImageSet(images, label_idx, split, group_arr, classes, name=name, meta=meta)
    ds.meta["counts"] = ds.counts()
    ds.meta["n_images"] = len(ds.images)
    log.info(
        "%s: %d images (train %d, val %d, test %d), %d classes",
        where,
        len(ds.images),
        *(int((ds.split == s).sum()) for s in SPLITS),
        len(classes),
    )
    return ds
