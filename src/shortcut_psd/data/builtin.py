"""Built-in data sets cut from real images that ship inside installed packages (nothing is downloaded).

Three sets, each returned as an :class:`~shortcut_psd.data.store.ImageSet` of grey crops
``(N, 1, image_size, image_size)`` in ``[0, 1]``:

- ``photos`` (natural source): crops of the photos bundled with scikit-image, scikit-learn and
  matplotlib; label = which photo (instance discrimination). Each photo is cut into horizontal bands
  (train on top, then val, then test); a crop lies inside one band, so no crop overlaps another split.
  group = ``photo/band``.
- ``clinical`` (medical source): crops of the DICOM test files of pydicom and pydicom-data and of
  scikit-image's fundus and microscopy images; label = modality. Split by source image (group =
  ``file`` or ``file/frame``), every class has at least one image in train.
- ``brain_tissue`` (medical target): patches of nilearn's MNI152 T1 template labelled by the tissue at
  the patch's centre voxel (grey vs white matter probability > ``threshold``); split by slab of slices
  with a gap between slabs, so no two splits share tissue; group = a thin slab of ``group_slices``
  slices inside a split's slab (default: each sampled slice). Positive class (index 1) = ``white_matter``.

These are proxy tasks built to give the study real image statistics without a download; they are not
diagnostic tasks. Every image is loaded from the installed packages at run time; no copy is committed.

This module is the registry (:data:`BUILTINS`: name -> builder, whose keyword parameters are the set's
``params``); each set is built in its own module (:mod:`~shortcut_psd.data.photos`,
:mod:`~shortcut_psd.data.clinical`, :mod:`~shortcut_psd.data.brain_tissue`) from the shared pieces in
:mod:`~shortcut_psd.data.crops` and :mod:`~shortcut_psd.data.image_io`. A new built-in is a module with a
``build_<name>(image_size, *, ..., seed)`` function and an entry in :data:`BUILTINS`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from shortcut_psd.data.brain_tissue import BRAIN_CLASSES, build_brain_tissue
from shortcut_psd.data.clinical import CLINICAL_CLASSES, CLINICAL_SOURCES, build_clinical
from shortcut_psd.data.image_io import dicom_frames, robust_window, to_grey01
from shortcut_psd.data.photos import PHOTO_SOURCES, build_photos
from shortcut_psd.data.store import ImageSet
from shortcut_psd.errors import DataError

__all__ = [
    "BRAIN_CLASSES",
    "BUILTINS",
    "CLINICAL_CLASSES",
    "CLINICAL_SOURCES",
    "PHOTO_SOURCES",
    "build_brain_tissue",
    "build_builtin",
    "build_clinical",
    "build_photos",
    "builtin_defaults",
    "dicom_frames",
    "robust_window",
    "to_grey01",
]

BUILTINS: dict[str, Callable[..., ImageSet]] = {
    "photos": build_photos,
    "clinical": build_clinical,
    "brain_tissue": build_brain_tissue,
}


def builtin_defaults(name: str) -> dict[str, Any]:
    """The parameters of built-in set ``name`` with their defaults (read from the builder's signature)."""
    if name not in BUILTINS:
        raise DataError(f"unknown built-in data set {name!r}; choose one of {sorted(BUILTINS)}")
    params = inspect.signature(BUILTINS[name]).parameters
    out = {}
    for key, p in params.items():
        default = p.default
        out[key] = list(default) if isinstance(default, tuple) else default
    return out


def build_builtin(name: str, **params: Any) -> ImageSet:
    """Build built-in set ``name``; unknown parameters raise :class:`DataError` naming them."""
    defaults = builtin_defaults(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise DataError(
            f"built-in data set {name!r} has no parameters {unknown}; it takes {sorted(defaults)}"
        )
    start = time.perf_counter()
    ds = BUILTINS[name](**params)
    ds.meta["build_seconds"] = round(time.perf_counter() - start, 2)
    return ds
