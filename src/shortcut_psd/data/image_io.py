"""Shared image I/O: image files and arrays -> float32 images in ``[0, 1]``, grey or RGB, at a square size.

One place for what the built-in data sets, users' data formats (:mod:`shortcut_psd.data.formats`) and the
``shortcut-psd`` command (:mod:`shortcut_psd.cli`) do to pixels:

- reading: :func:`read_image` (Pillow for the common formats, :func:`dicom_frames` for uncompressed
  ``.dcm``: every frame, windowed), :func:`array_images` for stacks of images stored in arrays (NPZ);
- value range: :func:`to_unit_range` (``intensity``: ``dtype`` divides integers by their type's maximum
  and requires floats to lie in ``[0, 1]``; ``minmax`` and ``percentile`` (0.5 to 99.5) rescale each
  image), :func:`robust_window`;
- colour: :func:`to_grey01` (RGB to luminance, ``0.2125 R + 0.7154 G + 0.0721 B``, scikit-image's
  ``rgb2gray``), :func:`to_channels` (grey to RGB replicates);
- size: :func:`fit_square` (``fit``: ``stretch``, or ``crop`` the centre square first; anti-aliased
  bilinear), :func:`resize_batch` for arrays.

Only numpy is imported at module level (scikit-image, Pillow and pydicom when used), so the command's
``--help`` stays fast. Bad input raises :class:`~shortcut_psd.errors.DataError` naming the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.errors import DataError

__all__ = [
    "FITS",
    "IMAGE_EXTENSIONS",
    "INTENSITIES",
    "array_images",
    "dicom_frames",
    "fit_square",
    "prepare_image",
    "read_image",
    "read_images",
    "resize_batch",
    "robust_window",
    "to_channels",
    "to_grey01",
    "to_nchw",
    "to_unit_range",
]

log = logging.getLogger(__name__)

#: file extensions :func:`read_image` reads (``.dcm`` through pydicom, the rest through Pillow)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".dcm")
#: how :func:`to_unit_range` maps values to ``[0, 1]``
INTENSITIES = ("dtype", "minmax", "percentile")
#: how :func:`fit_square` makes an image square
FITS = ("stretch", "crop")
#: scikit-image's ``rgb2gray`` weights
LUMINANCE = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# Grey conversion and windowing
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# DICOM
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


# ------------------------------------------------------------------------------------------------
# Files and arrays -> [0, 1]
# ------------------------------------------------------------------------------------------------


def to_unit_range(arr: np.ndarray, intensity: str, where: str) -> np.ndarray:
    """float32 in ``[0, 1]`` from an image array (or a stack of them, for ``dtype``), per ``intensity``."""
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
    uncompressed ``.dcm`` (windowed as in :func:`dicom_frames`; a file with several usable frames is
    refused, not guessed). A missing, truncated, corrupt or non-image file raises :class:`DataError`
    naming it.
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
    return to_unit_range(arr, intensity, str(path))


# ------------------------------------------------------------------------------------------------
# Size and channels
# ------------------------------------------------------------------------------------------------


def fit_square(img: np.ndarray, image_size: int, fit: str) -> np.ndarray:
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


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` -> ``(channels, H, W)``: luminance for grey, replication for RGB."""
    if img.ndim == 2:
        return np.repeat(img[None], channels, axis=0)
    if channels == 3:
        return np.moveaxis(img, -1, 0)
    grey = img @ LUMINANCE
    return grey[None]


def prepare_image(img: np.ndarray, image_size: int, channels: int, fit: str) -> np.ndarray:
    """An image from :func:`read_image` -> float32 ``(channels, image_size, image_size)``."""
    return to_channels(fit_square(img, image_size, fit), channels).astype(np.float32)


def read_images(
    paths: Sequence[Path], *, image_size: int, channels: int, fit: str, intensity: str
) -> np.ndarray:
    """Image files -> float32 ``(N, channels, image_size, image_size)`` in ``[0, 1]``."""
    images = np.empty((len(paths), channels, image_size, image_size), dtype=np.float32)
    for i, p in enumerate(paths):
        images[i] = prepare_image(read_image(p, intensity=intensity), image_size, channels, fit)
        if i and i % 1000 == 0:
            log.info("read %d / %d images", i, len(paths))
    return images


# ------------------------------------------------------------------------------------------------
# Stacks of images in arrays (NPZ)
# ------------------------------------------------------------------------------------------------


def array_images(x: np.ndarray, where: str, intensity: str = "dtype") -> np.ndarray:
    """A stack of images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (C in 1, 3; channels last
    where both could be) -> ``(N, H, W)`` or ``(N, H, W, 3)`` float32 in ``[0, 1]`` (see
    :func:`to_unit_range`; ``dtype`` maps the whole stack at once, the others each image)."""
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
        return to_unit_range(x, "dtype", where)
    return np.stack([to_unit_range(im, intensity, f"{where}[{i}]") for i, im in enumerate(x)])


def to_nchw(x: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` or ``(N, H, W, C)`` -> contiguous ``(N, C, H, W)`` (no conversion of values)."""
    return np.ascontiguousarray(x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1))


def resize_batch(x: np.ndarray, image_size: int, channels: int, fit: str) -> np.ndarray:
    """``(N, H, W[, 3])`` in [0, 1] -> ``(N, channels, image_size, image_size)``, resized in chunks."""
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
            out[start : start + step, 0] = chunk @ LUMINANCE
    return out
