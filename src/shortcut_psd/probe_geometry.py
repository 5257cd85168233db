"""The frequency geometry and options of the spectral probes, without torch (docs/DEFINITIONS.md, "Probes").

Bands of the radial frequency plane, the half plane of ``rfft2`` that the Fourier heat map covers, the
mapping of a half-plane map back to the full plane, the mean of a heat map per band, the ``probes`` options
and which fine-tuned models get a heat map. Torch-free because the config check (every ``snakemake`` call)
and the report tables (``shortcut_psd.probe_tables``) use them; ``shortcut_psd.probes`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shortcut_psd.errors import ConfigError


def radius_grid(height: int, width: int) -> np.ndarray:
    """``(H, W//2 + 1)`` radius of each ``rfft2`` bin in cycles per pixel."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fy**2 + fx**2)


def default_bands(height: int, width: int, n_bands: int = 8) -> np.ndarray:
    """``(n_bands, 2)`` bands ``[lo, hi)`` grouping the PSD's radial bins; the last is open (``inf``)."""
    n = min(height, width)
    n_bins = n // 2 + 1
    if not 1 <= int(n_bands) <= n_bins:
        raise ConfigError(
            f"probes.n_bands={n_bands}: must be between 1 and the {n_bins} radial bins of {height} x {width} images"
        )
    groups = np.array_split(np.arange(n_bins), int(n_bands))
    bands = np.array([[(g[0] - 0.5) / n, (g[-1] + 0.5) / n] for g in groups], dtype=np.float64)
    bands[0, 0] = 0.0
    bands[-1, 1] = np.inf
    return bands


def check_bands(bands: Any, height: int, width: int) -> np.ndarray:
    """Validate user bands (``[[lo, hi], ...]`` in cpp, ``lo < hi``, each holding a bin); return ``(B, 2)``."""
    b = np.asarray(bands, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 2 or len(b) == 0:
        raise ConfigError(f"probes.bands: give a list of [lo, hi] pairs in cycles/pixel; got {bands!r}")
    r = radius_grid(height, width)
    for lo, hi in b:
        if not (lo >= 0 and hi > lo):
            raise ConfigError(f"probes.bands: band [{lo}, {hi}] needs 0 <= lo < hi")
        if not ((r >= lo) & (r < hi)).any():
            raise ConfigError(
                f"probes.bands: band [{lo}, {hi}] holds no frequency bin of {height} x {width} images; widen it"
            )
    return b


def resolve_bands(spec: Any, height: int, width: int, n_bands: int = 8) -> np.ndarray:
    """``spec`` ``"auto"``/None: :func:`default_bands`; else a list of bands (:func:`check_bands`)."""
    if spec is None or spec == "auto":
        return default_bands(height, width, n_bands)
    return check_bands(spec, height, width)


def half_plane(height: int, width: int, step: int = 1) -> np.ndarray:
    """``(F, 2)`` integer ``(ky, kx)`` indices of the ``rfft2`` plane, one per distinct basis image:
    ``kx = 0 .. W//2`` (every ``step``-th, ``ky`` likewise), and where ``-k`` lies in the half plane too
    (``kx = 0``, or ``kx = W/2`` for even ``W``) only ``ky <= H/2`` is kept."""
    if int(step) < 1:
        raise ConfigError(f"probes.heatmap_step={step}: must be a positive integer")
    out = []
    for ky in range(0, height, int(step)):
        for kx in range(0, width // 2 + 1, int(step)):
            self_conj = kx == 0 or (width % 2 == 0 and kx == width // 2)
            if self_conj and (-ky) % height < ky:
                continue
            out.append((ky, kx))
    return np.asarray(out, dtype=np.int64)


def full_plane(half: np.ndarray, width: int) -> np.ndarray:
    """A half-plane map ``(H, W//2+1)`` (NaN where not computed) -> the full plane ``(H, W)`` by the
    symmetry ``m(-k) = m(k)``, fftshifted (zero frequency at ``(H//2, W//2)``), like the 2-D spectra."""
    h = half.shape[0]
    full = np.full((h, width), np.nan)
    for ky in range(h):
        for kx in range(half.shape[1]):
            v = half[ky, kx]
            if np.isnan(v):
                continue
            full[ky, kx] = v
            full[(-ky) % h, (-kx) % width] = v
    return np.fft.fftshift(full)


# -- models -------------------------------------------------------------------------------------------
def heatmap_radial(heatmap: np.ndarray, width: int, bands: np.ndarray) -> np.ndarray:
    """Mean of a half-plane heat map over the computed frequencies of each band (NaN where none)."""
    h = heatmap.shape[0]
    r = radius_grid(h, width)
    out = []
    for lo, hi in np.asarray(bands, dtype=np.float64):
        v = heatmap[(r >= lo) & (r < hi)]
        v = v[np.isfinite(v)]
        out.append(float(v.mean()) if v.size else float("nan"))
    return np.asarray(out)


def probe_options(probes: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``probes`` section with defaults (the schema fills them in the workflow)."""
    d = {
        "bands": "auto",
        "n_bands": 8,
        "max_images": 64,
        "heatmap_images": 32,
        "heatmap_norm": 4.0,
        "heatmap_step": 2,
        "heatmap_models": "clean",
        "probe_train_images": 1000,
        "probe_l2": 1e-3,
        "batch_size": 512,
        "seed": 0,
    }
    d.update(dict(probes or {}))
    return d


def clean_label(labels: Sequence[str]) -> str | None:
    """The fine-tuned model that stands for an init after fine-tuning: the shared clean model
    (``none/p0``), else the first p = 0 model, else None."""
    if "none/p0" in labels:
        return "none/p0"
    p0 = [lab for lab in labels if lab.endswith("/p0")]
    return p0[0] if p0 else None


def heatmap_labels(labels: Sequence[str], which: str) -> list[str]:
    """Which fine-tuned models get a heat map: ``clean`` (the model of :func:`clean_label`), ``p0`` (every
    p = 0 model), ``all`` or ``none``."""
    if which == "clean":
        return [lab for lab in [clean_label(labels)] if lab]
    if which == "all":
        return list(labels)
    if which == "none":
        return []
    if which == "p0":
        return [lab for lab in labels if lab.endswith("/p0")]
    raise ConfigError(f"probes.heatmap_models={which!r}: use clean, p0, all or none")
