"""Learning order, ``psd.recipe``: the gradient spectrum of a snapshot as this study or a neighbouring tool
defines it (docs/DEFINITIONS.md, "Learning order", bullet Recipes).

- ``default``: :func:`shortcut_psd.gradients.gradient_psd` with the config's ``psd`` options.
- ``freqbias``: the input-gradient spectrum of FreqBias (Lin et al., "Investigating and Explaining the
  Frequency Bias in Image Classification", IJCAI 2022; github.com/zhiyugege/FreqBias, ``grad.py``:
  ``cal_power`` and ``azimuthalAverage``): per image, the gradient summed over channels, the magnitude
  ``|F|`` of its unwindowed 2-D DFT, averaged over rings of integer width around the centre of the
  fft-shifted plane as that code takes it (``((W - 1) / 2, (H - 1) / 2)``, half a bin off the zero
  frequency for even sizes), the innermost ring (the zero frequency and its three neighbours) and the
  outermost ring (a corner) left out, then min-max normalised; the curves are averaged over images.
- ``fsr``: the Fourier sensitivity of Fourier-Sensitivity-Regularization (Krishnamachari et al., "Fourier
  Sensitivity and Regularization of Computer Vision Models", TMLR; github.com/kiranchari/
  Fourier-Sensitivity-Regularization, ``regularizers.py``: ``FourierRegularizer.sfs`` and
  ``Fourier-Sensitivity.ipynb``: ``rotavg``): per image, the gradient averaged over channels, the power
  ``|F|^2 / (H W)`` of its unwindowed (unitary) DFT, *summed* over rings at the rounded distance from the
  zero frequency (corners included), the zero frequency left out, each curve normalised to sum 1; the
  curves are averaged over images.

Only the spectrum is the tools'; the input gradient is this study's (``d sum CE / d preprocessed input``,
eval mode; both tools use the batch-mean loss, whose scale cancels under their per-image normalisation).
Re-exported by :mod:`shortcut_psd.dynamics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from shortcut_psd.errors import ConfigError

#: ``psd.recipe``: spectrum options of this study and of two neighbouring tools (docs/DEFINITIONS.md,
#: "Learning order"). ``rings``: the radial reduction of :class:`RecipeSpectrum` (``freqbias``: ring
#: means around the tool's centre; ``fsr``: ring sums at the rounded radius). ``drop_dc``: the bin of the
#: zero frequency is left out before the per-image normalisation.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "freqbias": {"window": "none", "spectrum": "amplitude", "channels": "mean", "include_corners": True,
                 "rings": "freqbias", "normalise": "minmax", "drop_dc": True},
    "fsr": {"window": "none", "spectrum": "power", "channels": "mean", "include_corners": True,
            "rings": "fsr", "normalise": "sum", "drop_dc": True},
}  # fmt: skip


def recipe_options(psd: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``(psd options with psd.recipe applied, drop_dc)``; an unknown recipe raises naming ``psd.recipe``."""
    from shortcut_psd.config import psd_options

    name = psd.get("recipe", "default")
    if name not in RECIPES:
        raise ConfigError(f"psd.recipe '{name}' is not one of {', '.join(RECIPES)}")
    over = dict(RECIPES[name])
    drop_dc = bool(over.pop("drop_dc", False))
    return {**psd_options(psd), **over}, drop_dc


def _renormalise(curve: np.ndarray, how: str, drop_dc: bool) -> np.ndarray:
    c = np.asarray(curve, dtype=np.float64).copy()
    if drop_dc:
        c[0] = 0.0
        if how == "sum" and c.sum() > 0:
            c = c / c.sum()
    return c


class RecipeSpectrum:
    """Per-image radial curves of a named recipe (``freqbias`` or ``fsr``) of (B, C, H, W) gradients.

    Attributes: ``freqs`` (n_rings,) the mean radius in cycles/pixel of the full-plane bins of each kept
    ring (``fsr``: ``k / min(H, W)`` with ``k = 0`` kept as a zero bin so the layout matches ``default``);
    ``name``; ``shape``.
    """

    def __init__(self, name: str, height: int, width: int, *, device: Any = "cpu") -> None:
        import torch

        if name not in ("freqbias", "fsr"):
            raise ConfigError(f"psd.recipe '{name}' has no recipe spectrum; use one of freqbias, fsr")
        self.name, self.shape = name, (int(height), int(width))
        H, W = self.shape
        fy, fx = np.fft.fftfreq(H), np.fft.fftfreq(W)  # cycles/pixel of the full (unshifted) fft2 plane
        radius = np.hypot(fy[:, None], fx[None, :])
        if name == "fsr":
            n = min(H, W)
            ring = np.floor(radius * n + 0.5).astype(np.int64)  # round(distance in bins); no ties occur
            keep = np.arange(int(ring.max()) + 1)
            keep = keep[1:]  # the zero frequency is left out
            freqs = np.arange(int(ring.max()) + 1, dtype=np.float64) / n
        else:
            # FreqBias' centre in the fft-shifted plane: ((W - 1) / 2, (H - 1) / 2); bin (ky, kx) sits at
            # index (ky + H // 2, kx + W // 2) there, so its distance from that centre is:
            ky = np.fft.fftfreq(H) * H + H // 2 - (H - 1) / 2
            kx = np.fft.fftfreq(W) * W + W // 2 - (W - 1) / 2
            ring = np.floor(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)
            keep = np.arange(1, int(ring.max()))  # innermost and outermost ring left out
            counts = np.bincount(ring.ravel())
            freqs = np.bincount(ring.ravel(), weights=radius.ravel()) / np.maximum(counts, 1)
        self.freqs = freqs if name == "fsr" else freqs[keep]
        self._keep = torch.as_tensor(keep, device=device)
        self._ring = torch.as_tensor(ring.ravel(), device=device)
        self._n_rings = int(ring.max()) + 1
        counts = np.bincount(ring.ravel(), minlength=self._n_rings).astype(np.float64)
        self._counts = torch.as_tensor(counts, dtype=torch.float32, device=device)
        self.device = device

    def __call__(self, grads) -> tuple[Any, Any]:
        """grads (B, C, H, W) -> (curves (B, n_rings) normalised per image, the matching full-plane 2-D
        spectra (B, H, W), fft-shifted, scaled per image as the curves (``fsr``: the kept bins sum to 1,
        zero frequency 0; ``freqbias``: ``(|F| - lo) / (hi - lo)`` with the curve's min ``lo``, max ``hi``))."""
        import torch

        g = grads.float().mean(dim=1)  # channel mean (FreqBias' channel sum differs by C: cancels in min-max)
        f = torch.fft.fft2(g)
        spec = f.real**2 + f.imag**2
        spec = spec / (g.shape[-2] * g.shape[-1]) if self.name == "fsr" else spec.sqrt()
        flat = spec.reshape(len(spec), -1)
        sums = torch.zeros(len(spec), self._n_rings, dtype=flat.dtype, device=flat.device)
        sums.index_add_(1, self._ring, flat)
        tiny = torch.finfo(torch.float32).tiny
        if self.name == "fsr":
            kept = sums[:, self._keep]
            total = kept.sum(dim=1, keepdim=True).clamp_min(tiny)
            curves = torch.zeros_like(sums)
            curves[:, self._keep] = kept / total
            spec2d = spec / total[:, :, None]
            spec2d[:, 0, 0] = 0.0
        else:
            means = (sums / self._counts)[:, self._keep]
            lo, hi = means.amin(dim=1, keepdim=True), means.amax(dim=1, keepdim=True)
            span = (hi - lo).clamp_min(tiny)
            curves = (means - lo) / span
            spec2d = (spec - lo[:, :, None]) / span[:, :, None]
        return curves, torch.fft.fftshift(spec2d, dim=(-2, -1))


def recipe_psd(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    preprocess: Callable,
    recipe: str,
    *,
    batch_size: int = 128,
    device: Any = "cpu",
    amp: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(freqs, mean curve, mean 2-D spectrum)`` of ``model``'s input gradients on ``images`` under the
    named ``recipe`` (``freqbias`` or ``fsr``): per-image curves (:class:`RecipeSpectrum`) averaged over
    the images. The gradient is :func:`shortcut_psd.gradients.input_gradients` (eval mode; the model's
    mode is restored; no parameter gradient is touched)."""
    import torch

    from shortcut_psd.gradients import input_gradients, resolve_device

    dev = resolve_device(device)
    model.to(dev)
    images = np.asarray(images, dtype=np.float32)
    y_all = torch.as_tensor(np.asarray(labels).astype(np.int64), device=dev)
    rs = RecipeSpectrum(recipe, *images.shape[-2:], device=dev)
    curve_sum = torch.zeros(len(rs.freqs), dtype=torch.float64, device=dev)
    spec_sum = torch.zeros(rs.shape, dtype=torch.float64, device=dev)
    for s in range(0, len(images), int(batch_size)):
        x01 = torch.as_tensor(images[s : s + int(batch_size)], device=dev)
        g = input_gradients(model, x01, y_all[s : s + len(x01)], preprocess, amp=amp)
        curves, spec2d = rs(g.detach())
        curve_sum += curves.double().sum(0)
        spec_sum += spec2d.double().sum(0)
    n = max(len(images), 1)
    return rs.freqs, (curve_sum / n).cpu().numpy(), (spec_sum / n).cpu().numpy()
