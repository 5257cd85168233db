"""Streaming accumulation of radial PSD curves into a :class:`~shortcut_psd.psd_result.PSDResult`.

Definitions (docs/DEFINITIONS.md, "Gradient PSD" and "Independent units"): :class:`PSDAccumulator` streams
batches of curves (and half-plane 2-D spectra) into sums kept on the device, so memory does not grow with
the number of images; with group labels it also keeps per-group sums (spread over groups by
:func:`shortcut_psd.psd_bootstrap.cluster_bootstrap_ci`), and with extra windows the mean curve under
each. Re-exported by :mod:`shortcut_psd.psd_result` and :mod:`shortcut_psd.spectral`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.psd_bootstrap import cluster_bootstrap_ci
from shortcut_psd.psd_result import PSDResult
from shortcut_psd.spectral import CI_LEVEL, N_BOOT, WINDOWS, check_choice, curve_scalars, full_plane


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
