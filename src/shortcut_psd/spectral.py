"""Radial power spectra of batches of 2-D maps, their statistics, scalars and alignment.

Definitions (docs/DEFINITIONS.md, "Gradient PSD" and "Windows"; every choice below is a named option):

- **Transform.** ``F = rfft2(w * m)`` of each map ``m`` (H, W), with ``w`` a 2-D window: the outer product
  ``w[y, x] = w_H[y] * w_W[x]`` of two periodic 1-D windows (periodic: the length-N window is the first N
  points of the symmetric window of length N + 1, as for spectral analysis of a periodic frame):

  * ``hann``: ``torch.hann_window(N, periodic=True)``, ``0.5 - 0.5 cos(2 pi n / N)`` (default);
  * ``tukey``: the tapered cosine ``scipy.signal.windows.tukey(N, tukey_alpha, sym=False)``: flat (1) in
    the centre, a half-cosine taper over a fraction ``tukey_alpha / 2`` of the window at each end, so
    ``tukey_alpha`` in [0, 1] is the fraction of the window inside the tapers; ``tukey_alpha = 0`` is the
    rectangular window (= ``none``) and ``tukey_alpha = 1`` is the periodic Hann window (= ``hann``).
    Default ``tukey_alpha = 0.5``; it keeps the signal near the borders (e.g. a mark in a corner) that the
    Hann window erases;
  * ``none``: no window (``w = 1``).

  Optionally the map's own mean is subtracted first (``detrend="mean"``).
- **Spectrum.** ``power``: ``|F|**2 / sum(w**2)``; ``amplitude``: ``|F| / sqrt(sum(w**2))``. The scale
  ``sum(w**2)`` (= H*W without a window) makes white noise of variance s**2 read s**2 in every bin whatever
  the image size and window, so curves of different sizes are comparable; it cancels under the default
  per-curve ``sum`` normalisation. Without a window, the power spectrum obeys Parseval:
  ``sum over the full (H, W) plane of |F|**2 / (H*W) = sum(m**2)``.
- **Radius.** The radius of bin ``(ky, kx)`` is ``sqrt(fy**2 + fx**2)`` in cycles/pixel with ``fy`` from
  ``fftfreq(H)`` and ``fx`` from ``rfftfreq(W)``, which is exact for even and odd sizes.
- **Radial bins.** Width ``1/N`` with ``N = min(H, W)``; bin ``k`` holds radii in ``[(k - 0.5)/N,
  (k + 0.5)/N)`` and is centred on ``k/N``, for ``k = 0 .. N//2`` (the last centre is the Nyquist
  frequency 0.5 for even N, just below it for odd N). Corners of the plane whose bin lies beyond Nyquist
  are excluded by default; ``include_corners=True`` keeps them in extra bins up to ``0.5*sqrt(2)``.
- **Half-plane weights.** ``rfft2`` stores half the plane: a column ``kx`` that stands for itself and its
  mirror ``-kx`` counts twice; the DC column, and for even W the Nyquist column, count once. The radial
  profile is the weighted mean of the spectrum over the bins of each annulus, which equals the plain mean
  over the full ``fft2`` plane.
- **Per-curve normalisation** (:func:`normalise_curves`): ``sum`` (each curve sums to 1; default),
  ``minmax`` or ``none``.

Everything runs on the maps' device in float32 (half/bf16 inputs are promoted): no Python loop over images
or radii; the radial average is one ``index_add_`` per batch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.freqgrid import radius_cpp  # numpy only; re-exported here
from shortcut_psd.io import read_json, save_npz, write_json

WINDOWS = ("hann", "tukey", "none")
#: default shape of the ``tukey`` window: fraction of the window inside the cosine tapers
TUKEY_ALPHA = 0.5
#: replicates and level of the cluster bootstrap over groups (PSDAccumulator with groups)
N_BOOT = 2000
CI_LEVEL = 0.95
SPECTRA = ("power", "amplitude")
NORMALISATIONS = ("sum", "minmax", "none")
DETRENDS = ("none", "mean")
# Options that must agree before two results may be averaged (PSDResult.combine).
_SPECTRAL_KEYS = ("window", "spectrum", "normalise", "include_corners", "channels", "detrend", "shape")
# ... and, where a Tukey window was used (main curve or window_curves), its shape.
_TUKEY_KEY = "tukey_alpha"


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError naming the allowed values."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")
    return value


def check_tukey_alpha(value: Any) -> float:
    """Return ``value`` as a float if it is a number in [0, 1], else raise ConfigError naming
    ``tukey_alpha``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(
            f"tukey_alpha={value!r} must be a number in [0, 1]: the fraction of the Tukey window inside its "
            "cosine tapers (0: no taper, the same as window 'none'; 1: the Hann window)"
        )
    return float(value)


def window_1d(window: str, n: int, *, tukey_alpha: float = TUKEY_ALPHA) -> np.ndarray | None:
    """Periodic 1-D window of length ``n`` (float64), or ``None`` for ``window="none"``.

    ``hann``: ``torch.hann_window(n, periodic=True)``; ``tukey``: ``scipy.signal.windows.tukey(n,
    tukey_alpha, sym=False)``. The 2-D window of :class:`RadialSpectrum` is the outer product of two.
    """
    check_choice("window", window, WINDOWS)
    alpha = check_tukey_alpha(tukey_alpha)
    if window == "hann":
        return torch.hann_window(int(n), periodic=True, dtype=torch.float64).numpy()
    if window == "tukey":
        from scipy.signal import windows  # only needed here

        return np.asarray(windows.tukey(int(n), alpha, sym=False), dtype=np.float64)
    return None


class RadialSpectrum:
    """Batched radial spectrum of (B, H, W) maps; see the module docstring for every definition.

    Attributes: ``freqs`` (n_bins,) bin centres in cycles/pixel (numpy); ``counts`` (n_bins,) how many bins
    of the *full* fft2 plane fall in each radial bin; ``n_bins``; ``shape`` (H, W); ``options``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        window: str = "hann",
        spectrum: str = "power",
        include_corners: bool = False,
        detrend: str = "none",
        tukey_alpha: float = TUKEY_ALPHA,
        device: str | torch.device = "cpu",
    ) -> None:
        if int(height) < 2 or int(width) < 2:
            raise DataError(f"maps must be at least 2x2 pixels for a spectrum; got {height}x{width}")
        self.height, self.width = int(height), int(width)
        self.window = check_choice("window", window, WINDOWS)
        self.spectrum = check_choice("spectrum", spectrum, SPECTRA)
        self.detrend = check_choice("detrend", detrend, DETRENDS)
        self.tukey_alpha = check_tukey_alpha(tukey_alpha)
        self.include_corners = bool(include_corners)
        self.device = torch.device(device)
        H, W = self.height, self.width
        n = min(H, W)

        wy = window_1d(self.window, H, tukey_alpha=self.tukey_alpha)
        wx = window_1d(self.window, W, tukey_alpha=self.tukey_alpha)
        if wy is not None and wx is not None:
            win = torch.as_tensor(wy[:, None] * wx[None, :], dtype=torch.float64)
            self._window: torch.Tensor | None = win.to(self.device, torch.float32)
            self._scale = float((win**2).sum())
        else:
            self._window = None
            self._scale = float(H * W)

        radius = radius_cpp(H, W)  # (H, W//2+1), float64
        bin_index = np.floor(radius * n + 0.5).astype(np.int64)
        n_inside = n // 2 + 1
        n_bins = int(bin_index.max()) + 1 if self.include_corners else n_inside
        # Half-plane weights: rfft2 column kx > 0 stands for kx and -kx, except the Nyquist column of an
        # even width, which is its own mirror.
        col_w = np.full(W // 2 + 1, 2.0)
        col_w[0] = 1.0
        if W % 2 == 0:
            col_w[-1] = 1.0
        weights = np.broadcast_to(col_w[None, :], radius.shape).copy()
        # Bins beyond the kept range go to a dump bin (index n_bins) that is dropped after the sum.
        dump = bin_index >= n_bins
        bin_index[dump] = n_bins
        counts = np.bincount(bin_index.ravel(), weights=weights.ravel(), minlength=n_bins + 1)

        self.n_bins = n_bins
        self.freqs = np.arange(n_bins, dtype=np.float64) / n
        self.counts = counts[:n_bins]
        self.shape = (H, W)
        self.col_weights = torch.as_tensor(col_w, dtype=torch.float32, device=self.device)
        self._index = torch.as_tensor(bin_index.ravel(), device=self.device)
        # Weight of each half-plane bin divided by its annulus' total weight: the index_add of
        # spectrum * _bin_w is then directly the weighted mean.
        norm = np.where(dump, 0.0, weights / np.maximum(counts[bin_index], 1e-300))
        self._bin_w = torch.as_tensor(norm.ravel(), dtype=torch.float32, device=self.device)

    @property
    def options(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "spectrum": self.spectrum,
            "include_corners": self.include_corners,
            "detrend": self.detrend,
            "tukey_alpha": self.tukey_alpha,
            "shape": [self.height, self.width],
        }

    @property
    def window_2d(self) -> np.ndarray:
        """The (H, W) window ``w`` applied before the FFT, float64 (ones for ``window="none"``)."""
        wy = window_1d(self.window, self.height, tukey_alpha=self.tukey_alpha)
        wx = window_1d(self.window, self.width, tukey_alpha=self.tukey_alpha)
        if wy is None or wx is None:
            return np.ones(self.shape)
        return wy[:, None] * wx[None, :]

    def with_window(self, window: str) -> RadialSpectrum:
        """The same spectrum (size, spectrum, corners, detrending, Tukey shape, device) under ``window``."""
        return RadialSpectrum(
            self.height,
            self.width,
            window=window,
            spectrum=self.spectrum,
            include_corners=self.include_corners,
            detrend=self.detrend,
            tukey_alpha=self.tukey_alpha,
            device=self.device,
        )

    def _check(self, maps: torch.Tensor, ndim: int) -> torch.Tensor:
        if not isinstance(maps, torch.Tensor):
            maps = torch.as_tensor(np.asarray(maps))
        if maps.ndim != ndim or tuple(maps.shape[-2:]) != self.shape:
            want = "(B, H, W)" if ndim == 3 else "(B, C, H, W)"
            raise DataError(
                f"expected maps of shape {want} with (H, W) = {self.shape}; got {tuple(maps.shape)}. "
                "Build RadialSpectrum with the maps' own height and width."
            )
        return maps.to(self.device, torch.float32)

    def power2d(self, maps: torch.Tensor) -> torch.Tensor:
        """Scaled power ``|F|**2 / sum(w**2)`` of (..., H, W) maps -> (..., H, W//2+1) float32."""
        x = maps.to(self.device, torch.float32)
        if self.detrend == "mean":
            x = x - x.mean(dim=(-2, -1), keepdim=True)
        if self._window is not None:
            x = x * self._window
        f = torch.fft.rfft2(x)
        return (f.real**2 + f.imag**2) / self._scale

    def radial(self, spectra2d: torch.Tensor) -> torch.Tensor:
        """Weighted radial mean of half-plane spectra (B, H, W//2+1) -> (B, n_bins) float32."""
        b = spectra2d.shape[0]
        flat = spectra2d.reshape(b, -1) * self._bin_w
        out = torch.zeros(b, self.n_bins + 1, dtype=flat.dtype, device=flat.device)
        out.index_add_(1, self._index, flat)
        return out[:, : self.n_bins]

    def __call__(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """maps (B, H, W) -> (profiles (B, n_bins) float32, spectra (B, H, W//2+1) float32).

        The spectra are the scaled power (or amplitude) of the half plane; the profiles their radial mean.
        """
        maps = self._check(maps, 3)
        spec = self.power2d(maps)
        if self.spectrum == "amplitude":
            spec = spec.sqrt()
        return self.radial(spec), spec

    def from_channels(self, maps: torch.Tensor, how: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
        """maps (B, C, H, W) -> like ``__call__``, reducing channels first.

        ``mean``: average the maps over channels, then transform. ``sum_power``: sum the per-channel power
        spectra (for ``amplitude``: the square root of that sum), then average radially.
        """
        maps = self._check(maps, 4)
        check_choice("channels", how, ("mean", "sum_power"))
        if how == "mean" or maps.shape[1] == 1:
            return self(maps.mean(dim=1))
        spec = self.power2d(maps).sum(dim=1)
        if self.spectrum == "amplitude":
            spec = spec.sqrt()
        return self.radial(spec), spec

    def full_plane(self, half: np.ndarray) -> np.ndarray:
        """Half-plane spectrum (..., H, W//2+1) -> full (..., H, W) plane by Hermitian symmetry, fftshifted
        (zero frequency at index (H//2, W//2)), for plotting."""
        return full_plane(np.asarray(half), self.width)

    def accumulator(
        self, *, bands: Sequence[float] = (0.1, 0.25), options: dict | None = None, **kwargs: Any
    ) -> PSDAccumulator:
        """A :class:`PSDAccumulator` for this spectrum's bins and plane; ``kwargs`` (``group_names``,
        ``extra_windows``, ``n_boot``, ``ci_seed``) go to the accumulator."""
        opts = dict(self.options)
        opts.update(options or {})
        return PSDAccumulator(
            self.freqs, shape=self.shape, bands=bands, options=opts, device=self.device, **kwargs
        )


def full_plane(half: np.ndarray, width: int) -> np.ndarray:
    """rfft2 half plane (..., H, width//2+1) -> fftshifted full (..., H, width) plane (real values)."""
    h = half.shape[-2]
    wr = half.shape[-1]
    if wr != width // 2 + 1:
        raise DataError(f"half plane has {wr} columns; width {width} needs {width // 2 + 1}")
    full = np.empty(half.shape[:-1] + (width,), dtype=half.dtype)
    full[..., :wr] = half
    if width > wr:
        rows = (-np.arange(h)) % h
        cols = width - np.arange(wr, width)
        full[..., wr:] = half[..., rows, :][..., cols]
    return np.fft.fftshift(full, axes=(-2, -1))


def normalise_curves(curves, how: str = "sum"):
    """Normalise each curve (last axis) of a numpy array or torch tensor.

    ``sum``: divide by the curve's sum (an all-zero curve stays zero rather than becoming NaN);
    ``minmax``: map the curve's min to 0 and max to 1 (a constant curve becomes zero); ``none``: as is.
    """
    check_choice("normalise", how, NORMALISATIONS)
    if how == "none":
        return curves
    if isinstance(curves, torch.Tensor):
        tiny = torch.finfo(curves.dtype).tiny if curves.is_floating_point() else 1e-30
        if how == "sum":
            return curves / curves.sum(dim=-1, keepdim=True).clamp_min(tiny)
        lo = curves.amin(dim=-1, keepdim=True)
        span = curves.amax(dim=-1, keepdim=True) - lo
        return (curves - lo) / span.clamp_min(tiny)
    arr = np.asarray(curves, dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    if how == "sum":
        return arr / np.maximum(arr.sum(axis=-1, keepdims=True), tiny)
    lo = arr.min(axis=-1, keepdims=True)
    return (arr - lo) / np.maximum(arr.max(axis=-1, keepdims=True) - lo, tiny)


def normalise_spectra2d(spectra: torch.Tensor, how: str, col_weights: torch.Tensor) -> torch.Tensor:
    """Per-image normalisation of half-plane spectra (B, H, W//2+1), the 2-D analogue of the curves':
    ``sum`` divides by the total over the full plane (half-plane weights), ``minmax`` maps to [0, 1]."""
    check_choice("normalise", how, NORMALISATIONS)
    if how == "none":
        return spectra
    tiny = torch.finfo(torch.float32).tiny
    if how == "sum":
        total = (spectra * col_weights).sum(dim=(-2, -1), keepdim=True)
        return spectra / total.clamp_min(tiny)
    lo = spectra.amin(dim=(-2, -1), keepdim=True)
    span = spectra.amax(dim=(-2, -1), keepdim=True) - lo
    return (spectra - lo) / span.clamp_min(tiny)


def curve_scalars(mean_curve, freqs, bands: Sequence[float] = (0.1, 0.25)) -> dict[str, float]:
    """Scalars of one curve ``p`` over bin centres ``f`` (cycles/pixel).

    - ``centroid_cpp``: ``sum(f p) / sum(p)``;
    - ``frac_low``, ``frac_mid``, ``frac_high``: share of ``sum(p)`` in bins whose centre lies in
      ``[0, b0)``, ``[b0, b1)``, ``[b1, inf)`` with ``bands = (b0, b1)``;
    - ``loglog_slope``: least-squares slope of ``log p`` against ``log f`` over bins with ``f > 0`` and
      ``p > 0`` (NaN when fewer than two such bins).
    A curve with no positive mass gives NaN for the centroid and fractions.
    """
    p = np.asarray(mean_curve, dtype=np.float64)
    f = np.asarray(freqs, dtype=np.float64)
    if p.shape != f.shape or p.ndim != 1:
        raise DataError(f"curve and freqs must be 1-D of equal length; got {p.shape} and {f.shape}")
    if len(bands) != 2 or not 0 < bands[0] < bands[1]:
        raise ConfigError(f"bands must be two increasing positive band edges in cycles/pixel; got {bands}")
    b0, b1 = float(bands[0]), float(bands[1])
    total = p.sum()
    nan = float("nan")
    out = {"centroid_cpp": nan, "frac_low": nan, "frac_mid": nan, "frac_high": nan, "loglog_slope": nan}
    if total > 0:
        out["centroid_cpp"] = float((f * p).sum() / total)
        out["frac_low"] = float(p[f < b0].sum() / total)
        out["frac_mid"] = float(p[(f >= b0) & (f < b1)].sum() / total)
        out["frac_high"] = float(p[f >= b1].sum() / total)
    ok = (f > 0) & (p > 0)
    if ok.sum() >= 2:
        out["loglog_slope"] = float(np.polyfit(np.log(f[ok]), np.log(p[ok]), 1)[0])
    return out


@dataclass
class PSDResult:
    """A radial PSD over a set of images: mean curve, spread, 2-D mean spectrum and scalars.

    ``mean`` is always the mean of the per-image (normalised) curves over all ``n`` images. ``std`` and the
    95 % CI ``[ci_lo, ci_hi]`` describe the spread over

    - images (``spread_over="images"``, the default when no groups are given): ``std`` over images (ddof
      1) and the normal approximation ``mean +- 1.96 std / sqrt(n)``, which treats images as independent;
    - groups (``spread_over="groups"``, when each image came with a group label, the independent unit
      such as a patient or a brain slab whose overlapping patches are not independent): ``std`` is the std
      (ddof 1) of the groups' mean curves, and the CI is a percentile cluster bootstrap over groups:
      groups are resampled with replacement (as many as there are), each replicate is the image-weighted
      mean curve of the resampled groups (``sum of their curve sums / sum of their image counts``), and
      ``ci_lo``/``ci_hi`` are the 2.5 and 97.5 percentiles of the replicates (see :class:`PSDAccumulator`).
      Each replicate is a weighted average of group means, so the interval stays within the range of the
      group means (never negative for a power spectrum). With a single group there is no spread to
      resample: ``std``, ``ci_lo`` and ``ci_hi`` are NaN. ``group_curves`` (n_groups, n_bins) holds each
      group's mean curve, ``group_n`` its image count and ``group_names`` its label (sorted);
    - combined members such as seeds (``spread_over="members"``, Student t with ``n_members - 1`` degrees
      of freedom); see :meth:`combine`.

    ``spectrum_2d`` is the mean per-image-normalised 2-D spectrum, full plane, fftshifted (zero frequency
    at ``(H//2, W//2)``). ``window_curves`` maps a window name to the mean curve of the same maps under that
    window (same spectrum, normalisation, ... and ``options["tukey_alpha"]``), including the main window
    (whose entry equals ``mean``); it is empty unless extra windows were asked for.
    """

    freqs: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    ci_lo: np.ndarray
    ci_hi: np.ndarray
    n: int
    spectrum_2d: np.ndarray
    scalars: dict[str, float]
    options: dict[str, Any] = field(default_factory=dict)
    n_members: int = 1
    spread_over: str = "images"
    group_curves: np.ndarray | None = None
    group_n: np.ndarray | None = None
    group_names: list[str] = field(default_factory=list)
    window_curves: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def has_groups(self) -> bool:
        return self.group_curves is not None

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``n``, ``n_members``, ``spread_over``, ``scalars``, ``options``, ``curve``; plus
        ``groups`` (``names``, ``n``, ``curves``) when computed with groups and ``window_curves``
        (window name -> mean curve) when computed under extra windows."""
        out: dict[str, Any] = {
            "n": int(self.n),
            "n_members": int(self.n_members),
            "spread_over": self.spread_over,
            "scalars": self.scalars,
            "options": self.options,
            "curve": {
                "freqs_cpp": self.freqs,
                "mean": self.mean,
                "std": self.std,
                "ci_lo": self.ci_lo,
                "ci_hi": self.ci_hi,
            },
        }
        if self.has_groups:
            out["groups"] = {
                "names": [str(g) for g in self.group_names],
                "n": [int(k) for k in np.asarray(self.group_n)],
                "curves": np.asarray(self.group_curves),
            }
        if self.window_curves:
            out["window_curves"] = {str(k): np.asarray(v) for k, v in self.window_curves.items()}
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path`` (npz) and a sibling ``.json`` (scalars, options, n, curve, groups, window curves),
        both atomically."""
        path = Path(path)
        extra: dict[str, Any] = {}
        if self.has_groups:
            extra["group_curves"] = np.asarray(self.group_curves, dtype=np.float64)
            extra["group_n"] = np.asarray(self.group_n, dtype=np.int64)
            extra["group_names"] = np.asarray([str(g) for g in self.group_names], dtype=str)
        if self.window_curves:
            extra["window_names"] = np.asarray(list(self.window_curves), dtype=str)
            extra["window_curves"] = np.stack([np.asarray(v) for v in self.window_curves.values()])
        save_npz(
            path,
            freqs=self.freqs,
            mean=self.mean,
            std=self.std,
            ci_lo=self.ci_lo,
            ci_hi=self.ci_hi,
            n=np.int64(self.n),
            n_members=np.int64(self.n_members),
            spread_over=np.asarray(self.spread_over),
            spectrum_2d=self.spectrum_2d,
            scalars=np.asarray(json.dumps(self.scalars)),
            options=np.asarray(json.dumps(self.options)),
            **extra,
        )
        write_json(path.with_suffix(".json"), self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PSDResult:
        """Read a result written by :meth:`save` (the npz, or its sibling .json without the 2-D map).

        Files written before groups and window curves existed load with ``group_curves=None`` and an empty
        ``window_curves``."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"PSD file {path} does not exist; run the step that writes it first")
        try:
            if path.suffix == ".json":
                d = read_json(path)
                c = d["curve"]
                arr = {k: np.asarray(c[k], dtype=np.float64) for k in ("mean", "std", "ci_lo", "ci_hi")}
                groups: dict[str, Any] = {}
                if d.get("groups") is not None:
                    g = d["groups"]
                    groups = {
                        "group_names": [str(x) for x in g["names"]],
                        "group_n": np.asarray(g["n"], dtype=np.int64),
                        "group_curves": np.asarray(g["curves"], dtype=np.float64).reshape(
                            len(g["names"]), len(c["freqs_cpp"])
                        ),
                    }
                windows = {
                    str(k): np.asarray(v, dtype=np.float64) for k, v in (d.get("window_curves") or {}).items()
                }
                return cls(
                    freqs=np.asarray(c["freqs_cpp"], dtype=np.float64),
                    n=int(d["n"]),
                    spectrum_2d=np.zeros((0, 0)),
                    scalars={k: (float("nan") if v is None else v) for k, v in d["scalars"].items()},
                    options=d["options"],
                    n_members=int(d.get("n_members", 1)),
                    spread_over=d.get("spread_over", "images"),
                    window_curves=windows,
                    **groups,
                    **arr,
                )
            with np.load(path, allow_pickle=False) as z:
                groups = {}
                if "group_curves" in z:
                    groups = {
                        "group_curves": z["group_curves"],
                        "group_n": z["group_n"],
                        "group_names": [str(x) for x in z["group_names"]],
                    }
                windows = {}
                if "window_curves" in z:
                    windows = {str(k): v for k, v in zip(z["window_names"], z["window_curves"], strict=True)}
                return cls(
                    window_curves=windows,
                    **groups,
                    freqs=z["freqs"],
                    mean=z["mean"],
                    std=z["std"],
                    ci_lo=z["ci_lo"],
                    ci_hi=z["ci_hi"],
                    n=int(z["n"]),
                    spectrum_2d=z["spectrum_2d"],
                    scalars=json.loads(str(z["scalars"])),
                    options=json.loads(str(z["options"])),
                    n_members=int(z["n_members"]) if "n_members" in z else 1,
                    spread_over=str(z["spread_over"]) if "spread_over" in z else "images",
                )
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise DataError(f"PSD file {path} is damaged or incomplete ({exc}); delete it and rerun") from exc

    @classmethod
    def combine(cls, results: Sequence[PSDResult], *, confidence: float = 0.95) -> PSDResult:
        """Average results over members (seeds, heads): the mean of their mean curves and 2-D spectra.

        The spread is over the members: ``std`` of the member means (ddof 1) and a Student-t CI of their
        mean; ``n`` is the total number of images. One member is returned unchanged. Members must share
        frequencies and spectral options (window, spectrum, normalisation, ..., and ``tukey_alpha`` where
        a Tukey window was used). ``window_curves`` are averaged over members for the windows every member
        has; per-group fields are not carried over (the spread is over members).
        """
        from scipy import stats  # only needed here

        results = list(results)
        if not results:
            raise DataError("PSDResult.combine needs at least one result")
        if len(results) == 1:
            return results[0]
        first = results[0]
        for r in results[1:]:
            if r.freqs.shape != first.freqs.shape or not np.allclose(r.freqs, first.freqs):
                raise DataError("cannot combine PSDs with different frequency bins (different image sizes?)")
            for key in _SPECTRAL_KEYS:
                if r.options.get(key) != first.options.get(key):
                    raise DataError(
                        f"cannot combine PSDs computed with different '{key}': "
                        f"{first.options.get(key)!r} vs {r.options.get(key)!r}"
                    )
        if any(r.options.get("window") == "tukey" or "tukey" in r.window_curves for r in results):
            alphas = {r.options.get(_TUKEY_KEY) for r in results}
            if len(alphas) > 1:
                raise DataError(
                    f"cannot combine PSDs computed with different '{_TUKEY_KEY}': {sorted(alphas)}"
                )
        common = [w for w in first.window_curves if all(w in r.window_curves for r in results)]
        window_curves = {w: np.mean([r.window_curves[w] for r in results], axis=0) for w in common}
        means = np.stack([r.mean for r in results])
        m = len(results)
        mean = means.mean(axis=0)
        std = means.std(axis=0, ddof=1)
        half = stats.t.ppf(0.5 + confidence / 2, m - 1) * std / math.sqrt(m)
        spectra = [r.spectrum_2d for r in results]
        spectrum_2d = (
            np.mean(spectra, axis=0) if all(s.shape == spectra[0].shape for s in spectra) else spectra[0]
        )
        options = dict(first.options)
        bands = tuple(options.get("bands", (0.1, 0.25)))
        return cls(
            freqs=first.freqs.copy(),
            mean=mean,
            std=std,
            ci_lo=mean - half,
            ci_hi=mean + half,
            n=int(sum(r.n for r in results)),
            spectrum_2d=spectrum_2d,
            scalars=curve_scalars(mean, first.freqs, bands),
            options=options,
            n_members=m,
            spread_over="members",
            window_curves=window_curves,
        )


def cluster_bootstrap_ci(
    group_sums,
    group_counts,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = CI_LEVEL,
    block: int = 250,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile cluster-bootstrap CI of an image-weighted mean curve, resampling groups.

    ``group_sums`` (G, n_bins): the sum of the curves of each group's images; ``group_counts`` (G,): its
    number of images. Each of ``n_boot`` replicates draws G groups with replacement (uniformly, seeded by
    ``seed``) and takes the image-weighted mean curve of the drawn groups, ``sum(drawn sums) / sum(drawn
    counts)``; the CI is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the replicates,
    bin by bin. A replicate is a weighted average of group means, so the CI lies within their range.
    Needs G >= 2 (one group has no spread to resample: the CI is NaN); with few groups the interval is
    coarse (there are only so many distinct resamples) and tends to be too narrow, as any bootstrap
    with few clusters. Replicates are drawn in blocks of ``block`` to bound memory by ``block * G``.
    """
    sums = np.asarray(group_sums, dtype=np.float64)
    counts = np.asarray(group_counts, dtype=np.float64)
    if sums.ndim != 2 or counts.shape != (sums.shape[0],):
        raise DataError(
            f"group sums must be (G, n_bins) and counts (G,); got {sums.shape} and {counts.shape}"
        )
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r} must lie in (0, 1)")
    n_groups = sums.shape[0]
    if n_groups < 2:
        nan = np.full(sums.shape[1], np.nan)
        return nan, nan.copy()
    if int(n_boot) < 1:
        raise ConfigError(f"n_boot={n_boot!r} must be >= 1")
    if np.any(counts <= 0):
        raise DataError("every group needs at least one image for the cluster bootstrap")
    rng = np.random.default_rng(int(seed))
    reps = []
    for start in range(0, int(n_boot), block):
        b = min(block, int(n_boot) - start)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        weights = np.zeros((b, n_groups))
        np.add.at(weights, (np.arange(b)[:, None], draws), 1.0)
        reps.append((weights @ sums) / (weights @ counts)[:, None])
    reps = np.concatenate(reps)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(reps, [tail, 100.0 - tail], axis=0)
    return lo, hi


class PSDAccumulator:
    """Streaming mean / std / CI of curves and mean of 2-D spectra; memory independent of image count.

    Keeps the sum and sum of squares of the curves, the count and the sum of half-plane 2-D spectra on the
    device (float64 where the device has it), and moves them to the host only in :meth:`result`.

    **Groups.** With ``group_names`` (the labels of the independent units, e.g. patients or slabs) every
    :meth:`update` also takes ``group_index`` (B,), the position of each image's group in
    ``group_names``, and adds the batch's curves into a (n_groups, n_bins) tensor of per-group sums and a
    (n_groups,) tensor of counts on the device (one ``index_add_`` each, no loop over images). The result
    then has ``spread_over="groups"``: ``std`` over the groups' mean curves and a percentile cluster
    bootstrap CI over groups (:func:`cluster_bootstrap_ci`, ``n_boot`` replicates seeded by ``ci_seed``);
    NaN with a single group. Groups that received no image are left out of the result.

    **Extra windows.** With ``extra_windows`` every :meth:`update` also takes ``window_curves``, a mapping
    from each extra window to the batch's (B, n_bins) curves of the same maps under that window; their
    means (and the main curve's, under ``options["window"]``) become ``PSDResult.window_curves``.
    """

    def __init__(
        self,
        freqs: np.ndarray,
        *,
        shape: tuple[int, int] | None = None,
        bands: Sequence[float] = (0.1, 0.25),
        options: dict | None = None,
        device: str | torch.device = "cpu",
        group_names: Sequence[str] | None = None,
        extra_windows: Sequence[str] = (),
        n_boot: int = N_BOOT,
        ci_seed: int = 0,
    ) -> None:
        self.freqs = np.asarray(freqs, dtype=np.float64)
        self.shape = tuple(shape) if shape is not None else None
        self.bands = tuple(float(b) for b in bands)
        curve_scalars(np.ones_like(self.freqs), self.freqs, self.bands)  # validate bands early
        self.options = dict(options or {})
        self.options["bands"] = list(self.bands)
        self.device = torch.device(device)
        self.dtype = torch.float32 if self.device.type == "mps" else torch.float64
        nb = len(self.freqs)
        self._sum = torch.zeros(nb, dtype=self.dtype, device=self.device)
        self._sumsq = torch.zeros(nb, dtype=self.dtype, device=self.device)
        self._sum2d: torch.Tensor | None = None
        self.n = 0

        self.group_names = None if group_names is None else [str(g) for g in group_names]
        if self.group_names is not None:
            if not self.group_names:
                raise DataError("group_names is empty; pass None to spread over images")
            if len(set(self.group_names)) != len(self.group_names):
                raise DataError("group_names must be unique")
            if int(n_boot) < 1:
                raise ConfigError(f"n_boot={n_boot!r} must be >= 1")
            g = len(self.group_names)
            self._gsum = torch.zeros(g, nb, dtype=self.dtype, device=self.device)
            self._gcount = torch.zeros(g, dtype=self.dtype, device=self.device)
            self.n_boot, self.ci_seed = int(n_boot), int(ci_seed)

        main = self.options.get("window")
        extra = [check_choice("also_windows", w, WINDOWS) for w in extra_windows]
        self.extra_windows = tuple(w for w in dict.fromkeys(extra) if w != main)
        if self.extra_windows and main is None:
            raise DataError("extra_windows need options['window'], the main curve's window")
        self._wsum = {w: torch.zeros(nb, dtype=self.dtype, device=self.device) for w in self.extra_windows}

    def update(self, curves, spectra2d=None, *, group_index=None, window_curves=None) -> None:
        """Add a batch: ``curves`` (B, n_bins), optional ``spectra2d`` (B, H, W//2+1) half planes.

        ``group_index`` (B,) int: each image's position in ``group_names`` (required with groups; a host
        array or CPU tensor is range-checked, a device tensor is trusted to avoid a sync).
        ``window_curves``: {window: (B, n_bins)} for every extra window (required with extra windows).
        """
        c = torch.as_tensor(curves).to(self.device, self.dtype)
        if c.ndim != 2 or c.shape[1] != len(self.freqs):
            raise DataError(f"curves must be (B, {len(self.freqs)}); got {tuple(c.shape)}")
        b = int(c.shape[0])
        if self.group_names is not None:
            if group_index is None:
                raise DataError("this accumulator spreads over groups: pass group_index with every batch")
            gi = torch.as_tensor(group_index)
            if gi.shape != (b,) or gi.is_floating_point() or gi.is_complex():
                raise DataError(f"group_index must be ({b},) integers; got {tuple(gi.shape)} {gi.dtype}")
            if (
                gi.device.type == "cpu"
                and b
                and (int(gi.min()) < 0 or int(gi.max()) >= len(self.group_names))
            ):
                raise DataError(f"group_index must lie in [0, {len(self.group_names)}) (group_names)")
            gi = gi.to(self.device, torch.long)
            self._gsum.index_add_(0, gi, c)
            self._gcount.index_add_(0, gi, torch.ones(b, dtype=self.dtype, device=self.device))
        elif group_index is not None:
            raise DataError("group_index given, but the accumulator was built without group_names")
        if self.extra_windows:
            got = set(window_curves or {})
            if got != set(self.extra_windows):
                raise DataError(f"window_curves must hold {list(self.extra_windows)}; got {sorted(got)}")
            for w in self.extra_windows:
                cw = torch.as_tensor(window_curves[w]).to(self.device, self.dtype)
                if cw.shape != c.shape:
                    raise DataError(f"window_curves['{w}'] must be {tuple(c.shape)}; got {tuple(cw.shape)}")
                self._wsum[w] += cw.sum(0)
        elif window_curves:
            raise DataError("window_curves given, but the accumulator was built without extra_windows")
        self._sum += c.sum(0)
        self._sumsq += (c * c).sum(0)
        self.n += b
        if spectra2d is not None:
            s = torch.as_tensor(spectra2d).to(self.device, self.dtype).sum(0)
            self._sum2d = s if self._sum2d is None else self._sum2d + s

    def result(self) -> PSDResult:
        """The :class:`PSDResult`: spread over images, or over groups when built with ``group_names``."""
        if self.n == 0:
            raise DataError("no images were accumulated; the image set is empty")
        n = self.n
        s = self._sum.cpu().double().numpy()
        ss = self._sumsq.cpu().double().numpy()
        mean = s / n
        var = np.maximum(ss - n * mean**2, 0.0) / (n - 1) if n > 1 else np.zeros_like(mean)
        std = np.sqrt(var)
        half = 1.959963984540054 * std / math.sqrt(n)
        ci_lo, ci_hi = mean - half, mean + half
        if self._sum2d is not None and self.shape is not None:
            spectrum_2d = full_plane(self._sum2d.cpu().double().numpy() / n, self.shape[1])
        else:
            spectrum_2d = np.zeros((0, 0))
        options = dict(self.options)
        extra: dict[str, Any] = {}
        if self.group_names is not None:
            counts = self._gcount.cpu().double().numpy()
            keep = counts > 0
            sums = self._gsum.cpu().double().numpy()[keep]
            counts = counts[keep]
            group_curves = sums / counts[:, None]
            if len(counts) >= 2:
                std = group_curves.std(axis=0, ddof=1)
                ci_lo, ci_hi = cluster_bootstrap_ci(
                    sums, counts, n_boot=self.n_boot, seed=self.ci_seed, level=CI_LEVEL
                )
            else:
                std = np.full_like(mean, np.nan)
                ci_lo, ci_hi = std.copy(), std.copy()
            options["ci"] = {
                "method": "percentile cluster bootstrap over groups, image-weighted mean",
                "level": CI_LEVEL,
                "n_boot": self.n_boot,
                "seed": self.ci_seed,
            }
            extra = {
                "spread_over": "groups",
                "group_curves": group_curves,
                "group_n": np.rint(counts).astype(np.int64),
                "group_names": [g for g, k in zip(self.group_names, keep, strict=True) if k],
            }
        if self.extra_windows:
            wc = {str(self.options["window"]): mean.copy()}
            wc.update({w: self._wsum[w].cpu().double().numpy() / n for w in self.extra_windows})
            extra["window_curves"] = {w: wc[w] for w in WINDOWS if w in wc}
        return PSDResult(
            freqs=self.freqs.copy(),
            mean=mean,
            std=std,
            ci_lo=ci_lo,
            ci_hi=ci_hi,
            n=n,
            spectrum_2d=spectrum_2d,
            scalars=curve_scalars(mean, self.freqs, self.bands),
            options=options,
            **extra,
        )


def alignment(p, q) -> dict[str, float]:
    """Alignment of two curves (arrays or :class:`PSDResult`, whose mean is used), each first
    renormalised to sum 1 (negative values, which a PSD cannot have, are clipped to 0):
    ``cosine`` = p.q / (|p| |q|) and histogram ``overlap`` = sum(min(p, q)), both in [0, 1]."""
    if isinstance(p, PSDResult) and isinstance(q, PSDResult) and not np.allclose(p.freqs, q.freqs):
        raise DataError("the two PSDs have different frequency bins; compute them at the same image size")
    a = np.clip(np.asarray(p.mean if isinstance(p, PSDResult) else p, dtype=np.float64), 0, None)
    b = np.clip(np.asarray(q.mean if isinstance(q, PSDResult) else q, dtype=np.float64), 0, None)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"alignment needs two 1-D curves of equal length; got {a.shape} and {b.shape}")
    if a.sum() <= 0 or b.sum() <= 0:
        return {"cosine": float("nan"), "overlap": float("nan")}
    a, b = a / a.sum(), b / b.sum()
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return {"cosine": cosine, "overlap": float(np.minimum(a, b).sum())}
