"""Radial power spectra of batches of 2-D maps, their scalars and alignment.

Their statistics over a set of images (``PSDResult``, ``PSDAccumulator``, ``cluster_bootstrap_ci``) live in
:mod:`shortcut_psd.psd_result` and are re-exported here.

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

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.freqgrid import radius_cpp  # numpy only; re-exported here

if TYPE_CHECKING:  # psd_result imports this module; at run time see __getattr__ at the end
    from shortcut_psd.psd_result import PSDAccumulator

WINDOWS = ("hann", "tukey", "none")
#: default shape of the ``tukey`` window: fraction of the window inside the cosine tapers
TUKEY_ALPHA = 0.5
#: replicates and level of the cluster bootstrap over groups (PSDAccumulator with groups)
N_BOOT = 2000
CI_LEVEL = 0.95
SPECTRA = ("power", "amplitude")
NORMALISATIONS = ("sum", "minmax", "none")
DETRENDS = ("none", "mean")


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
        from shortcut_psd.psd_result import PSDAccumulator  # imports this module: not at module level

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


def alignment(p, q) -> dict[str, float]:
    """Alignment of two curves (arrays or :class:`PSDResult`, whose mean is used), each first
    renormalised to sum 1 (negative values, which a PSD cannot have, are clipped to 0):
    ``cosine`` = p.q / (|p| |q|) and histogram ``overlap`` = sum(min(p, q)), both in [0, 1]."""
    from shortcut_psd.psd_result import PSDResult  # imports this module: not at module level

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


# PSDResult, PSDAccumulator and cluster_bootstrap_ci live in shortcut_psd.psd_result, which imports from this
# module. They are re-exported here on first access (PEP 562) rather than by an import at the end of this
# file: such an import would make `import shortcut_psd.psd_result` fail when it runs before this module.
_PSD_RESULT_NAMES = ("PSDAccumulator", "PSDResult", "cluster_bootstrap_ci")


def __getattr__(name: str) -> Any:
    if name in _PSD_RESULT_NAMES:
        from shortcut_psd import psd_result

        return getattr(psd_result, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
