"""Artifacts: label-correlated "shortcuts" injected into target images (docs/DEFINITIONS.md, "Artifacts").

A registry like timm's (:class:`shortcut_psd.registry.Registry`): ``ARTIFACTS`` maps a name to
``fn(images, rng, **params) -> (clean, artifacted)``, registered with a spec of each parameter, its spectral
signature and whether its clean images are the raw ones; :func:`apply_artifact` checks the parameters,
seeds the generator and runs it. To add an artifact, register a function here. ``clean`` is what every
image gets anyway (for ``photon_noise`` the baseline-dose noise; the unchanged images for the others) and
``artifacted`` the artifact version, so the artifact is exactly ``artifacted - clean`` and its PSD
(:func:`shortcut_psd.gradients.artifact_psd`) compares directly with a gradient PSD. Images are float32
``(N, C, H, W)`` in ``[0, 1]``; outputs are clipped to ``[0, 1]``; results depend only on the inputs, the
parameters and ``seed``. Frequencies are in cycles/pixel, as in :mod:`shortcut_psd.spectral`; the filters
are those of :mod:`shortcut_psd.freqgrid`, shared with the edits, and the other image operations (the
sinogram round trip of ``photon_noise``, the glyph mask of ``tag``) those of :mod:`shortcut_psd.artifact_ops`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shortcut_psd.artifact_ops import GLYPHS, photon_noise_sinogram, tag_mask
from shortcut_psd.errors import DataError
from shortcut_psd.freqgrid import (
    CUTOFF,
    F_HI,
    F_LO,
    FILTER,
    FILTERS,
    ORDER,
    apply_response,
    band_is_ordered,
    bandpass_response,
    check_images,
    immerkaer_sigma,
    lowpass_response,
    radius_cpp,
)
from shortcut_psd.registry import Param, Registry

#: name -> ``fn(images, rng, **params) -> (clean, artifacted)``; ``register``'s keyword ``clean_is_raw``:
#: is the ``clean`` output the input images themselves? (False for ``photon_noise``, whose clean images
#: carry the baseline-dose noise.) The workflow shares one p = 0 model among the artifacts whose clean
#: images are the raw data and trains a p = 0 model on its own clean images for each of the others
#: (``shortcut_psd.config.shares_clean_model``; docs/DEFINITIONS.md, "Baselines").
ARTIFACTS = Registry("artifact", extras={"clean_is_raw": True})
CLEAN_IS_RAW = ARTIFACTS.attribute("clean_is_raw")  # kind -> bool (a live view)
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
DOMAINS = ("image", "sinogram")


def _positive(doc: str) -> Param:
    return Param("float", doc, lo=0, lo_open=True)


def _unit_interval(doc: str) -> Param:
    return Param("float", doc, lo=0, hi=1)


@ARTIFACTS.register(
    "photon_noise",
    clean_is_raw=False,
    signature="image domain: white (flat) noise, its level set by the dose difference; sinogram domain: "
    "ramp-filtered noise, power rising with frequency up to Nyquist (CT noise texture).",
    params={
        "baseline_dose": _positive("photons per pixel at value 1 (image) or per unattenuated detector bin"),
        "dose_fraction": Param(
            "float", "the reduced dose, a fraction of the baseline", lo=0, lo_open=True, hi=1
        ),
        "domain": Param("choice", "where the photons are counted", choices=DOMAINS),
        "n_angles": Param("int", "projection angles (sinogram; null = image side)", lo=1, nullable=True),
        "path_attenuation": _positive("attenuation of a full-width path of value-1 pixels (sinogram)"),
    },
)
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
    """
    x = images.astype(np.float64)
    if domain == "image":
        counts = rng.poisson(baseline_dose * x)
        kept = rng.binomial(counts, dose_fraction)
        clean = counts / baseline_dose
        artifacted = kept / (dose_fraction * baseline_dose)
        return clean.astype(np.float32), artifacted.astype(np.float32)
    return photon_noise_sinogram(x, rng, baseline_dose, dose_fraction, n_angles, path_attenuation)


@ARTIFACTS.register(
    "nlm_denoise",
    signature="removes high-frequency texture and noise: the difference is concentrated at high "
    "frequencies, the artifacted images have less high-frequency power.",
    params={
        "h": _unit_interval("filter strength (cut-off distance between patches), image units"),
        "sigma": _unit_interval("noise std passed to the filter, image units"),
        "patch_size": Param("int", "patch side, pixels (as in skimage)", lo=1),
        "patch_distance": Param("int", "search distance, pixels (as in skimage)", lo=1),
        "fast_mode": Param("bool", "skimage's fast algorithm"),
    },
    retired={
        "strength": "give h, the absolute filter strength in image units (strength 1.0 on clean images ran "
        "at h = 0.05, the default)",
        "min_sigma": "give sigma, the absolute noise std in image units (default 0.05)",
        "sigma_estimator": "the noise std is no longer estimated; give sigma (default 0.05)",
    },
)
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
    larger ``h`` (or ``sigma``), the smoother the output. ``clean`` is the unchanged images. Parameters
    it no longer takes (``strength``, ``min_sigma``, ``sigma_estimator``) are refused naming what replaced
    them.
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


#: per kind: the parameters it no longer takes, each with what replaced it (``register``'s ``retired``)
RETIRED_PARAMS = ARTIFACTS.attribute("retired")


def check_retired_params(kind: str, params: dict[str, Any]) -> None:
    """ConfigError naming each parameter of ``params`` that artifact ``kind`` no longer takes."""
    ARTIFACTS.check_retired(kind, params)


@ARTIFACTS.register(
    "lowpass",
    signature="the difference (minus the high-pass part of the image) lies above the cutoff (all of it for "
    "ideal; for Butterworth mostly, rolling in below the cutoff as (f/cutoff)**(4 order)).",
    params={"cutoff_cpp": CUTOFF, "filter": FILTER, "order": ORDER},
)
def lowpass(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    cutoff_cpp: float = 0.15,
    filter: str = "butterworth",
    order: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Low-pass at ``cutoff_cpp`` (cycles/pixel), the same filter as the ``lowpass`` source edit.

    ``clean`` is the unchanged images.
    """
    del rng
    resp = lowpass_response(radius_cpp(*images.shape[-2:]), cutoff_cpp, filter, order)
    return images.copy(), apply_response(images, resp)


@ARTIFACTS.register(
    "band_noise",
    signature="the difference PSD is flat inside the annulus and zero outside (ideal filter).",
    params={
        "f_lo_cpp": F_LO,
        "f_hi_cpp": F_HI,
        "amplitude": Param("float", "noise std relative to the image's std", lo=0),
        "filter": FILTER,
        "order": ORDER,
    },
    checks=[band_is_ordered],
)
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


@ARTIFACTS.register(
    "tag",
    signature="broadband: the sharp-edged mark spreads power over low, mid and high frequencies; it is "
    "localised in space, not in frequency.",
    params={
        "glyph": Param("choice", "the mark drawn (5x7 pixel font)", choices=tuple(sorted(GLYPHS))),
        "size": Param("int", "height of the mark, pixels", lo=3),
        "position": Param("choice", "where the mark goes", choices=POSITIONS),
        "margin": Param(
            "int", "pixels from the named edges (null: a third of the free space)", lo=0, nullable=True
        ),
        "intensity": _unit_interval("value the mark's pixels are set to"),
    },
)
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
    """
    del rng
    h, w = images.shape[-2:]
    mask = tag_mask(h, w, size=size, position=position, margin=margin, glyph=glyph)
    out = images.copy()
    out[..., mask] = intensity
    return images.copy(), out


def artifact_kinds() -> list[str]:
    """Names of the registered artifacts."""
    return ARTIFACTS.kinds()


def clean_is_raw(kind: str) -> bool:
    """Whether artifact ``kind`` returns the input images unchanged as its ``clean`` images."""
    return ARTIFACTS.entry(kind).extras["clean_is_raw"]


def artifact_defaults(kind: str) -> dict[str, Any]:
    """Parameter names of artifact ``kind`` and their defaults (ConfigError for an unknown kind)."""
    return ARTIFACTS.defaults(kind)


def check_artifact_params(kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``params`` for artifact ``kind`` (names and values); return them merged with defaults."""
    return ARTIFACTS.check(kind, params)


def describe_artifact(kind: str) -> str:
    """Text describing artifact ``kind``: what it does, its parameters, its spectral signature."""
    return ARTIFACTS.describe(kind)


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
