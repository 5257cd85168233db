"""Source edits: frequency-domain changes to source images before pre-training.

Definitions: docs/DEFINITIONS.md, "Source edits".

A registry like timm's: ``EDITS`` maps a name to a function ``fn(images, **params) -> images``; configs
name an edit and its parameters, :func:`apply_edit` checks and runs it. Images are float32 ``(N, C, H, W)``
in ``[0, 1]``; every edit is deterministic, works on each image and channel separately (vectorised over
the batch), and clips its output to ``[0, 1]``.

Frequencies are radii in cycles/pixel, ``f = sqrt(fy**2 + fx**2)`` with ``fftfreq`` on each axis, exactly
as in :mod:`shortcut_psd.spectral`, so a cutoff here is the same number as a bin centre on a PSD plot.
Filters act on the periodic DFT of the image (no padding, no window).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.spectral import radius_cpp

FILTERS = ("butterworth", "ideal")
MAX_RADIUS_CPP = float(np.sqrt(0.5))  # the corner of the frequency plane

EDITS: dict[str, Callable[..., np.ndarray]] = {}


def _register(name: str):
    def deco(fn):
        EDITS[name] = fn
        return fn

    return deco


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


# -- checks ----------------------------------------------------------------------------------------------


def check_filter(filter: str, order: float) -> None:
    if filter not in FILTERS:
        raise ConfigError(f"filter={filter!r} is not one of {list(FILTERS)}")
    if not (isinstance(order, (int, float)) and order > 0):
        raise ConfigError(f"order must be a positive number; got {order!r}")


def check_cutoff(name: str, value: float, *, hi: float = 0.5, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and (0 <= value if allow_zero else 0 < value) and value <= hi
    if not ok:
        lo = "0 <=" if allow_zero else "0 <"
        raise ConfigError(f"{name} must satisfy {lo} {name} <= {hi:.3g} cycles/pixel; got {value!r}")


def check_band(f_lo_cpp: float, f_hi_cpp: float) -> None:
    check_cutoff("f_lo_cpp", f_lo_cpp, hi=MAX_RADIUS_CPP, allow_zero=True)
    check_cutoff("f_hi_cpp", f_hi_cpp, hi=MAX_RADIUS_CPP)
    if not f_lo_cpp < f_hi_cpp:
        raise ConfigError(f"f_lo_cpp ({f_lo_cpp}) must be below f_hi_cpp ({f_hi_cpp})")


def check_images(images) -> np.ndarray:
    """Return ``images`` as float32 (N, C, H, W), raising DataError for another shape or NaN/inf."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4:
        raise DataError(f"images must be (N, C, H, W); got shape {arr.shape}")
    if arr.size and not np.isfinite(arr).all():
        raise DataError("images contain NaN or inf; fix the source data")
    return arr


# -- edits -----------------------------------------------------------------------------------------------


@_register("none")
def none(images: np.ndarray) -> np.ndarray:
    """No edit: the images unchanged.

    Spectral signature: none.
    """
    return images.copy()


@_register("whiten")
def whiten(images: np.ndarray, *, strength: float = 1.0, eps: float = 1e-8) -> np.ndarray:
    """Spectral whitening: flatten each image's Fourier amplitude, keep its phase.

    Per image and channel: subtract the mean, ``F = rfft2(x)``, ``F <- F / (|F| + eps * mean|F|)**strength``
    (so the new amplitude is ``|F|**(1 - strength)``: ``strength=1`` is full whitening, 0 none),
    inverse transform, then restore the image's original mean and standard deviation and clip to [0, 1].

    Parameters: ``strength`` in [0, 1]; ``eps`` (> 0) guards the division, relative to the mean amplitude.
    Spectral signature: a flat (white) power spectrum for ``strength=1``; the natural ~1/f**2 fall-off of
    photographs is tilted by ``f**(2 strength)``.
    """
    x = images.astype(np.float64)
    H, W = x.shape[-2:]
    mean = x.mean(axis=(-2, -1), keepdims=True)
    std = x.std(axis=(-2, -1), keepdims=True)
    spec = np.fft.rfft2(x - mean, axes=(-2, -1))
    amp = np.abs(spec)
    guard = eps * amp.mean(axis=(-2, -1), keepdims=True) + np.finfo(np.float64).tiny
    out = np.fft.irfft2(spec / (amp + guard) ** strength, s=(H, W), axes=(-2, -1))
    out_std = out.std(axis=(-2, -1), keepdims=True)
    out = (out - out.mean(axis=(-2, -1), keepdims=True)) / np.where(out_std > 0, out_std, 1.0)
    return (out * std + mean).astype(np.float32)


@_register("lowpass")
def lowpass(
    images: np.ndarray, *, cutoff_cpp: float = 0.15, filter: str = "butterworth", order: float = 2.0
) -> np.ndarray:
    """Low-pass: keep frequencies below ``cutoff_cpp`` (cycles/pixel).

    Parameters: ``cutoff_cpp`` in (0, 0.5]; ``filter`` ``butterworth`` (gain ``1/(1+(f/cutoff)**(2 order))``,
    1/2 at the cutoff) or ``ideal`` (brick wall); ``order`` of the Butterworth filter.
    Spectral signature: power above the cutoff removed (ideal) or rolled off as ``f**(-4 order)``.
    The mean brightness is kept (gain 1 at zero frequency).
    """
    resp = lowpass_response(radius_cpp(*images.shape[-2:]), cutoff_cpp, filter, order)
    return apply_response(images, resp)


@_register("highpass")
def highpass(
    images: np.ndarray,
    *,
    cutoff_cpp: float = 0.15,
    filter: str = "butterworth",
    order: float = 2.0,
    keep_mean: bool = True,
) -> np.ndarray:
    """High-pass: remove frequencies below ``cutoff_cpp`` (cycles/pixel), gain ``1 - lowpass``.

    Parameters as for ``lowpass``; ``keep_mean`` (default true) keeps each image's mean brightness (gain 1
    at zero frequency) so the result is not centred on 0 and then clipped away.
    Spectral signature: power below the cutoff removed except the mean.
    """
    resp = highpass_response(radius_cpp(*images.shape[-2:]), cutoff_cpp, filter, order)
    return apply_response(images, resp, keep_mean=keep_mean)


@_register("bandstop")
def bandstop(
    images: np.ndarray,
    *,
    f_lo_cpp: float = 0.1,
    f_hi_cpp: float = 0.25,
    filter: str = "butterworth",
    order: float = 2.0,
    keep_mean: bool = True,
) -> np.ndarray:
    """Band-stop: remove the annulus ``f_lo_cpp <= f <= f_hi_cpp`` (cycles/pixel).

    Gain ``1 - bandpass`` with bandpass the ideal annulus or Butterworth ``highpass(f_lo) * lowpass(f_hi)``.
    ``keep_mean`` as for ``highpass`` (matters when ``f_lo_cpp = 0``).
    Spectral signature: a notch in the radial spectrum between the two edges.
    """
    resp = 1.0 - bandpass_response(radius_cpp(*images.shape[-2:]), f_lo_cpp, f_hi_cpp, filter, order)
    return apply_response(images, resp, keep_mean=keep_mean)


def _validate_edit(kind: str, p: dict[str, Any]) -> None:
    if kind == "whiten":
        if not (isinstance(p["strength"], (int, float)) and 0 <= p["strength"] <= 1):
            raise ConfigError(f"whiten: strength must be in [0, 1]; got {p['strength']!r}")
        if not (isinstance(p["eps"], (int, float)) and p["eps"] > 0):
            raise ConfigError(f"whiten: eps must be > 0; got {p['eps']!r}")
    if kind in ("lowpass", "highpass"):
        check_cutoff("cutoff_cpp", p["cutoff_cpp"])
    if kind == "bandstop":
        check_band(p["f_lo_cpp"], p["f_hi_cpp"])
    if "filter" in p:
        check_filter(p["filter"], p["order"])


# -- registry helpers (shared with artifacts.py) -----------------------------------------------------------


def registry_defaults(registry: dict[str, Callable], kind: str, what: str) -> dict[str, Any]:
    """Keyword-only parameters of ``registry[kind]`` with their defaults; ConfigError for unknown kinds."""
    if kind not in registry:
        raise ConfigError(f"unknown {what} {kind!r}; choose one of {sorted(registry)}")
    sig = inspect.signature(registry[kind])
    return {n: p.default for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def merge_params(registry, kind: str, params: dict[str, Any], what: str) -> dict[str, Any]:
    """Defaults of ``kind`` updated by ``params``; ConfigError naming the allowed names for unknown ones."""
    defaults = registry_defaults(registry, kind, what)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = sorted(defaults) or "none"
        raise ConfigError(f"{what} {kind!r} has no parameter(s) {unknown}; allowed: {allowed}")
    return {**defaults, **params}


def describe(registry, kind: str, what: str) -> str:
    """The function's docstring, dedented: what it does, its parameters and its spectral signature."""
    registry_defaults(registry, kind, what)
    return inspect.cleandoc(registry[kind].__doc__ or "")


def edit_kinds() -> list[str]:
    """Names of the registered source edits."""
    return sorted(EDITS)


def edit_defaults(kind: str) -> dict[str, Any]:
    """Parameter names of edit ``kind`` and their defaults (ConfigError for an unknown kind)."""
    return registry_defaults(EDITS, kind, "edit")


def check_edit_params(kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``params`` for edit ``kind`` (names and values); return them merged with the defaults."""
    merged = merge_params(EDITS, kind, dict(params or {}), "edit")
    _validate_edit(kind, merged)
    return merged


def describe_edit(kind: str) -> str:
    """Text describing edit ``kind``: what it does, its parameters, its spectral signature."""
    return describe(EDITS, kind, "edit")


def apply_edit(kind: str, images: np.ndarray, **params: Any) -> np.ndarray:
    """Apply edit ``kind`` with ``params`` to float32 (N, C, H, W) images in [0, 1]; clipped to [0, 1]."""
    merged = check_edit_params(kind, params)
    arr = check_images(images)
    out = EDITS[kind](arr, **merged)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
