"""The result of a radial PSD over a set of images: its mean curve, spread, 2-D spectrum and storage.

Definitions (docs/DEFINITIONS.md, "Gradient PSD" and "Independent units"; the curves themselves come from
:class:`shortcut_psd.spectral.RadialSpectrum`):

- **Result.** :class:`PSDResult` holds the mean of the per-image (normalised) curves, their spread (over
  images, groups or combined members such as seeds), the mean 2-D spectrum, the curve scalars and the
  options; it is saved as an npz with a sibling ``.json`` and loaded back, and
  :meth:`PSDResult.combine` averages results over members with a Student-t CI.
- **Accumulation** (:mod:`shortcut_psd.psd_accumulator`, re-exported here): :class:`PSDAccumulator`
  streams batches of curves (and half-plane 2-D spectra) into sums kept on the device, so memory does not
  grow with the number of images; with group labels it also keeps per-group sums, and with extra windows
  the mean curve under each.
- **Spread over groups** (:mod:`shortcut_psd.psd_bootstrap`, re-exported here):
  :func:`cluster_bootstrap_ci`, a percentile cluster bootstrap of the image-weighted mean curve that
  resamples groups, the independent units.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from shortcut_psd.errors import DataError
from shortcut_psd.io import read_json, save_npz, write_json
from shortcut_psd.psd_bootstrap import cluster_bootstrap_ci
from shortcut_psd.spectral import curve_scalars

if TYPE_CHECKING:  # psd_accumulator imports this module; at run time see __getattr__ at the end
    from shortcut_psd.psd_accumulator import PSDAccumulator

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


# PSDAccumulator lives in shortcut_psd.psd_accumulator, which imports PSDResult from this module. It is
# re-exported here on first access (PEP 562) rather than by an import at the end of this file: such an
# import would make `import shortcut_psd.psd_accumulator` fail when it runs before this module.
def __getattr__(name: str) -> Any:
    if name == "PSDAccumulator":
        from shortcut_psd import psd_accumulator

        return psd_accumulator.PSDAccumulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PSDAccumulator", "PSDResult", "cluster_bootstrap_ci"]
