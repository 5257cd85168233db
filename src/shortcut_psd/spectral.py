"""Radial power spectra of batches of 2-D maps, their statistics, scalars and alignment.

Definitions (STUDY.md, "Gradient PSD"; every choice below is a named option):

- **Transform.** ``F = rfft2(w * m)`` of each map ``m`` (H, W), with ``w`` the 2-D Hann window (outer
  product of two periodic 1-D Hann windows, ``torch.hann_window(periodic=True)``) or no window
  (``window="none"``). Optionally the map's own mean is subtracted first (``detrend="mean"``).
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
from shortcut_psd.io import read_json, save_npz, write_json

WINDOWS = ("hann", "none")
SPECTRA = ("power", "amplitude")
NORMALISATIONS = ("sum", "minmax", "none")
DETRENDS = ("none", "mean")
# Options that must agree before two results may be averaged (PSDResult.combine).
_SPECTRAL_KEYS = ("window", "spectrum", "normalise", "include_corners", "channels", "detrend", "shape")


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError naming the allowed values."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")
    return value


def radius_cpp(height: int, width: int, *, half: bool = True) -> np.ndarray:
    """Radius in cycles/pixel of every bin of ``rfft2`` (``half=True``, shape (H, W//2+1)) or ``fft2``."""
    fy = np.fft.fftfreq(height)
    fx = np.fft.rfftfreq(width) if half else np.fft.fftfreq(width)
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


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
        device: str | torch.device = "cpu",
    ) -> None:
        if int(height) < 2 or int(width) < 2:
            raise DataError(f"maps must be at least 2x2 pixels for a spectrum; got {height}x{width}")
        self.height, self.width = int(height), int(width)
        self.window = check_choice("window", window, WINDOWS)
        self.spectrum = check_choice("spectrum", spectrum, SPECTRA)
        self.detrend = check_choice("detrend", detrend, DETRENDS)
        self.include_corners = bool(include_corners)
        self.device = torch.device(device)
        H, W = self.height, self.width
        n = min(H, W)

        if self.window == "hann":
            wy = torch.hann_window(H, periodic=True, dtype=torch.float64)
            wx = torch.hann_window(W, periodic=True, dtype=torch.float64)
            win = wy[:, None] * wx[None, :]
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
            "shape": [self.height, self.width],
        }

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

    def accumulator(self, *, bands: Sequence[float] = (0.1, 0.25), options: dict | None = None):
        """A :class:`PSDAccumulator` for this spectrum's bins and plane."""
        opts = dict(self.options)
        opts.update(options or {})
        return PSDAccumulator(self.freqs, shape=self.shape, bands=bands, options=opts, device=self.device)


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

    ``std`` and the 95 % CI ``[ci_lo, ci_hi]`` describe the spread over images (``spread_over="images"``,
    normal approximation ``mean +- 1.96 std / sqrt(n)``), or over combined members such as seeds
    (``spread_over="members"``, Student t with ``n_members - 1`` degrees of freedom); see :meth:`combine`.
    ``spectrum_2d`` is the mean per-image-normalised 2-D spectrum, full plane, fftshifted (zero frequency
    at ``(H//2, W//2)``).
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

    def to_json(self) -> dict[str, Any]:
        return {
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

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path`` (npz) and a sibling ``.json`` (scalars, options, n, curve), both atomically."""
        path = Path(path)
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
        )
        write_json(path.with_suffix(".json"), self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PSDResult:
        """Read a result written by :meth:`save` (the npz, or its sibling .json without the 2-D map)."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"PSD file {path} does not exist; run the step that writes it first")
        try:
            if path.suffix == ".json":
                d = read_json(path)
                c = d["curve"]
                arr = {k: np.asarray(c[k], dtype=np.float64) for k in ("mean", "std", "ci_lo", "ci_hi")}
                return cls(
                    freqs=np.asarray(c["freqs_cpp"], dtype=np.float64),
                    n=int(d["n"]),
                    spectrum_2d=np.zeros((0, 0)),
                    scalars={k: (float("nan") if v is None else v) for k, v in d["scalars"].items()},
                    options=d["options"],
                    n_members=int(d.get("n_members", 1)),
                    spread_over=d.get("spread_over", "images"),
                    **arr,
                )
            with np.load(path, allow_pickle=False) as z:
                return cls(
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
        frequencies and spectral options (window, spectrum, normalisation, ...).
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
        )


class PSDAccumulator:
    """Streaming mean / std / CI of curves and mean of 2-D spectra; memory independent of image count.

    Keeps the sum and sum of squares of the curves, the count and the sum of half-plane 2-D spectra on the
    device (float64 where the device has it), and moves them to the host only in :meth:`result`.
    """

    def __init__(
        self,
        freqs: np.ndarray,
        *,
        shape: tuple[int, int] | None = None,
        bands: Sequence[float] = (0.1, 0.25),
        options: dict | None = None,
        device: str | torch.device = "cpu",
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

    def update(self, curves, spectra2d=None) -> None:
        """Add a batch: ``curves`` (B, n_bins), optional ``spectra2d`` (B, H, W//2+1) half planes."""
        c = torch.as_tensor(curves).to(self.device, self.dtype)
        if c.ndim != 2 or c.shape[1] != len(self.freqs):
            raise DataError(f"curves must be (B, {len(self.freqs)}); got {tuple(c.shape)}")
        self._sum += c.sum(0)
        self._sumsq += (c * c).sum(0)
        self.n += int(c.shape[0])
        if spectra2d is not None:
            s = torch.as_tensor(spectra2d).to(self.device, self.dtype).sum(0)
            self._sum2d = s if self._sum2d is None else self._sum2d + s

    def result(self) -> PSDResult:
        if self.n == 0:
            raise DataError("no images were accumulated; the image set is empty")
        n = self.n
        s = self._sum.cpu().double().numpy()
        ss = self._sumsq.cpu().double().numpy()
        mean = s / n
        var = np.maximum(ss - n * mean**2, 0.0) / (n - 1) if n > 1 else np.zeros_like(mean)
        std = np.sqrt(var)
        half = 1.959963984540054 * std / math.sqrt(n)
        if self._sum2d is not None and self.shape is not None:
            spectrum_2d = full_plane(self._sum2d.cpu().double().numpy() / n, self.shape[1])
        else:
            spectrum_2d = np.zeros((0, 0))
        return PSDResult(
            freqs=self.freqs.copy(),
            mean=mean,
            std=std,
            ci_lo=mean - half,
            ci_hi=mean + half,
            n=n,
            spectrum_2d=spectrum_2d,
            scalars=curve_scalars(mean, self.freqs, self.bands),
            options=dict(self.options),
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
