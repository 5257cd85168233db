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
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------
# Small shared helpers
# ------------------------------------------------------------------------------------------------


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def to_grey01(img: np.ndarray) -> np.ndarray:
    """A 2-D float32 image in ``[0, 1]`` from a grey ``(H, W)`` or RGB(A) ``(H, W, 3|4)`` array.

    Integer images are scaled by their dtype's maximum; RGB becomes luminance
    (``0.2125 R + 0.7154 G + 0.0721 B``, scikit-image's ``rgb2gray``); an alpha channel is dropped.
    """
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    out = img_as_float(img)
    if out.ndim == 3 and out.shape[-1] == 3:
        out = rgb2gray(out)
    if out.ndim != 2:
        raise DataError(f"expected a grey (H, W) or RGB (H, W, 3) image; got shape {img.shape}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def robust_window(img: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray | None:
    """Map the ``percentiles`` of ``img`` to 0 and 1 and clip (float32); ``None`` if the image is flat."""
    img = np.asarray(img, dtype=np.float64)
    lo, hi = np.percentile(img, percentiles)
    if not hi > lo:
        return None
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    if tuple(img.shape) == tuple(shape):
        return img.astype(np.float32)
    out = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True, mode="reflect")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _downscale(img: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` (>= 1) with anti-aliasing; 1 returns the image unchanged."""
    if factor < 1:
        raise DataError(f"downscale factor must be >= 1 (only shrinking is allowed); got {factor}")
    if factor == 1:
        return img
    h, w = img.shape
    return _resize(img, (max(1, round(h / factor)), max(1, round(w / factor))))


def _grid(length: int, size: int, stride: int) -> np.ndarray:
    """Start offsets of windows of ``size`` every ``stride`` that fit in ``length`` (empty if none)."""
    if length < size:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - size + 1, stride, dtype=np.int64)


def _crops(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Square crops ``img[y:y+size, x:x+size]`` for paired offsets ``ys``, ``xs`` -> ``(n, size, size)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    if len(ys) == 0:
        return np.zeros((0, size, size), dtype=np.float32)
    windows = sliding_window_view(img, (size, size))
    return np.ascontiguousarray(windows[ys, xs], dtype=np.float32)


def _grid_crops(
    img: np.ndarray,
    size: int,
    stride: int,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """All grid crops of ``img`` lying inside the row range ``rows`` and column range ``cols``."""
    r0, r1 = rows if rows is not None else (0, img.shape[0])
    c0, c1 = cols if cols is not None else (0, img.shape[1])
    ys = _grid(r1 - r0, size, stride) + r0
    xs = _grid(c1 - c0, size, stride) + c0
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return _crops(img, yy.ravel(), xx.ravel(), size)


def _check_fractions(val_fraction: float, test_fraction: float) -> dict[str, float]:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) "
            "and sum to less than 1"
        )
    return {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}


def _bands(height: int, fractions: dict[str, float]) -> dict[str, tuple[int, int]]:
    """Split ``height`` rows into consecutive bands train, val, test (top to bottom) by ``fractions``."""
    edges = np.round(np.cumsum([0.0] + [fractions[s] for s in SPLITS]) * height).astype(int)
    edges[-1] = height
    return {s: (int(edges[i]), int(edges[i + 1])) for i, s in enumerate(SPLITS)}


def _keep_mask(crops: np.ndarray, min_std: float, max_background: float | None) -> np.ndarray:
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


def _assemble(
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


# ------------------------------------------------------------------------------------------------
# photos: natural source, instance discrimination
# ------------------------------------------------------------------------------------------------


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        out = getattr(skimage.data, name)()
        return out[0] if isinstance(out, tuple) else out  # stereo_motorcycle: (left, right, disparity)

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("RGB"))


_SKIMAGE_URL = "https://scikit-image.org/docs/stable/api/skimage.data.html"
#: (class name, loader, package, licence) of every natural photo; the licence text is the package's own.
PHOTO_SOURCES: list[tuple[str, Callable[[], np.ndarray], str, str]] = [
    ("astronaut", _skimage("astronaut"), "scikit-image", "public domain (NASA)"),
    ("coffee", _skimage("coffee"), "scikit-image", "CC0 (Rachel Michetti)"),
    ("chelsea", _skimage("chelsea"), "scikit-image", "CC0 (Stefan van der Walt)"),
    ("rocket", _skimage("rocket"), "scikit-image", "public domain (SpaceX)"),
    ("hubble_deep_field", _skimage("hubble_deep_field"), "scikit-image", "public domain (NASA)"),
    ("camera", _skimage("camera"), "scikit-image", "CC0 (Lav Varshney)"),
    ("coins", _skimage("coins"), "scikit-image", "no known copyright restrictions (Brooklyn Museum)"),
    ("moon", _skimage("moon"), "scikit-image", "scikit-image sample data (no licence stated)"),
    ("clock", _skimage("clock"), "scikit-image", "public domain (Stefan van der Walt)"),
    ("motorcycle", _skimage("stereo_motorcycle"), "scikit-image", "Middlebury stereo 2014 (left view)"),
    ("grass", _skimage("grass"), "scikit-image", "CC0"),
    ("gravel", _skimage("gravel"), "scikit-image", "CC0 (CC0Textures)"),
    ("brick", _skimage("brick"), "scikit-image", "CC0 (CC0Textures)"),
    ("china", _sklearn("china.jpg"), "scikit-learn", "CC-BY 2.0 (danielbuechele)"),
    ("flower", _sklearn("flower.jpg"), "scikit-learn", "CC-BY 2.0 (vultilion)"),
    ("grace_hopper", _grace_hopper, "matplotlib", "public domain (U.S. Navy photograph)"),
]


def build_photos(
    image_size: int = 32,
    *,
    downscale: float = 2.0,
    stride: int | None = None,
    crops_per_image: int | None = 400,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    min_std: float = 0.02,
    seed: int = 0,
) -> ImageSet:
    """Grey crops of the photos bundled with scikit-image, scikit-learn and matplotlib.

    Each photo is turned grey, shrunk by ``downscale`` (anti-aliased, so a crop holds more structure;
    less for a small photo, so that its thinnest band still holds two crops) and cut across its longer
    side into bands: the first ``1 - val_fraction - test_fraction`` for train (top or left), the next
    ``val_fraction`` for val, the last ``test_fraction`` for test. Crops of ``image_size`` pixels are
    taken on a grid every ``stride`` pixels (default ``image_size // 2``) inside one band, so no two
    splits share a pixel. Crops with std < ``min_std`` (sky, blank background) are dropped.
    ``crops_per_image`` caps the crops per photo (split between bands in proportion to their
    fractions, a seeded random subset), which keeps the classes roughly balanced; ``None`` keeps all.

    Label = which photo (16 classes where all load). group = ``photo/band``.
    """
    stride = stride or max(1, image_size // 2)
    fractions = _check_fractions(val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    parts: list[tuple[np.ndarray, int, str, str]] = []
    classes: list[str] = []
    sources: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for name, load, package, licence in PHOTO_SOURCES:
        try:
            raw = load()
        except Exception as exc:  # a loader that would need pooch or a download: skip, say why
            log.warning("photos: skipping %s (%s: %s)", name, type(exc).__name__, exc)
            skipped.append({"name": name, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        grey = to_grey01(raw)
        # Never shrink so far that the thinnest band cannot hold two crops side by side.
        thinnest = min(f for f in fractions.values() if f > 0) * max(grey.shape)
        factor = max(1.0, min(downscale, thinnest / (image_size + stride)))
        img = _downscale(grey, factor)
        long_axis = int(img.shape[1] > img.shape[0])  # bands run across the longer side
        label = len(classes)
        kept_any = False
        for split, band in _bands(img.shape[long_axis], fractions).items():
            crops = _grid_crops(img, image_size, stride, *((band, None) if long_axis == 0 else (None, band)))
            crops = crops[_keep_mask(crops, min_std, None)]
            if crops_per_image is not None:
                cap = math.ceil(crops_per_image * fractions[split])
                if len(crops) > cap:
                    crops = crops[np.sort(rng.choice(len(crops), cap, replace=False))]
            parts.append((crops, label, split, f"{name}/{split}"))
            kept_any |= len(crops) > 0
        if not kept_any:
            skipped.append(
                {"name": name, "reason": f"no crop of {image_size} px after downscale {downscale}"}
            )
            parts = [p for p in parts if p[1] != label]
            continue
        classes.append(name)
        sources.append(
            {
                "name": name,
                "package": package,
                "version": _package_version(package),
                "licence": licence,
                "shape": list(np.shape(raw)),
                "downscale": round(factor, 3),
                "bands_along": "rows" if long_axis == 0 else "columns",
            }
        )
    meta = {
        "description": "Grey crops of photos bundled with scikit-image, scikit-learn and matplotlib; "
        "label = which photo (instance discrimination). Splits are bands across the longer side of "
        "each photo (train, then val, then test).",
        "task": "instance discrimination (proxy pre-training task)",
        "sources": sources,
        "skipped": skipped,
        "params": {
            "image_size": image_size,
            "downscale": downscale,
            "stride": stride,
            "crops_per_image": crops_per_image,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "min_std": min_std,
            "seed": seed,
        },
    }
    return _assemble("photos", parts, classes, meta)


# ------------------------------------------------------------------------------------------------
# clinical: medical source, label = modality
# ------------------------------------------------------------------------------------------------


def _frame_item(ds: Any, frame: int, sequence: str) -> Any:
    """The item of functional-group ``sequence`` for ``frame`` of an enhanced (multi-frame) DICOM."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq is not None and len(seq) > index and sequence in seq[index]:
            return seq[index][sequence][0]
    return None


def _first(value: Any) -> float:
    """The first value of a possibly multi-valued DICOM number (WindowCenter can list several)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    return float(value)


def dicom_frames(
    path: str | Path,
    *,
    window: str = "dicom",
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> list[np.ndarray]:
    """Every frame of a DICOM file as a 2-D float32 image in ``[0, 1]``, decoded with numpy alone.

    Steps: refuse compressed transfer syntaxes (they need decoder plugins); grey data go through the
    modality LUT (rescale slope/intercept, also from an enhanced file's functional groups); PALETTE
    COLOR goes through its LUT and YBR to RGB, then RGB to luminance. Each frame is then mapped to
    ``[0, 1]`` and clipped: with ``window="dicom"`` by the file's own display window (first
    WindowCenter/WindowWidth, or the frame's VOI LUT item) where it has one, else (and always for
    colour data and ``window="percentile"``) so that its ``percentiles`` map to 0 and 1 (a robust
    min-max). MONOCHROME1 is inverted so that high attenuation is bright. Constant frames are dropped.
    Raises :class:`DataError` naming the file.
    """
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space

    if window not in ("dicom", "percentile"):
        raise DataError(f"DICOM window must be 'dicom' or 'percentile'; got {window!r}")
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable DICOM file ({exc})") from exc
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        raise DataError(
            f"{path}: pixel data are compressed ({syntax.name}) and need a decoder plugin; "
            "only uncompressed DICOM is read"
        )
    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM file has no pixel data")
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise DataError(f"{path}: pixel data cannot be decoded ({exc})") from exc
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    grey = photometric in ("MONOCHROME1", "MONOCHROME2")
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    elif photometric.startswith("YBR"):
        arr = convert_color_space(arr, photometric, "RGB")
    frames = arr if n_frames > 1 else arr[None]
    out = []
    for f, frame in enumerate(frames):
        frame = np.asarray(frame)
        if not grey:
            windowed = robust_window(to_grey01(frame), percentiles)
        else:
            frame = np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)
            transform = _frame_item(ds, f, "PixelValueTransformationSequence")
            if "RescaleSlope" not in ds and transform is not None:
                frame = frame * float(transform.get("RescaleSlope", 1)) + float(
                    transform.get("RescaleIntercept", 0)
                )
            voi = ds if "WindowCenter" in ds else _frame_item(ds, f, "FrameVOILUTSequence")
            if window == "dicom" and voi is not None and "WindowCenter" in voi and "WindowWidth" in voi:
                centre, width = _first(voi.WindowCenter), _first(voi.WindowWidth)
                windowed = np.clip((frame - (centre - width / 2)) / max(width, 1e-6), 0.0, 1.0).astype(
                    np.float32
                )
                if windowed.max() <= windowed.min():
                    windowed = None
            else:
                windowed = robust_window(frame, percentiles)
        if windowed is None:
            continue
        out.append(1.0 - windowed if photometric == "MONOCHROME1" else windowed)
    return out


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
        return [to_grey01(_skimage(name)())]

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
    fractions = _check_fractions(val_fraction, test_fraction)
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
                bands = _bands(scale_img.shape[0], fractions) if split_by == "band" else {None: None}
                for band, rows in bands.items():
                    crops = _grid_crops(scale_img, image_size, stride, rows)
                    crops = crops[_keep_mask(crops, min_std, max_background)]
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
                "version": _package_version(package),
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
    return _assemble("clinical", parts, classes, meta)


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
        out.append(_resize(img, shape))
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


# ------------------------------------------------------------------------------------------------
# brain_tissue: medical target, grey vs white matter
# ------------------------------------------------------------------------------------------------

_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
BRAIN_CLASSES = ["grey_matter", "white_matter"]  # positive class (index 1) = white matter


def _mni152() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """T1, grey- and white-matter probability volumes of nilearn's MNI152 template (1 mm), same grid."""
    from nilearn import datasets

    t1_img = datasets.load_mni152_template(resolution=1)
    gm_img = datasets.load_mni152_gm_template(resolution=1)
    wm_img = datasets.load_mni152_wm_template(resolution=1)
    for label, img in (("grey matter", gm_img), ("white matter", wm_img)):
        if img.shape != t1_img.shape or not np.allclose(img.affine, t1_img.affine):
            raise DataError(f"nilearn's MNI152 {label} template is not on the T1 template's grid")
    info = {"shape": list(t1_img.shape), "affine": np.asarray(t1_img.affine).tolist()}
    return (
        np.asarray(t1_img.get_fdata(dtype=np.float32)),
        np.asarray(gm_img.get_fdata(dtype=np.float32)),
        np.asarray(wm_img.get_fdata(dtype=np.float32)),
        info,
    )


def _slices_first(vol: np.ndarray, axis: str) -> np.ndarray:
    """Volume ``(n_slices, rows, cols)`` for slicing along ``axis``, displayed top = superior/anterior.

    The template's voxel axes are RAS (x right, y anterior, z superior); in each plane the second
    in-plane axis becomes rows, reversed, and the first becomes columns.
    """
    moved = np.moveaxis(vol, _AXES[axis], 0)  # (n, a, b)
    return np.ascontiguousarray(np.swapaxes(moved, 1, 2)[:, ::-1, :])


def _slabs(
    labelled: np.ndarray, order: Sequence[str], widths: Sequence[float], gap: int
) -> list[tuple[str, int, int]]:
    """Consecutive slabs ``(split, first, stop)`` along the slices, ``gap`` slices apart, slab ``i``
    holding about ``widths[i]`` of the labelled patch centres that the slabs keep (``labelled`` counts
    them per slice). Gaps are taken out between slabs, not out of them, so a thin slab survives."""
    nonzero = np.flatnonzero(labelled)
    if len(nonzero) == 0:
        raise DataError("brain_tissue: no patch centre is labelled; lower threshold or image_size")
    first, last = int(nonzero[0]), int(nonzero[-1])
    kept = int(labelled.sum())
    out: list[tuple[str, int, int]] = []
    for _ in range(20):  # fixed point: the gaps' patches are not kept, so targets shrink a little
        out, z = [], first
        for i, split in enumerate(order):
            if i == len(order) - 1:
                out.append((split, z, last + 1))
                break
            cumulative = np.cumsum(labelled[z : last + 1])
            stop = z + int(np.searchsorted(cumulative, widths[i] * kept)) + 1
            out.append((split, z, stop))
            z = stop + gap
        new_kept = int(sum(labelled[z0:z1].sum() for _, z0, z1 in out if z1 > z0))
        if new_kept == kept:
            break
        kept = new_kept
    if any(z1 <= z0 or labelled[z0:z1].sum() == 0 for _, z0, z1 in out):
        raise DataError(f"brain_tissue: gap {gap} leaves an empty slab ({out}); lower gap or stride")
    return out


def build_brain_tissue(
    image_size: int = 32,
    *,
    stride: int = 8,
    slice_step: int = 4,
    group_slices: int | None = None,
    axis: str = "axial",
    slabs: tuple[float, float, float] = (0.6, 0.2, 0.2),
    order: tuple[str, ...] = ("train", "val", "test"),
    gap: int | None = None,
    threshold: float = 0.5,
    seed: int = 0,
) -> ImageSet:
    """Patches of nilearn's MNI152 T1 template (1 mm) labelled grey vs white matter.

    A patch is ``image_size`` pixels square in one slice along ``axis`` (``axial``, ``coronal`` or
    ``sagittal``), its centre voxel (row and column ``image_size // 2`` of the patch) on a grid every
    ``stride`` voxels, in every ``slice_step``-th slice. Label: ``white_matter`` (1, the positive class)
    if the centre voxel's white-matter probability exceeds ``threshold``, ``grey_matter`` (0) if its
    grey-matter probability does, otherwise the patch is skipped (CSF, background, mixed voxels).
    Intensities are the template's own (already in ``[0, 1]``), not rescaled per patch.

    Split by slab: the slices along ``axis`` are cut into consecutive slabs (from its low end:
    inferior, posterior or left), one per entry of ``order``, each holding its split's fraction of
    ``slabs`` = (train, val, test) of the labelled patches (a split named twice in ``order`` shares
    its fraction equally). ``gap`` slices (default ``image_size // 2``), centred on each cut, are left
    out, so no two splits share tissue. ``meta`` holds the slab ranges and the class balance per split.

    Groups: each split's slab is cut, from its first slice, into groups of ``group_slices`` consecutive
    slices (default ``slice_step``: every sampled slice is its own group), named
    ``{axis}_{split}_slab_{first:03d}-{last:03d}`` (slice range of the group, inclusive, clipped to the
    slab). Patches in a slice overlap (shifted by ``stride`` of ``image_size`` px: 75% by default), so
    they are not independent units; a group of whole slices is the smallest sensible unit to resample.
    Trade-off: neighbouring groups are only ``slice_step`` slices apart and still show correlated tissue
    (the same smooth anatomy), so intervals that resample groups are still somewhat optimistic; a
    larger ``group_slices`` gives fewer, less correlated groups (wider, more honest intervals, but
    resampling becomes unstable with very few groups); ``group_slices`` >= the slab thickness gives one
    group per slab. The grouping changes no image, label or split. ``seed`` is unused (the set is
    deterministic) and kept for a uniform signature.
    """
    if axis not in _AXES:
        raise DataError(f"brain_tissue: axis must be one of {list(_AXES)}; got {axis!r}")
    if len(slabs) != 3 or min(slabs) <= 0 or not math.isclose(sum(slabs), 1.0, abs_tol=1e-6):
        raise DataError(f"brain_tissue: slabs must be three positive fractions summing to 1; got {slabs}")
    if set(order) != set(SPLITS) or len(order) < 3:
        raise DataError(f"brain_tissue: order must name each of {list(SPLITS)} at least once; got {order}")
    if not 0 < threshold < 1:
        raise DataError(f"brain_tissue: threshold must be in (0, 1); got {threshold}")
    if group_slices is None:
        group_slices = slice_step
    if isinstance(group_slices, bool) or not isinstance(group_slices, (int, np.integer)) or group_slices < 1:
        raise DataError(
            f"brain_tissue: group_slices (slices per group) must be an integer >= 1; got {group_slices!r}"
        )
    group_slices = int(group_slices)
    gap = image_size // 2 if gap is None else int(gap)
    t1, gm, wm, info = _mni152()
    t1, gm, wm = (_slices_first(v, axis) for v in (t1, gm, wm))
    t1 = np.clip(t1, 0.0, 1.0)
    n_slices, rows, cols = t1.shape
    half = image_size // 2
    centres_r = _grid(rows, image_size, stride) + half
    centres_c = _grid(cols, image_size, stride) + half
    if len(centres_r) == 0 or len(centres_c) == 0:
        raise DataError(f"brain_tissue: image_size {image_size} is larger than the template's slices")
    rr, cc = np.meshgrid(centres_r, centres_c, indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()

    labelled = ((gm[:, rr, cc] > threshold) | (wm[:, rr, cc] > threshold)).sum(axis=1)
    slab_list = _slabs(labelled, order, [slabs[SPLITS.index(s)] / order.count(s) for s in order], gap)

    parts: list[tuple[np.ndarray, int, str, str]] = []
    balance: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        balance[split] = dict.fromkeys(BRAIN_CLASSES, 0)
    for split, z0, z1 in slab_list:
        # (group, crops of one slice) per label, in slice order; parts are cut per (label, group) in the
        # same order, so the images come out in the same order whatever group_slices is
        by_label: dict[int, list[tuple[str, np.ndarray]]] = {0: [], 1: []}
        for z in range(z0, z1, slice_step):
            g0 = z0 + (z - z0) // group_slices * group_slices
            group = f"{axis}_{split}_slab_{g0:03d}-{min(g0 + group_slices, z1) - 1:03d}"
            is_wm = wm[z, rr, cc] > threshold
            is_gm = (gm[z, rr, cc] > threshold) & ~is_wm
            for label, mask in ((1, is_wm), (0, is_gm)):
                if mask.any():
                    crops = _crops(t1[z], rr[mask] - half, cc[mask] - half, image_size)
                    by_label[label].append((group, crops))
        for label, pieces in by_label.items():
            for group in dict.fromkeys(g for g, _ in pieces):
                crops = np.concatenate([c for g, c in pieces if g == group])
                parts.append((crops, label, split, group))
            balance[split][BRAIN_CLASSES[label]] += int(sum(len(c) for _, c in pieces))
    meta = {
        "description": "Patches of nilearn's MNI152 T1 template (1 mm) labelled by the tissue at the "
        "centre voxel (grey vs white matter probability > threshold); split by slab of slices with "
        "a gap between slabs. A proxy target task on one population-average brain, not a diagnosis.",
        "task": "grey vs white matter (binary; positive class 1 = white_matter)",
        "positive_class": "white_matter",
        "sources": [
            {
                "name": "MNI152 T1 template + GM/WM probability templates (nilearn)",
                "package": "nilearn",
                "version": _package_version("nilearn"),
                "licence": "nilearn lists the template's licence as 'unknown'; loaded from the installed "
                "package at run time, no copy is distributed",
                **info,
            }
        ],
        "slabs": [{"split": s, "first_slice": z0, "last_slice": z1 - 1} for s, z0, z1 in slab_list],
        "class_balance": balance,
        "params": {
            "image_size": image_size,
            "stride": stride,
            "slice_step": slice_step,
            "group_slices": group_slices,
            "axis": axis,
            "slabs": list(slabs),
            "order": list(order),
            "gap": gap,
            "threshold": threshold,
            "seed": seed,
        },
    }
    return _assemble("brain_tissue", parts, list(BRAIN_CLASSES), meta)


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------

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
