"""Users' own data sets -> ImageSet: ``load_user_dataset(spec, image_size=..., channels=..., seed=..., ...)``.

``spec["format"]`` names a format of the registry :data:`~shortcut_psd.data.formats.FORMATS` (imagefolder,
csv, npz: see :mod:`shortcut_psd.data.formats` for each layout and its options), ``spec["path"]`` what to
read; the other keys are the format's options (``classes``, ``fit``, ``intensity``, ``licence``,
``description``; csv also ``columns`` and ``allow_outside``) and an optional ``name``.

Splits missing from the data are made from the images left, by group (patient) when there is one,
seeded, stratified by class: no group ever lands in two splits. Every image is converted to ``channels``
(grey = luminance; grey to RGB = replicate), resized to ``image_size`` square (anti-aliased bilinear,
``fit``: ``stretch`` or ``crop`` the centre square first) and scaled to ``[0, 1]`` (``intensity``:
``dtype`` divides integers by their type's maximum and requires floats to lie in ``[0, 1]``; ``minmax``
and ``percentile`` (0.5 to 99.5) rescale each image) by :mod:`shortcut_psd.data.image_io`. DICOM files
(``.dcm``) are read with numpy alone and windowed by their own display window (else by percentiles).
Bad input raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.data.format_base import Read, resolve_options
from shortcut_psd.data.formats import FORMATS, get_format
from shortcut_psd.data.image_io import IMAGE_EXTENSIONS, read_image
from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError

__all__ = ["FORMATS", "IMAGE_EXTENSIONS", "load_user_dataset", "read_image", "split_by_group"]

log = logging.getLogger(__name__)


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

    ``spec`` keys: ``format`` (a name in :data:`~shortcut_psd.data.formats.FORMATS`), ``path``, optional
    ``name`` and the format's options: ``classes`` (label order; the positive class of a binary task is
    index 1), ``fit`` (stretch, crop), ``intensity`` (dtype, minmax, percentile), ``licence``,
    ``description``; csv also ``columns`` (e.g. ``{"path": "file", "group": "patient_id"}``) and
    ``allow_outside``. A config's data set entry becomes such a spec with
    :func:`~shortcut_psd.data.formats.user_spec`.
    """
    if not isinstance(spec, dict) or "format" not in spec or "path" not in spec:
        raise DataError(f"a user data set needs 'format' ({', '.join(FORMATS)}) and 'path'; got {spec!r}")
    form = get_format(spec["format"])
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3; got {channels}")
    if image_size < 1:
        raise DataError(f"image_size must be positive; got {image_size}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(f"val_fraction {val_fraction} + test_fraction {test_fraction} must be below 1")
    where = f"data set {spec['path']}"
    options = resolve_options(form, spec, where)
    name = str(spec.get("name") or Path(spec["path"]).stem)

    read = Read(image_size, channels, options["fit"], options["intensity"], where)
    loaded = form.loader(Path(spec["path"]), options, read)
    classes, label_idx = loaded.classes, loaded.labels
    group_arr = np.asarray(loaded.groups, dtype=str)
    split = _complete_splits(
        label_idx,
        loaded.splits,
        group_arr,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        where=where,
    )
    _check_classes(classes, label_idx, split, where)
    description = options["description"]
    meta = {
        "description": description
        if description is not None
        else f"user data set ({form.name}) from {spec['path']}",
        "sources": [
            {
                "name": name,
                "path": str(spec["path"]),
                "format": form.name,
                "licence": options["licence"],
            }
        ],
        "params": {
            "image_size": image_size,
            "channels": channels,
            "seed": seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "fit": read.fit,
            "intensity": read.intensity,
        },
    }
    ds = ImageSet(loaded.images, label_idx, split, group_arr, classes, name=name, meta=meta)
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
