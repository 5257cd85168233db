"""Artifacts: label-correlated "shortcuts" injected into target images (docs/DEFINITIONS.md, "Artifacts").

A registry like timm's: ``ARTIFACTS`` maps a name to ``fn(images, rng, **params) -> (clean, artifacted)``;
:func:`apply_artifact` checks the parameters, seeds the generator and runs it. ``clean`` is what every
image gets anyway (for ``photon_noise`` the baseline-dose noise; the unchanged images for the others) and
``artifacted`` the artifact version, so the artifact is exactly ``artifacted - clean`` and its PSD
(:func:`shortcut_psd.gradients.artifact_psd`) compares directly with a gradient PSD. Images are float32
``(N, C, H, W)`` in ``[0, 1]``; outputs are clipped to ``[0, 1]``; results depend only on the inputs, the
parameters and ``seed``. Frequencies are in cycles/pixel, as in :mod:`shortcut_psd.spectral`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shortcut_psd.edits import (
    FILTERS,
    apply_response,
    bandpass_response,
    check_band,
    check_cutoff,
    check_filter,
    check_images,
    describe,
    lowpass_response,
    merge_params,
    registry_defaults,
)
from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.spectral import radius_cpp

ARTIFACTS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {}
#: per kind: is its ``clean`` output the input images themselves? (False for ``photon_noise``, whose clean
#: images carry the baseline-dose noise.) The workflow shares one p = 0 model among the artifacts whose
#: clean images are the raw data and trains a p = 0 model on its own clean images for each of the others
#: (``shortcut_psd.config.shares_clean_model``; docs/DEFINITIONS.md, "Baselines").
CLEAN_IS_RAW: dict[str, bool] = {}
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
DOMAINS = ("image", "sinogram")

# 5 x 7 pixel glyphs (1 = ink), drawn by the ``tag`` artifact.
GLYPHS: dict[str, np.ndarray] = {
    name: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    for name, rows in {
        "R": ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
        "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
        "square": ["#####", "#####", "#####", "#####", "#####", "#####", "#####"],
    }.items()
}


def _register(name: str, *, clean_is_raw: bool = True):
    def deco(fn):
        ARTIFACTS[name] = fn
        CLEAN_IS_RAW[name] = clean_is_raw
        return fn

    return deco


@_register("photon_noise", clean_is_raw=False)
def photon_noise(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    baseline_dose: float = 1e4,
    dose_fraction: float = 0.25,
    domain: str = "image",
    n_angles: int | None = None,
    path_attenuation: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Quantum (Poisson) noise of a reduced dose, on top of the baseline-dose noise every image gets.

    ``domain="image"``: a pixel of value ``x`` collects ``Poisson(baseline_dose * x)`` photons; ``clean`` is
    ``counts / baseline_dose``. The reduced dose keeps each of those photons with probability
    ``dose_fraction`` (binomial thinning, which is exactly Poisson at the lower dose and shares the clean
    image's photons), ``artifacted = kept / (dose_fraction * baseline_dose)``. Noise variance ``x / dose``.

    ``domain="sinogram"`` (CT-like texture): each channel is zero-padded to a square of side S, forward
    projected with ``skimage.transform.radon`` over ``n_angles`` angles (default S) in [0, 180), and read as
    attenuation with ``mu = path_attenuation / S`` per pixel at value 1 (a full-width path of value-1 pixels
    attenuates by ``exp(-path_attenuation)``). A detector bin receives ``Poisson(baseline_dose *
    exp(-mu p))`` photons (baseline), thinned by ``dose_fraction`` for the artifact; the noisy line
    integrals ``-log(counts / dose) / mu`` minus the noiseless ones are reconstructed by filtered
    back-projection (``iradon``, ramp filter) and added to the image, so the image keeps its resolution and
    only the noise carries the CT texture.

    Parameters: ``baseline_dose`` photons per pixel at value 1 (image) or per unattenuated detector bin
    (sinogram), > 0; ``dose_fraction`` in (0, 1]; ``domain`` ``image`` | ``sinogram``; ``n_angles``
    (sinogram; None = image side); ``path_attenuation`` (sinogram), > 0.
    Spectral signature: image domain: white (flat) noise, its level set by the dose difference; sinogram
    domain: ramp-filtered noise, power rising with frequency up to Nyquist (CT noise texture).
    """
    x = images.astype(np.float64)
    if domain == "image":
        counts = rng.poisson(baseline_dose * x)
        kept = rng.binomial(counts, dose_fraction)
        clean = counts / baseline_dose
        artifacted = kept / (dose_fraction * baseline_dose)
        return clean.astype(np.float32), artifacted.astype(np.float32)
    return _photon_noise_sinogram(x, rng, baseline_dose, dose_fraction, n_angles, path_attenuation)


def _photon_noise_sinogram(x, rng, dose, fraction, n_angles, path_attenuation):
    from skimage.transform import iradon, radon

    n, c, h, w = x.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    theta = np.linspace(0.0, 180.0, int(n_angles or side), endpoint=False)
    mu = path_attenuation / side
    clean = np.empty_like(x)
    artifacted = np.empty_like(x)
    # skimage's radon/iradon take one 2-D image at a time; at 32-64 px this loop costs about 5-12 ms per
    # image and channel.
    for i in range(n):
        for ch in range(c):
            square = np.zeros((side, side))
            square[top : top + h, left : left + w] = x[i, ch]
            line = radon(square, theta, circle=False, preserve_range=True)
            expected = dose * np.exp(-mu * line)
            counts = rng.poisson(expected)
            kept = rng.binomial(counts, fraction)
            # A bin with no photon is read as half a photon (the usual guard before the log).
            noisy_full = -np.log(np.maximum(counts, 0.5) / dose) / mu
            noisy_low = -np.log(np.maximum(kept, 0.5) / (fraction * dose)) / mu
            for sino, out in ((noisy_full, clean), (noisy_low, artifacted)):
                noise = iradon(sino - line, theta, output_size=side, filter_name="ramp", circle=False)
                out[i, ch] = x[i, ch] + noise[top : top + h, left : left + w]
    return clean.astype(np.float32), artifacted.astype(np.float32)


@_register("nlm_denoise")
def nlm_denoise(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    h: float = 0.05,
    sigma: float = 0.05,
    patch_size: int = 5,
    patch_distance: int = 6,
    fast_mode: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Non-local-means denoising (``skimage.restoration.denoise_nl_means``) of each image.

    The strength is absolute, in image units (values in [0, 1]), the same for every image: ``h`` is the
    filter's cut-off distance between patches and ``sigma`` the noise std passed to the filter, which
    subtracts ``2 sigma**2`` from every squared patch distance (so patches closer than that are averaged
    with full weight, even at ``h = 0``). The strength is not relative to an estimated noise level
    because the built-in target images are clean: on the brain template the estimated noise std is
    about 0.005 (wavelet estimate; under 0.01 per patch), so a strength relative to it did nothing, and
    in practice the filter always ran at a fixed floor of 0.05. The defaults (``h = sigma = 0.05``) are
    that floor, so the default output is what the relative version gave on clean images. ``h = 0`` with ``sigma = 0`` is the identity; the
    larger ``h`` (or ``sigma``), the smoother the output. ``clean`` is the unchanged images.

    Parameters: ``h`` in [0, 1] (filter strength, image units); ``sigma`` in [0, 1] (noise std, image
    units); ``patch_size`` and ``patch_distance`` (pixels, as in skimage); ``fast_mode`` (skimage's fast
    algorithm).
    Spectral signature: removes high-frequency texture and noise: the difference is concentrated at high
    frequencies, the artifacted images have less high-frequency power.
    """
    from skimage.restoration import denoise_nl_means

    del rng  # deterministic
    out = np.empty_like(images)
    for i, img in enumerate(images):
        hwc = np.moveaxis(img.astype(np.float64), 0, -1)
        den = denoise_nl_means(
            hwc,
            h=float(h),
            sigma=float(sigma),
            patch_size=patch_size,
            patch_distance=patch_distance,
            fast_mode=fast_mode,
            channel_axis=-1,
            preserve_range=True,
        )
        out[i] = np.moveaxis(den.reshape(hwc.shape), -1, 0)
    return images.copy(), out


#: parameters an artifact no longer takes, each with what replaced it (named in the error message)
RETIRED_PARAMS: dict[str, dict[str, str]] = {
    "nlm_denoise": {
        "strength": "give h, the absolute filter strength in image units (strength 1.0 on clean images ran "
        "at h = 0.05, the default)",
        "min_sigma": "give sigma, the absolute noise std in image units (default 0.05)",
        "sigma_estimator": "the noise std is no longer estimated; give sigma (default 0.05)",
    }
}


def check_retired_params(kind: str, params: dict[str, Any]) -> None:
    """ConfigError naming each parameter of ``params`` that artifact ``kind`` no longer takes."""
    retired = RETIRED_PARAMS.get(kind, {})
    old = [k for k in params if k in retired]
    if old:
        raise ConfigError(
            f"{kind}: parameter(s) {old} were removed; " + "; ".join(f"'{k}': {retired[k]}" for k in old)
        )


def immerkaer_sigma(image: np.ndarray) -> float:
    """Noise std of a 2-D image (or (H, W, C), averaged over channels) by Immerkaer's method.

    J. Immerkaer, "Fast noise variance estimation", CVIU 64(2), 1996: ``sigma = sqrt(pi/2) / (6 (W-2)
    (H-2)) * sum |I * N|`` over the interior, with ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`` (the difference
    of two Laplacians, blind to locally linear image structure). No artifact uses it any more; kept as a
    PyWavelets-free way to check how noisy a data set is (to choose ``nlm_denoise``'s ``sigma``).
    """
    img = image if image.ndim == 3 else image[..., None]
    c = img[1:-1, 1:-1]
    edges = img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:]
    corners = img[:-2, :-2] + img[:-2, 2:] + img[2:, :-2] + img[2:, 2:]
    conv = 4 * c - 2 * edges + corners
    h, w = img.shape[:2]
    per_channel = np.sqrt(np.pi / 2) * np.abs(conv).sum(axis=(0, 1)) / (6.0 * (w - 2) * (h - 2))
    return float(per_channel.mean())


@_register("lowpass")
def lowpass(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    cutoff_cpp: float = 0.15,
    filter: str = "butterworth",
    order: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Low-pass at ``cutoff_cpp`` (cycles/pixel), the same filter as the ``lowpass`` source edit.

    Parameters: ``cutoff_cpp`` in (0, 0.5]; ``filter`` ``butterworth`` (gain ``1/(1+(f/cutoff)**(2 order))``)
    or ``ideal``; ``order``. ``clean`` is the unchanged images.
    Spectral signature: the difference (minus the high-pass part of the image) lies above the cutoff (all of
    it for ``ideal``; for Butterworth mostly, rolling in below the cutoff as ``(f/cutoff)**(4 order)``).
    """
    del rng
    resp = lowpass_response(radius_cpp(*images.shape[-2:]), cutoff_cpp, filter, order)
    return images.copy(), apply_response(images, resp)


@_register("band_noise")
def band_noise(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    f_lo_cpp: float = 0.1,
    f_hi_cpp: float = 0.2,
    amplitude: float = 0.25,
    filter: str = "ideal",
    order: float = 4.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Additive Gaussian noise confined to the annulus ``f_lo_cpp <= f <= f_hi_cpp`` (cycles/pixel).

    White Gaussian noise (independent per image and channel) is band-passed in the Fourier domain (ideal
    annulus, or Butterworth ``highpass(f_lo) * lowpass(f_hi)`` of ``order``), scaled per image so its
    standard deviation equals ``amplitude * std(image)`` (std over the image's channels and pixels; a
    constant image gets no noise), and added. ``clean`` is the unchanged images. Clipping to [0, 1] can
    leak a little power out of the band where the noise saturates.

    Parameters: ``f_lo_cpp`` >= 0 < ``f_hi_cpp`` <= 0.707; ``amplitude`` >= 0 (relative to the image std);
    ``filter`` ``ideal`` | ``butterworth``; ``order``.
    Spectral signature: the difference PSD is flat inside the annulus and zero outside (ideal filter).
    """
    h, w = images.shape[-2:]
    resp = bandpass_response(radius_cpp(h, w), f_lo_cpp, f_hi_cpp, filter, order)
    if not resp.any():
        raise DataError(
            f"band_noise: the band [{f_lo_cpp}, {f_hi_cpp}] cycles/pixel holds no frequency of a {h}x{w} "
            f"image (bins are 1/{min(h, w)} apart); widen the band"
        )
    noise = apply_response(rng.standard_normal(images.shape), resp).astype(np.float64)
    noise_std = noise.std(axis=(1, 2, 3), keepdims=True)
    target = amplitude * images.astype(np.float64).std(axis=(1, 2, 3), keepdims=True)
    noise *= target / np.where(noise_std > 0, noise_std, 1.0)
    return images.copy(), (images + noise).astype(np.float32)


def tag_mask(
    height: int, width: int, *, size: int, position: str, margin: int | None, glyph: str
) -> np.ndarray:
    """Boolean (H, W) mask of ``glyph`` scaled (nearest neighbour) to ``size`` px high at ``position``,
    ``margin`` px from the named edges; ``margin=None`` puts it a third of the free space in from them."""
    base = GLYPHS[glyph]
    gh, gw = size, max(1, round(size * base.shape[1] / base.shape[0]))
    rows = np.arange(gh) * base.shape[0] // gh
    cols = np.arange(gw) * base.shape[1] // gw
    mark = base[rows][:, cols]
    my = (height - gh) // 3 if margin is None else margin
    mx = (width - gw) // 3 if margin is None else margin
    if gh + 2 * my > height or gw + 2 * mx > width or gh > height or gw > width:
        raise DataError(
            f"tag: a {gh}x{gw} px mark with margin {margin} does not fit a {height}x{width} image; "
            "lower size or margin"
        )
    top = {"top": my, "bottom": height - my - gh}.get(position.split("-")[0], (height - gh) // 2)
    left = {"left": mx, "right": width - mx - gw}.get(position.split("-")[-1], (width - gw) // 2)
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + gh, left : left + gw] = mark
    return mask


@_register("tag")
def tag(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    glyph: str = "R",
    size: int = 7,
    position: str = "top-left",
    margin: int | None = None,
    intensity: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A small mark (the letter R by default) at a fixed place: a spatial, non-spectral control.

    The ``glyph`` (``R``, ``L`` or ``square``; a 5x7 pixel font scaled by nearest neighbour to ``size`` px
    high) is drawn ``margin`` px from the ``position`` corner (``top-left``, ``top-right``, ``bottom-left``,
    ``bottom-right``) or in the middle (``center``; ``margin`` then only limits the size) by setting its
    pixels, in every channel, to ``intensity`` in [0, 1]. ``clean`` is the unchanged images.
    The default, ``margin=None``, places the mark a third of the free space in from the corner: between
    the corner and the centre. Not at the corner, because the default 2-D Hann window of the artifact PSD
    is near 0 at the border (a mark 2 px from the corner keeps a mean squared window of 0.002 over its
    pixels against 0.14 over a 32 px image, so the window would erase it from its PSD; the default keeps
    about 0.31); not at the centre, because the centre pixel's tissue sets a brain patch's label, and a mark
    over it destroys the real signal even in clean models.
    Spectral signature: broadband: the sharp-edged mark spreads power over low, mid and high frequencies;
    it is localised in space, not in frequency.
    """
    del rng
    h, w = images.shape[-2:]
    mask = tag_mask(h, w, size=size, position=position, margin=margin, glyph=glyph)
    out = images.copy()
    out[..., mask] = intensity
    return images.copy(), out


def _number(name: str, value: Any, *, lo: float, lo_open: bool, hi: float | None = None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > lo if lo_open else value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise ConfigError(f"{name} must be a number {rng}; got {value!r}")


def _integer(name: str, value: Any, lo: int) -> None:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lo):
        raise ConfigError(f"{name} must be an integer >= {lo}; got {value!r}")


def _validate_artifact(kind: str, p: dict[str, Any]) -> None:
    if kind == "photon_noise":
        _number("photon_noise: baseline_dose", p["baseline_dose"], lo=0, lo_open=True)
        _number("photon_noise: dose_fraction", p["dose_fraction"], lo=0, lo_open=True, hi=1)
        if p["domain"] not in DOMAINS:
            raise ConfigError(f"photon_noise: domain={p['domain']!r} is not one of {list(DOMAINS)}")
        if p["n_angles"] is not None:
            _integer("photon_noise: n_angles", p["n_angles"], 1)
        _number("photon_noise: path_attenuation", p["path_attenuation"], lo=0, lo_open=True)
    elif kind == "nlm_denoise":
        _number("nlm_denoise: h", p["h"], lo=0, lo_open=False, hi=1)
        _number("nlm_denoise: sigma", p["sigma"], lo=0, lo_open=False, hi=1)
        _integer("nlm_denoise: patch_size", p["patch_size"], 1)
        _integer("nlm_denoise: patch_distance", p["patch_distance"], 1)
        if not isinstance(p["fast_mode"], (bool, np.bool_)):
            raise ConfigError(f"nlm_denoise: fast_mode must be true or false; got {p['fast_mode']!r}")
    elif kind == "lowpass":
        check_cutoff("cutoff_cpp", p["cutoff_cpp"])
        check_filter(p["filter"], p["order"])
    elif kind == "band_noise":
        check_band(p["f_lo_cpp"], p["f_hi_cpp"])
        _number("band_noise: amplitude", p["amplitude"], lo=0, lo_open=False)
        check_filter(p["filter"], p["order"])
    elif kind == "tag":
        if p["glyph"] not in GLYPHS:
            raise ConfigError(f"tag: glyph={p['glyph']!r} is not one of {sorted(GLYPHS)}")
        if p["position"] not in POSITIONS:
            raise ConfigError(f"tag: position={p['position']!r} is not one of {list(POSITIONS)}")
        _integer("tag: size", p["size"], 3)
        if p["margin"] is not None:
            _integer("tag: margin", p["margin"], 0)
        _number("tag: intensity", p["intensity"], lo=0, lo_open=False, hi=1)


def artifact_kinds() -> list[str]:
    """Names of the registered artifacts."""
    return sorted(ARTIFACTS)


def clean_is_raw(kind: str) -> bool:
    """Whether artifact ``kind`` returns the input images unchanged as its ``clean`` images."""
    if kind not in CLEAN_IS_RAW:
        raise ConfigError(f"unknown artifact kind '{kind}'; known: {', '.join(artifact_kinds())}")
    return CLEAN_IS_RAW[kind]


def artifact_defaults(kind: str) -> dict[str, Any]:
    """Parameter names of artifact ``kind`` and their defaults (ConfigError for an unknown kind)."""
    return registry_defaults(ARTIFACTS, kind, "artifact")


def check_artifact_params(kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``params`` for artifact ``kind`` (names and values); return them merged with defaults."""
    check_retired_params(kind, dict(params or {}))
    merged = merge_params(ARTIFACTS, kind, dict(params or {}), "artifact")
    _validate_artifact(kind, merged)
    return merged


def describe_artifact(kind: str) -> str:
    """Text describing artifact ``kind``: what it does, its parameters, its spectral signature."""
    return describe(ARTIFACTS, kind, "artifact")


def apply_artifact(
    kind: str, images: np.ndarray, *, seed: int, **params: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Apply artifact ``kind`` to float32 (N, C, H, W) images in [0, 1].

    Returns ``(clean, artifacted)``, both float32, clipped to [0, 1], determined by the images, ``params``
    and ``seed`` (a ``numpy.random.default_rng(seed)`` drives all randomness).
    """
    merged = check_artifact_params(kind, params)
    arr = check_images(images)
    rng = np.random.default_rng(seed)
    clean, artifacted = ARTIFACTS[kind](arr, rng, **merged)
    clip = lambda a: np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)  # noqa: E731
    return clip(clean), clip(artifacted)


__all__ = [
    "ARTIFACTS",
    "CLEAN_IS_RAW",
    "DOMAINS",
    "FILTERS",
    "GLYPHS",
    "POSITIONS",
    "RETIRED_PARAMS",
    "apply_artifact",
    "artifact_defaults",
    "artifact_kinds",
    "check_artifact_params",
    "check_retired_params",
    "clean_is_raw",
    "describe_artifact",
    "immerkaer_sigma",
    "tag_mask",
]
