"""The registry of users' data formats (:data:`FORMATS`): each format's path kind, options and loader.

- ``imagefolder`` (a folder): ``path/<class>/<image>`` or, with split folders, ``path/<split>/<class>/<image>``
  (``split`` in train, val, test; train must exist). Classes are the sorted folder names unless the
  ``classes`` option fixes their order. Without split folders each image is its own group.
- ``csv`` (a file): a manifest with columns ``path`` (relative to the manifest's folder, or absolute),
  ``label``, optional ``split`` and optional ``group`` (patient). ``columns`` maps other column names onto
  these. Paths may not leave the manifest's folder (``..``, absolute paths elsewhere) unless
  ``allow_outside`` is true (given beside ``path`` in the config, not under ``params``).
- ``npz`` (a file): ``train_images``, ``train_labels``, optional ``val_*`` and ``test_*`` (MedMNIST).
  Images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``; labels ``(N,)`` or ``(N, 1)`` class indices.

Every format also takes the options of :data:`~shortcut_psd.data.format_base.COMMON_OPTIONS` (``classes``,
``fit``, ``intensity``, ``licence``, ``description``). Images are read and converted by
:mod:`shortcut_psd.data.image_io`; splits the data do not give are drawn by
:func:`~shortcut_psd.data.user.load_user_dataset`.

Adding a format: write its loader here (``loader(path, options, read) -> Loaded``, raising
:class:`~shortcut_psd.errors.DataError` naming the file) and add a :class:`Format` to :data:`FORMATS`; the
config checks (:func:`check_format_config`), the data rule and the loader pick it up from here. Its name
must also be in the ``format`` enum of the config schema (``tests/test_data_formats.py`` checks they agree).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.data.format_base import (
    COMMON_OPTIONS,
    Format,
    Loaded,
    Option,
    Read,
    check_config,
    check_options,
    load_files,
    spec_from_config,
)
from shortcut_psd.data.image_io import IMAGE_EXTENSIONS, array_images, resize_batch
from shortcut_psd.data.store import SPLITS
from shortcut_psd.errors import ConfigError, DataError

# ------------------------------------------------------------------------------------------------
# imagefolder
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


def load_imagefolder(root: Path, options: dict[str, Any], read: Read) -> Loaded:
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
    return load_files(paths, labels, splits, groups, options, read)


# ------------------------------------------------------------------------------------------------
# csv
# ------------------------------------------------------------------------------------------------


def load_csv(manifest: Path, options: dict[str, Any], read: Read) -> Loaded:
    import pandas as pd

    if not manifest.is_file():
        raise DataError(f"manifest {manifest} does not exist")
    names = {"path": "path", "label": "label", "split": "split", "group": "group"}
    names.update(options["columns"] or {})
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
    allow_outside = bool(options["allow_outside"])
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
    return load_files(paths, labels, splits, groups, options, read)


# ------------------------------------------------------------------------------------------------
# npz
# ------------------------------------------------------------------------------------------------


def load_npz(path: Path, options: dict[str, Any], read: Read) -> Loaded:
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
            x = array_images(x, f"{path} '{split}_images'", read.intensity)
            y = _npz_labels(y, len(x), f"{path} '{split}_labels'")
            images.append(resize_batch(x, read.image_size, read.channels, read.fit))
            labels.append(y)
            splits += [split] * len(x)
            groups += [f"{split}/{i}" for i in range(len(x))]
    label_arr = np.concatenate(labels)
    n_classes = int(label_arr.max()) + 1
    if options["classes"] is not None:
        classes = [str(c) for c in options["classes"]]
        if n_classes > len(classes):
            raise DataError(f"{read.where}: label {n_classes - 1} has no name in classes {classes}")
    else:
        classes = [str(k) for k in range(n_classes)]
    return Loaded(np.concatenate(images), label_arr, classes, splits, groups)


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


# ------------------------------------------------------------------------------------------------
# The registry
# ------------------------------------------------------------------------------------------------

#: every user data format, by name (the config schema's ``format`` enum lists the same names, plus builtin)
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "imagefolder",
            "folder",
            "folder of class sub-folders",
            load_imagefolder,
            "path/<class>/<image> or path/<split>/<class>/<image>",
        ),
        Format(
            "csv",
            "file",
            "CSV manifest",
            load_csv,
            "manifest with columns path, label, optional split and group",
            COMMON_OPTIONS
            + (
                Option("columns", "columns", None, "manifest column names of path, label, split, group"),
                Option(
                    "allow_outside", "bool", False, "let paths leave the manifest's folder", top_level=True
                ),
            ),
        ),
        Format(
            "npz",
            "file",
            "NPZ file",
            load_npz,
            "MedMNIST layout: train_images, train_labels, optional val_* and test_*",
        ),
    )
}


def get_format(fmt: Any, key: str | None = None) -> Format:
    """The format named ``fmt``; unknown: ConfigError naming config key ``key``, or DataError without."""
    if isinstance(fmt, str) and fmt in FORMATS:
        return FORMATS[fmt]
    if key is None:
        raise DataError(f"unknown data set format {fmt!r}; use one of {list(FORMATS)}")
    raise ConfigError(f"config key '{key}': unknown data format {fmt!r}. Known: {', '.join(FORMATS)}")


def check_format_options(fmt: str, options: Mapping[str, Any], key: str) -> None:
    """Check the options of format ``fmt`` given under config key ``key`` (a data set's ``params``): known
    names (top-level ones such as ``allow_outside`` are refused here) and valid values. Raises ConfigError."""
    check_options(get_format(fmt, key), options, key)


def check_format_config(entry: Mapping[str, Any], key: str, *, workdir: str | os.PathLike = ".") -> None:
    """Check a config's data set entry of a user format (``entry``: its ``format``, ``path``, ``params``,
    ``allow_outside``; ``key``: e.g. ``datasets.mine``; paths relative to ``workdir``): the path is given,
    exists and is the format's kind of path (file or folder), and the options are the format's, with valid
    values. Raises :class:`~shortcut_psd.errors.ConfigError` naming the key."""
    check_config(get_format(entry.get("format"), f"{key}.format"), entry, key, workdir)


def user_spec(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A config's data set entry of a user format -> the spec that
    :func:`~shortcut_psd.data.user.load_user_dataset` reads (options from ``params`` and top-level keys)."""
    return spec_from_config(get_format(entry.get("format")), entry)
