"""The result of a radial PSD over a set of images: its mean curve, spread, 2-D spectrum and storage.

Definitions (docs/DEFINITIONS.md, "Gradient PSD" and "Independent units"; the curves themselves come from
:class:`shortcut_psd.spectral.RadialSpectrum`):

- **Result.** :class:`PSDResult` holds the mean of the per-image (normalised) curves, their spread (over
  images, groups or combined members such as seeds), the mean 2-D spectrum, the curve scalars and the
  options; it is saved as an npz with a sibling ``.json`` and loaded back, and
  :meth:`PSDResult.combine` averages results over members with a Student-t CI.
- **Accumulation.** :class:`PSDAccumulator` streams batches of curves (and half-plane 2-D spectra) into
  sums kept on the device, so memory does not grow with the number of images; with group labels it also
  keeps per-group sums, and with extra windows the mean curve under each.
- **Spread over groups.** :func:`cluster_bootstrap_ci`: a percentile cluster bootstrap of the
  image-weighted mean curve that resamples groups, the independent units.

These names are re-exported by :mod:`shortcut_psd.spectral`, so ``from shortcut_psd.spectral import
PSDResult`` keeps working.
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
from shortcut_psd.spectral import CI_LEVEL, N_BOOT, WINDOWS, check_choice, curve_scalars, full_plane

# Options that must agree before two results may be averaged (PSDResult.combine).
_SPECTRAL_KEYS = ("window", "spectrum", "normalise", "include_corners", "channels", "detrend", "shape")
# ... and, where a Tukey window was used (main curve or window_curves), its shape.
_TUKEY_KEY = "tukey_alpha"


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
