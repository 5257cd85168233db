"""The one on-disk format for a prepared data set (``data.npz``), shared by every stage.

An :class:`ImageSet` holds

- ``images``: float32 array ``(N, C, H, W)`` with values in ``[0, 1]`` (C = 1 for grey, 3 for RGB);
- ``labels``: int64 ``(N,)``, indices into ``classes``;
- ``split``: str ``(N,)``, one of ``train``, ``val``, ``test``;
- ``group``: str ``(N,)``, the unit that never crosses splits (source photo, DICOM file, slab, patient);
- ``classes``: the class names, in label order;
- ``meta``: JSON-serialisable facts (sources, licences, parameters) shown on the data card.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.errors import DataError
from shortcut_psd.io import save_npz

SPLITS = ("train", "val", "test")


@dataclass
class ImageSet:
    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    group: np.ndarray
    classes: list[str]
    name: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.split = np.asarray(self.split).astype(str)
        self.group = np.asarray(self.group).astype(str)
        self.classes = [str(c) for c in self.classes]
        self.validate()

    # -- checks -----------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`DataError` naming the first inconsistency found."""
        where = f"data set '{self.name}'"
        if self.images.ndim != 4:
            raise DataError(f"{where}: images must be (N, C, H, W); got shape {self.images.shape}")
        n = len(self.images)
        for key in ("labels", "split", "group"):
            arr = getattr(self, key)
            if arr.shape != (n,):
                raise DataError(f"{where}: '{key}' has shape {arr.shape}, expected ({n},)")
        if n and not np.isfinite(self.images).all():
            bad = int(np.flatnonzero(~np.isfinite(self.images).reshape(n, -1).all(1))[0])
            raise DataError(
                f"{where}: image {bad} (group '{self.group[bad]}') contains NaN or inf; "
                "fix or remove it in the source data"
            )
        if n and (self.images.min() < 0 or self.images.max() > 1):
            raise DataError(
                f"{where}: pixel values must lie in [0, 1]; got [{self.images.min():.3g}, {self.images.max():.3g}]"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise DataError(f"{where}: labels must index classes {self.classes}")
        unknown = set(np.unique(self.split)) - set(SPLITS)
        if unknown:
            raise DataError(f"{where}: unknown split names {sorted(unknown)}; use {list(SPLITS)}")
        for g in np.unique(self.group):
            in_splits = np.unique(self.split[self.group == g])
            if len(in_splits) > 1:
                raise DataError(
                    f"{where}: group '{g}' appears in splits {list(in_splits)}; a group must stay in one split"
                )

    # -- views ------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of one split."""
        idx = self.indices(split)
        return self.images[idx], self.labels[idx]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class: ``{split: {class: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for s in SPLITS:
            mask = self.split == s
            out[s] = {c: int(((self.labels == k) & mask).sum()) for k, c in enumerate(self.classes)}
        return out


def save_imageset(path: str | os.PathLike, ds: ImageSet) -> None:
    """Write ``ds`` to ``path`` (npz, atomically)."""
    ds.validate()
    save_npz(
        path,
        images=ds.images,
        labels=ds.labels,
        split=ds.split,
        group=ds.group,
        classes=np.asarray(ds.classes),
        name=np.asarray(ds.name),
        meta=np.asarray(json.dumps(ds.meta)),
    )


def load_imageset(path: str | os.PathLike) -> ImageSet:
    """Read a data set written by :func:`save_imageset`; a missing or damaged file names itself."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"prepared data set {path} does not exist; run the workflow's data rule to build it")
    try:
        with np.load(path, allow_pickle=False) as z:
            return ImageSet(
                images=z["images"],
                labels=z["labels"],
                split=z["split"],
                group=z["group"],
                classes=list(z["classes"]),
                name=str(z["name"]),
                meta=json.loads(str(z["meta"])),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(
            f"prepared data set {path} is damaged or incomplete ({exc}); delete it and rerun"
        ) from exc
