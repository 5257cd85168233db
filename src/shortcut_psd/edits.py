"""Source edits: frequency-domain changes to source images before pre-training.

Definitions: docs/DEFINITIONS.md, "Source edits".

A registry like timm's (:class:`shortcut_psd.registry.Registry`): ``EDITS`` maps a name to a function
``fn(images, **params) -> images``, registered with a spec of each parameter and its spectral signature;
configs name an edit and its parameters, :func:`apply_edit` checks and runs it. Images are float32
``(N, C, H, W)`` in ``[0, 1]``; every edit is deterministic, works on each image and channel separately
(vectorised over the batch), and clips its output to ``[0, 1]``. To add an edit, register a function here.

Frequencies are radii in cycles/pixel, as in :mod:`shortcut_psd.spectral`; the filters are those of
:mod:`shortcut_psd.freqgrid`, shared with the artifacts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shortcut_psd.freqgrid import (
    CUTOFF,
    F_HI,
    F_LO,
    FILTER,
    FILTERS,
    KEEP_MEAN,
    MAX_RADIUS_CPP,
    ORDER,
    apply_response,
    band_is_ordered,
    bandpass_response,
    check_images,
    highpass_response,
    lowpass_response,
    radius_cpp,
)
from shortcut_psd.registry import Param, Registry

EDITS = Registry("edit")
_LOWPASS_PARAMS = {"cutoff_cpp": CUTOFF, "filter": FILTER, "order": ORDER}


@EDITS.register("none", signature="none")
def none(images: np.ndarray) -> np.ndarray:
    """No edit: the images unchanged."""
    return images.copy()


@EDITS.register(
    "whiten",
    signature="a flat (white) power spectrum for strength=1; the natural ~1/f**2 fall-off of photographs "
    "is tilted by f**(2 strength).",
    params={
        "strength": Param("float", "1: full whitening, 0: none", lo=0, hi=1),
        "eps": Param("float", "guards the division, relative to the mean amplitude", lo=0, lo_open=True),
    },
)
def whiten(images: np.ndarray, *, strength: float = 1.0, eps: float = 1e-8) -> np.ndarray:
    """Spectral whitening: flatten each image's Fourier amplitude, keep its phase.

    Per image and channel: subtract the mean, ``F = rfft2(x)``, ``F <- F / (|F| + eps * mean|F|)**strength``
    (so the new amplitude is ``|F|**(1 - strength)``: ``strength=1`` is full whitening, 0 none),
    inverse transform, then restore the image's original mean and standard deviation and clip to [0, 1].
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


@EDITS.register(
    "lowpass",
    signature="power above the cutoff removed (ideal) or rolled off as f**(-4 order).",
    params=_LOWPASS_PARAMS,
)
def lowpass(
    images: np.ndarray, *, cutoff_cpp: float = 0.15, filter: str = "butterworth", order: float = 2.0
) -> np.ndarray:
    """Low-pass: keep frequencies below ``cutoff_cpp`` (cycles/pixel).

    ``filter`` ``butterworth`` (gain ``1/(1+(f/cutoff)**(2 order))``, 1/2 at the cutoff) or ``ideal``
    (brick wall). The mean brightness is kept (gain 1 at zero frequency).
    """
    resp = lowpass_response(radius_cpp(*images.shape[-2:]), cutoff_cpp, filter, order)
    return apply_response(images, resp)


@EDITS.register(
    "highpass",
    signature="power below the cutoff removed except the mean.",
    params={**_LOWPASS_PARAMS, "keep_mean": KEEP_MEAN},
)
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
    """
    resp = highpass_response(radius_cpp(*images.shape[-2:]), cutoff_cpp, filter, order)
    return apply_response(images, resp, keep_mean=keep_mean)


@EDITS.register(
    "bandstop",
    signature="a notch in the radial spectrum between the two edges.",
    params={"f_lo_cpp": F_LO, "f_hi_cpp": F_HI, "filter": FILTER, "order": ORDER, "keep_mean": KEEP_MEAN},
    checks=[band_is_ordered],
)
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
    """
    resp = 1.0 - bandpass_response(radius_cpp(*images.shape[-2:]), f_lo_cpp, f_hi_cpp, filter, order)
    return apply_response(images, resp, keep_mean=keep_mean)


# -- the registry's functions under their old names (registry_defaults, merge_params and describe take any
# Registry; ``what`` is kept for callers and ignored: the registry names its own kinds) -------------------


def registry_defaults(registry: Registry, kind: str, what: str = "") -> dict[str, Any]:
    """Keyword-only parameters of ``registry[kind]`` with their defaults; ConfigError for unknown kinds."""
    return registry.defaults(kind)


def merge_params(registry: Registry, kind: str, params: Mapping[str, Any], what: str = "") -> dict[str, Any]:
    """Defaults of ``kind`` updated by ``params``; ConfigError naming the allowed names for unknown ones."""
    return registry.merge(kind, params)


def describe(registry: Registry, kind: str, what: str = "") -> str:
    """What ``kind`` does, its parameters (from their specs) and its spectral signature."""
    return registry.describe(kind)


def edit_kinds() -> list[str]:
    """Names of the registered source edits."""
    return EDITS.kinds()


def edit_defaults(kind: str) -> dict[str, Any]:
    """Parameter names of edit ``kind`` and their defaults (ConfigError for an unknown kind)."""
    return EDITS.defaults(kind)


def check_edit_params(kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``params`` for edit ``kind`` (names and values); return them merged with the defaults."""
    return EDITS.check(kind, params)


def describe_edit(kind: str) -> str:
    """Text describing edit ``kind``: what it does, its parameters, its spectral signature."""
    return EDITS.describe(kind)


def apply_edit(kind: str, images: np.ndarray, **params: Any) -> np.ndarray:
    """Apply edit ``kind`` with ``params`` to float32 (N, C, H, W) images in [0, 1]; clipped to [0, 1]."""
    merged = check_edit_params(kind, params)
    arr = check_images(images)
    out = EDITS[kind](arr, **merged)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


__all__ = [
    "EDITS",
    "FILTERS",
    "MAX_RADIUS_CPP",
    "apply_edit",
    "apply_response",
    "bandpass_response",
    "check_edit_params",
    "check_images",
    "describe",
    "describe_edit",
    "edit_defaults",
    "edit_kinds",
    "highpass_response",
    "lowpass_response",
    "merge_params",
    "registry_defaults",
]
