"""The frequency grid of an image and the radial filters the edits and artifacts share (numpy only).

Frequencies are radii in cycles/pixel, ``f = sqrt(fy**2 + fx**2)`` with ``fftfreq`` on each axis, the grid
:mod:`shortcut_psd.spectral` bins its radial spectra on, so a cutoff here is the same number as a bin
centre on a PSD plot. Filters act on the periodic DFT of the image (no padding, no window). Also the
specs of the filter parameters (:class:`~shortcut_psd.registry.Param`) that several kinds share, and
Immerkaer's noise estimator (a fixed high-pass kernel), to choose ``nlm_denoise``'s ``sigma``.

No torch here: ``import shortcut_psd.edits`` / ``shortcut_psd.artifacts`` stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shortcut_psd.errors import DataError
from shortcut_psd.registry import Param

FILTERS = ("butterworth", "ideal")
MAX_RADIUS_CPP = float(np.sqrt(0.5))  # the corner of the frequency plane


def radius_cpp(height: int, width: int, *, half: bool = True) -> np.ndarray:
    """Radius in cycles/pixel of every bin of ``rfft2`` (``half=True``, shape (H, W//2+1)) or ``fft2``."""
    fy = np.fft.fftfreq(height)
    fx = np.fft.rfftfreq(width) if half else np.fft.fftfreq(width)
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


# -- filters ---------------------------------------------------------------------------------------------
# Written by hand rather than with skimage.filters.butterworth because the edits need a batch-vectorised
# filter (skimage filters one N-D array at a time and would mix the batch axis into the transform), ideal
# (brick-wall) filters and band-stop, and the same response for edits, artifacts and band-limited noise.
# The Butterworth response is the one skimage uses with squared_butterworth=True, whose
# cutoff_frequency_ratio (a fraction of the sampling frequency) equals cutoff_cpp; tests/test_edits.py
# checks the two agree.


def lowpass_response(radius: np.ndarray, cutoff_cpp: float, filter: str = "butterworth", order: float = 2.0):
    """Gain of a low-pass at radius ``radius`` (cycles/pixel).

    ``butterworth``: ``1 / (1 + (f / cutoff)**(2 order))`` (gain 1/2 at the cutoff; the Gonzalez & Woods
    form, i.e. skimage's ``squared_butterworth=True``); ``ideal``: 1 for ``f <= cutoff``, else 0.
    """
    if filter == "ideal":
        return (radius <= cutoff_cpp).astype(np.float64)
    return 1.0 / (1.0 + (radius / cutoff_cpp) ** (2.0 * order))


def highpass_response(radius: np.ndarray, cutoff_cpp: float, filter: str = "butterworth", order: float = 2.0):
    """``1 - lowpass`` (for Butterworth this equals ``1 / (1 + (cutoff / f)**(2 order))``)."""
    return 1.0 - lowpass_response(radius, cutoff_cpp, filter, order)


def bandpass_response(radius, f_lo_cpp, f_hi_cpp, filter="butterworth", order=2.0):
    """Pass ``f_lo <= f <= f_hi``: ideal mask, or Butterworth ``highpass(f_lo) * lowpass(f_hi)``."""
    if filter == "ideal":
        return ((radius >= f_lo_cpp) & (radius <= f_hi_cpp)).astype(np.float64)
    hp = highpass_response(radius, f_lo_cpp, filter, order) if f_lo_cpp > 0 else np.ones_like(radius)
    return hp * lowpass_response(radius, f_hi_cpp, filter, order)


def apply_response(images: np.ndarray, response: np.ndarray, *, keep_mean: bool = False) -> np.ndarray:
    """Multiply each image's ``rfft2`` (last two axes) by ``response`` (H, W//2+1); float32 result.

    ``keep_mean=True`` forces a gain of 1 at zero frequency, so each image keeps its mean brightness.
    """
    H, W = images.shape[-2:]
    resp = np.array(response, dtype=np.float64, copy=True)
    if keep_mean:
        resp[0, 0] = 1.0
    spec = np.fft.rfft2(images.astype(np.float64), axes=(-2, -1))
    out = np.fft.irfft2(spec * resp, s=(H, W), axes=(-2, -1))
    return out.astype(np.float32)


def check_images(images) -> np.ndarray:
    """Return ``images`` as float32 (N, C, H, W), raising DataError for another shape or NaN/inf."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4:
        raise DataError(f"images must be (N, C, H, W); got shape {arr.shape}")
    if arr.size and not np.isfinite(arr).all():
        raise DataError("images contain NaN or inf; fix the source data")
    return arr


def immerkaer_sigma(image: np.ndarray) -> float:
    """Noise std of a 2-D image (or (H, W, C), averaged over channels) by Immerkaer's method.

    J. Immerkaer, "Fast noise variance estimation", CVIU 64(2), 1996: ``sigma = sqrt(pi/2) / (6 (W-2)
    (H-2)) * sum |I * N|`` over the interior, with ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`` (the difference
    of two Laplacians, blind to locally linear image structure). No artifact uses it any more (it was
    nlm_denoise's); kept, and importable from :mod:`shortcut_psd.artifacts`, as a PyWavelets-free way to check how noisy a data set is (to choose ``nlm_denoise``'s ``sigma``).
    """
    img = image if image.ndim == 3 else image[..., None]
    c = img[1:-1, 1:-1]
    edges = img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:]
    corners = img[:-2, :-2] + img[:-2, 2:] + img[2:, :-2] + img[2:, 2:]
    conv = 4 * c - 2 * edges + corners
    h, w = img.shape[:2]
    per_channel = np.sqrt(np.pi / 2) * np.abs(conv).sum(axis=(0, 1)) / (6.0 * (w - 2) * (h - 2))
    return float(per_channel.mean())


# -- parameter specs shared by the filtering kinds --------------------------------------------------------
CPP = "cycles/pixel"
CUTOFF = Param(
    "float", "cut-off frequency (Butterworth gain 1/2 there)", lo=0, lo_open=True, hi=0.5, unit=CPP
)
F_LO = Param("float", "inner edge of the band", lo=0, hi=MAX_RADIUS_CPP, unit=CPP)
F_HI = Param(
    "float", "outer edge of the band (above f_lo_cpp)", lo=0, lo_open=True, hi=MAX_RADIUS_CPP, unit=CPP
)
FILTER = Param(
    "choice", "butterworth: gain 1/(1 + (f/cutoff)**(2 order)); ideal: brick wall", choices=FILTERS
)
ORDER = Param("float", "order of the Butterworth filter", lo=0, lo_open=True)
KEEP_MEAN = Param("bool", "keep each image's mean brightness (gain 1 at zero frequency)")


def band_is_ordered(p: dict[str, Any]) -> str | None:
    """Check across parameters: ``f_lo_cpp < f_hi_cpp``."""
    if p["f_lo_cpp"] < p["f_hi_cpp"]:
        return None
    return f"f_lo_cpp ({p['f_lo_cpp']}) must be below f_hi_cpp ({p['f_hi_cpp']})"
