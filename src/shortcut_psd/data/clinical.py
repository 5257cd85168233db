"""Built-in ``clinical`` (medical source): grey crops of the DICOM test files of pydicom and pydicom-data
and of scikit-image's fundus and microscopy images; label = modality.

Split by source image (group = ``file`` or ``file/frame``), every class has at least one image in train.
DICOM decoding and windowing are :func:`~shortcut_psd.data.image_io.dicom_frames`. Every image is loaded
from the installed packages at run time; no copy is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shortcut_psd.data.crops import (
    assemble,
    check_fractions,
    grid_crops,
    keep_mask,
    package_version,
    resize01,
    skimage_sample,
    split_bands,
)
from shortcut_psd.data.image_io import dicom_frames, to_grey01
from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError

log = logging.getLogger(__name__)


def _dicom_loader(filename: str) -> Callable[..., list[np.ndarray]]:
    def load(**kwargs: Any) -> list[np.ndarray]:
        from pydicom.data import get_testdata_file

        path = get_testdata_file(filename, download=False)  # download=False: never touch the network
        if path is None:
            raise DataError(f"{filename} is not installed (pydicom / pydicom-data)")
        try:
            return dicom_frames(path, **kwargs)
        except DataError as exc:  # name the file, not this machine's install path
            raise DataError(str(exc).replace(str(path), filename)) from None

    return load


def _skimage_grey(name: str) -> Callable[..., list[np.ndarray]]:
    def load(**_: Any) -> list[np.ndarray]:
        return [to_grey01(skimage_sample(name)())]

    return load


#: Modality classes of the clinical set, in label order.
CLINICAL_CLASSES = ["CR", "CT", "MR", "US", "NM", "fundus", "microscopy"]
_PYDICOM = ("pydicom", "MIT (pydicom test data)")
_PYDICOM_DATA = ("pydicom-data", "MIT (pydicom-data)")
#: (source name, class, loader, package, licence) of every clinical image.
CLINICAL_SOURCES: list[tuple[str, str, Callable[..., list[np.ndarray]], str, str]] = [
    ("RG1_UNCI", "CR", _dicom_loader("RG1_UNCI.dcm"), *_PYDICOM_DATA),  # chest, MONOCHROME1
    ("RG3_UNCI", "CR", _dicom_loader("RG3_UNCI.dcm"), *_PYDICOM_DATA),  # extremity, MONOCHROME1
    ("MR2_UNCI", "MR", _dicom_loader("MR2_UNCI.dcm"), *_PYDICOM_DATA),  # shoulder
    ("MR-SIEMENS-DICOM-WithOverlays", "MR", _dicom_loader("MR-SIEMENS-DICOM-WithOverlays.dcm"), *_PYDICOM),
    ("emri_small", "MR", _dicom_loader("emri_small.dcm"), *_PYDICOM),  # 10 frames
    ("MR_small", "MR", _dicom_loader("MR_small.dcm"), *_PYDICOM),
    ("693_UNCI", "CT", _dicom_loader("693_UNCI.dcm"), *_PYDICOM_DATA),  # head
    ("explicit_VR-UN", "CT", _dicom_loader("explicit_VR-UN.dcm"), *_PYDICOM),  # JPEG 2000: skipped
    ("eCT_Supplemental", "CT", _dicom_loader("eCT_Supplemental.dcm"), *_PYDICOM),  # 2 frames
    ("CT_small", "CT", _dicom_loader("CT_small.dcm"), *_PYDICOM),
    ("US1_UNCI", "US", _dicom_loader("US1_UNCI.dcm"), *_PYDICOM_DATA),  # RGB
    ("OBXXXX1A", "US", _dicom_loader("OBXXXX1A.dcm"), *_PYDICOM),  # palette colour
    ("gdcm-US-ALOKA-16", "US", _dicom_loader("gdcm-US-ALOKA-16.dcm"), *_PYDICOM),  # 16-bit palette
    ("JPEG2000_UNC", "NM", _dicom_loader("JPEG2000_UNC.dcm"), *_PYDICOM),  # whole-body bone scan
    ("retina", "fundus", _skimage_grey("retina"), "scikit-image", "CC0 (Wikimedia, Häggström)"),
    ("microaneurysms", "fundus", _skimage_grey("microaneurysms"), "scikit-image", "CC0 (Andreas Maier)"),
    (
        "immunohistochemistry",
        "microscopy",
        _skimage_grey("immunohistochemistry"),
        "scikit-image",
        "no known copyright restrictions (CMMI)",
    ),
    ("cell", "microscopy", _skimage_grey("cell"), "scikit-image", "CC0"),
]


def _assign_groups(
    sizes: dict[str, int], fractions: dict[str, float], rng: np.random.Generator
) -> dict[str, str]:
    """Assign the groups of one class to splits: the largest goes to train, each next (largest first,
    ties in seeded random order) to the split furthest below its target share of the class's crops."""
    names = list(sizes)
    order = sorted(rng.permutation(len(names)), key=lambda i: -sizes[names[i]])
    total = sum(sizes.values())
    have = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for rank, i in enumerate(order):
        name = names[i]
        if rank == 0:
            split = "train"
        else:
            split = max(SPLITS, key=lambda s: (fractions[s] * total - have[s], s == "train"))
        out[name] = split
        have[split] += sizes[name]
    return out


def build_clinical(
    image_size: int = 32,
    *,
    stride: int | None = None,
    short_sides: Sequence[int] = (128, 256),
    split_by: str = "image",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    window: str = "dicom",
    percentiles: tuple[float, float] = (0.5, 99.5),
    min_std: float = 0.04,
    max_background: float = 0.5,
    crops_per_image: int | None = 400,
    seed: int = 0,
) -> ImageSet:
    """Grey crops of clinical images bundled with pydicom, pydicom-data and scikit-image.

    Classes (label order): CR, CT, MR, US, NM (nuclear medicine), fundus, microscopy (histology and
    cell microscopy). Each DICOM frame is decoded with numpy alone (see :func:`dicom_frames`: modality
    LUT, palette and RGB to grey, MONOCHROME1 inverted) and mapped to ``[0, 1]`` by the file's own
    display window (``window="dicom"``; a percentile window over the whole CT range leaves soft tissue
    flat) or, where it has none or ``window="percentile"``, by its ``percentiles``; the scikit-image
    images are scaled by their dtype.
    Several scales: every image (frame) is shrunk, anti-aliased, so its shorter side is each of
    ``short_sides`` pixels; an image already shorter is used once at its own size. Crops of
    ``image_size`` every ``stride`` (default ``image_size // 2``) pixels; crops with std < ``min_std``
    or more than ``max_background`` of pixels at 0 or 1 (background, collimation) are dropped.
    ``crops_per_image`` caps the crops per image (seeded random subset); ``None`` keeps all.

    ``split_by="image"`` (default): group = ``file`` or ``file/frame``; groups are assigned to splits
    per class (the largest to train, then by deficit against the fractions), so every class is in
    train, and classes with one image (NM) are in train only. ``split_by="band"``: each image is cut
    into train/val/test horizontal bands (top to bottom), group = ``file[/frame]/band``; every class
    reaches val, but val/test come from the same images as train, and a class whose images end in
    background (MR, NM) can miss test. Files that need decoders beyond numpy are skipped
    and listed in ``meta["skipped"]``.
    """
    if split_by not in ("image", "band"):
        raise DataError(f"clinical: split_by must be 'image' or 'band'; got {split_by!r}")
    stride = stride or max(1, image_size // 2)
    fractions = check_fractions(val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    per_group: dict[str, list[tuple[np.ndarray, str | None]]] = {}  # group -> [(crops, band split)]
    group_class: dict[str, str] = {}
    sources: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for name, cls, load, package, licence in CLINICAL_SOURCES:
        try:
            frames = load(window=window, percentiles=percentiles)
        except Exception as exc:
            log.warning("clinical: skipping %s (%s)", name, exc)
            skipped.append({"name": name, "reason": str(exc)})
            continue
        n_before = len(per_group)
        for f, frame in enumerate(frames):
            group = name if len(frames) == 1 else f"{name}/frame{f:03d}"
            pieces = []
            for scale_img in _scales(frame, short_sides, image_size):
                bands = split_bands(scale_img.shape[0], fractions) if split_by == "band" else {None: None}
                for band, rows in bands.items():
                    crops = grid_crops(scale_img, image_size, stride, rows)
                    crops = crops[keep_mask(crops, min_std, max_background)]
                    pieces.append((crops, band))
            if crops_per_image is not None:
                pieces = _cap_pieces(pieces, crops_per_image, rng)
            if sum(len(c) for c, _ in pieces):
                per_group[group] = pieces
                group_class[group] = cls
        if len(per_group) == n_before:
            skipped.append({"name": name, "reason": "no crop passed the contrast filters"})
            continue
        sources.append(
            {
                "name": name,
                "class": cls,
                "package": package,
                "version": package_version(package),
                "licence": licence,
                "frames": len(frames),
            }
        )
    classes = [c for c in CLINICAL_CLASSES if c in group_class.values()]
    parts: list[tuple[np.ndarray, int, str, str]] = []
    for label, cls in enumerate(classes):
        groups = [g for g in per_group if group_class[g] == cls]
        if split_by == "image":
            sizes = {g: sum(len(c) for c, _ in per_group[g]) for g in groups}
            assignment = _assign_groups(sizes, fractions, rng)
            for g in groups:
                parts.append((np.concatenate([c for c, _ in per_group[g]]), label, assignment[g], g))
        else:
            for g in groups:
                for split in SPLITS:
                    crops = [c for c, band in per_group[g] if band == split]
                    if crops:
                        parts.append((np.concatenate(crops), label, split, f"{g}/{split}"))
    meta = {
        "description": "Grey crops of clinical images bundled with pydicom, pydicom-data and "
        "scikit-image; label = imaging modality (a RadImageNet-like proxy task).",
        "task": "modality classification (proxy pre-training task)",
        "sources": sources,
        "skipped": skipped,
        "params": {
            "image_size": image_size,
            "stride": stride,
            "short_sides": list(short_sides),
            "split_by": split_by,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "window": window,
            "percentiles": list(percentiles),
            "min_std": min_std,
            "max_background": max_background,
            "crops_per_image": crops_per_image,
            "seed": seed,
        },
    }
    return assemble("clinical", parts, classes, meta)


def _scales(img: np.ndarray, short_sides: Sequence[int], image_size: int) -> list[np.ndarray]:
    """``img`` shrunk so its shorter side is each of ``short_sides`` (never enlarged; duplicates once)."""
    out, seen = [], set()
    short = min(img.shape)
    for side in sorted(short_sides):
        factor = max(1.0, short / side)
        shape = (max(1, round(img.shape[0] / factor)), max(1, round(img.shape[1] / factor)))
        if shape in seen or min(shape) < image_size:
            continue
        seen.add(shape)
        out.append(resize01(img, shape))
    return out


def _cap_pieces(
    pieces: list[tuple[np.ndarray, str | None]], cap: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, str | None]]:
    total = sum(len(c) for c, _ in pieces)
    if total <= cap:
        return pieces
    keep = np.zeros(total, dtype=bool)
    keep[rng.choice(total, cap, replace=False)] = True
    out, start = [], 0
    for crops, band in pieces:
        out.append((crops[keep[start : start + len(crops)]], band))
        start += len(crops)
    return out
