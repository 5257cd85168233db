"""Behavioural spectral probes: band-masking reliance and the Fourier heat map.

Definitions (docs/DEFINITIONS.md, "Probes"):

- **Bands.** Radial frequency bands ``[lo, hi)`` in cycles per pixel, radii as in "Gradient PSD". The
  default groups the PSD's radial bins (width ``1/N``, ``N = min(H, W)``, bin ``k`` holding
  ``[(k - 0.5)/N, (k + 0.5)/N)``) into ``n_bands`` contiguous groups of (nearly) equal numbers of bins;
  the last band is open (``hi = inf``) so the bands partition the whole plane, corners included.
- **Band reliance.** Each test image is filtered in the periodic DFT (``rfft2``, a 0/1 mask by radius,
  ``irfft2``; per channel, on the ``[0, 1]`` image before the model's preprocessing, no clipping): once with
  one band *removed* and once with *only* that band *kept*. The model's AUC (positive-class probability;
  binary targets) and accuracy (argmax) are taken on each filtered set. Reliance on a band is
  ``AUC(clean) - AUC(band removed)``. A mask that keeps everything returns the images unchanged (exactly);
  one that removes everything leaves every image equal (zero), so every score ties and the AUC is 0.5.
- **Fourier heat map** (Yin et al. 2019). For each frequency ``(ky, kx)`` of the half plane of ``rfft2``
  (``kx = 0 .. W//2``; ``ky`` over ``fftfreq(H)``; where ``(ky, kx)`` and ``(-ky, -kx)`` both lie in the
  half plane only one is computed) the basis image ``U = cos(2 pi (ky y / H + kx x / W))`` scaled to unit
  L2 norm over the ``H x W`` plane is added, times ``norm`` and a random sign drawn per image, to every
  channel of every test image (no clipping). The map holds ``AUC(clean) - AUC(perturbed)`` (binary) or the
  increase of the error rate (multi-class). ``U(-k) = U(k)``, so the half plane holds every basis image.
- **Linear probe.** A backbone without a head for the target (an init before fine-tuning) gets a linear
  head trained on its pooled features of the target's training images: a seeded, class-stratified subsample
  of at most ``probe_train_images``, features standardised, multinomial logistic regression with L2 penalty
  ``probe_l2`` fitted by full-batch L-BFGS from zero weights (deterministic for a given subsample).

Everything is batched on the device: the band masks and the basis images are built once per image size;
the filtered or perturbed copies of a batch are made by one broadcast expression and scored in chunks.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from shortcut_psd.clustered import Resamples, cluster_resamples, group_codes, weighted_auc
from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.probe_geometry import (  # noqa: F401  (re-exported: the probes' public names)
    check_bands,
    clean_label,
    default_bands,
    full_plane,
    half_plane,
    heatmap_labels,
    heatmap_radial,
    probe_options,
    radius_grid,
    resolve_bands,
)

Scorer = Callable[[torch.Tensor], torch.Tensor]


# -- frequency geometry -------------------------------------------------------------------------------
def band_masks(height: int, width: int, bands: np.ndarray, device: Any = "cpu") -> torch.Tensor:
    """``(n_bands, H, W//2 + 1)`` float 0/1 masks of the ``rfft2`` plane: 1 where ``lo <= r < hi``.

    Built once per (size, bands, device) and cached: do not modify the returned tensor in place."""
    key = tuple(map(tuple, np.asarray(bands, dtype=np.float64).tolist()))
    return _band_masks(int(height), int(width), key, str(torch.device(device)))


@functools.lru_cache(maxsize=16)
def _band_masks(height: int, width: int, bands: tuple, device: str) -> torch.Tensor:
    r = radius_grid(height, width)
    m = np.stack([(r >= lo) & (r < hi) for lo, hi in bands])
    return torch.as_tensor(m, dtype=torch.float32, device=device)


def filter_images(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) filtered by ``mask`` (M, H, W//2+1) -> (M, B, C, H, W); all-ones masks return
    ``x`` itself (exactly)."""
    h, w = x.shape[-2:]
    spec = torch.fft.rfft2(x.float())
    out = torch.fft.irfft2(spec[None] * mask[:, None, None], s=(h, w))
    full = (mask == 1).flatten(1).all(dim=1)
    if bool(full.any()):
        out[full] = x.float()
    return out


def fourier_basis(height: int, width: int, freqs: np.ndarray, device: Any = "cpu") -> torch.Tensor:
    """``(F, H, W)`` real basis images of unit L2 norm for the ``(ky, kx)`` index pairs ``freqs``.

    Built once per (size, frequencies, device) and cached: do not modify the returned tensor in place."""
    key = tuple(map(tuple, np.asarray(freqs, dtype=np.int64).tolist()))
    return _fourier_basis(int(height), int(width), key, str(torch.device(device)))


@functools.lru_cache(maxsize=8)
def _fourier_basis(height: int, width: int, freqs: tuple, device: str) -> torch.Tensor:
    k = torch.as_tensor(np.asarray(freqs, dtype=np.int64).reshape(-1, 2), dtype=torch.float64, device=device)
    yy = torch.arange(height, dtype=torch.float64, device=device)[:, None]
    xx = torch.arange(width, dtype=torch.float64, device=device)[None, :]
    phase = 2 * math.pi * (k[:, 0, None, None] * yy / height + k[:, 1, None, None] * xx / width)
    u = torch.cos(phase)
    u = u / u.flatten(1).norm(dim=1)[:, None, None]
    return u.float()


def model_scorer(model: nn.Module, preprocess: Callable, device: Any = "cpu") -> Scorer:
    """``x01`` (B, C, H, W) on ``device`` -> class probabilities (B, K), eval mode, no gradient."""
    model.eval()

    @torch.no_grad()
    def score(x01: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(preprocess(x01)).float(), dim=1)

    return score


def _stratified(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = np.arange(len(labels))
    if cap <= 0 or cap >= len(labels):
        return idx
    keep = []
    for c in np.unique(labels):
        members = idx[labels == c]
        k = max(1, round(cap * len(members) / len(labels)))
        keep.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(keep))


@torch.no_grad()
def _features(
    model: nn.Module, preprocess: Callable, x01: np.ndarray, device, batch_size: int
) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, len(x01), batch_size):
        xb = torch.as_tensor(x01[i : i + batch_size], device=device)
        out.append(model.forward_head(model.forward_features(preprocess(xb)), pre_logits=True).float())
    return torch.cat(out)


def linear_probe(
    model: nn.Module,
    preprocess: Callable,
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    seed: int,
    max_images: int = 1000,
    l2: float = 1e-3,
    max_iter: int = 200,
    batch_size: int = 256,
    device: Any = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """A copy of ``model`` whose head is a logistic regression on its pooled features (see module doc)."""
    if len(np.unique(labels)) < 2:
        raise DataError("linear probe: the training images hold a single class; the target needs two or more")
    device = torch.device(device)
    keep = _stratified(np.asarray(labels), int(max_images), int(seed))
    feats = _features(model, preprocess, images[keep], device, batch_size)
    y = torch.as_tensor(np.asarray(labels)[keep], dtype=torch.long, device=device)
    mu, sd = feats.mean(0), feats.std(0).clamp_min(1e-6)
    z = (feats - mu) / sd
    w = torch.zeros(num_classes, z.shape[1], device=device, requires_grad=True)
    b = torch.zeros(num_classes, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=int(max_iter), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z @ w.T + b, y) + float(l2) * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    probe = copy.deepcopy(model)
    probe.reset_classifier(num_classes)
    head = probe.get_classifier()
    with torch.no_grad():
        wd = (w / sd).detach()
        head.weight.copy_(wd.to(head.weight.dtype))
        head.bias.copy_((b - wd @ mu).detach().to(head.bias.dtype))
    probe.to(device).eval()
    with torch.no_grad():
        acc = float(((z @ w.T + b).argmax(1) == y).float().mean())
    return probe, {"n_train": len(keep), "train_accuracy": acc, "l2": float(l2), "seed": int(seed)}


# -- metrics ------------------------------------------------------------------------------------------
def _metrics(probs: np.ndarray, y: np.ndarray, weights: Resamples | None) -> tuple[float, float, np.ndarray]:
    """AUC (binary; NaN otherwise), accuracy, and the AUC under each resample of ``weights`` (B,)."""
    acc = float((probs.argmax(-1) == y).mean())
    if probs.shape[-1] != 2:
        return float("nan"), acc, np.full(0 if weights is None else len(weights), np.nan)
    pos = y == 1
    auc = weighted_auc(pos, probs[:, 1])
    reps = weighted_auc(pos, probs[:, 1], weights) if weights is not None else np.zeros(0)
    return float(auc), acc, np.asarray(reps, dtype=np.float64)


def _score_all(score: Scorer, xs: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([score(xs[i : i + batch_size]) for i in range(0, len(xs), batch_size)])


def band_reliance(
    score: Scorer,
    images: np.ndarray,
    labels: np.ndarray,
    bands: np.ndarray,
    *,
    groups: Any = None,
    n_boot: int = 0,
    seed: int = 0,
    batch_size: int = 256,
    device: Any = "cpu",
) -> dict[str, Any]:
    """AUC and accuracy on the clean images, with each band removed and with only each band kept.

    Returns ``auc_clean``, ``acc_clean``, ``auc_remove``/``auc_keep``/``acc_remove``/``acc_keep``
    ``(n_bands,)``, ``reliance = auc_clean - auc_remove``, and with ``n_boot`` the AUCs under the same
    cluster-bootstrap resamples of ``groups`` (``rep_clean`` (B,), ``rep_remove``/``rep_keep`` (B, n_bands);
    resample ``b`` is the same for every model given the same images, groups and ``seed``).
    """
    device = torch.device(device)
    x = np.asarray(images, dtype=np.float32)
    y = np.asarray(labels).astype(np.int64)
    h, w = x.shape[-2:]
    masks = band_masks(h, w, bands, device)
    both = torch.cat([1.0 - masks, masks])  # remove j, then keep j
    nb = len(masks)
    clean, filt = [], []
    chunk = max(1, batch_size // max(1, 2 * nb))
    for i in range(0, len(x), chunk):
        xb = torch.as_tensor(x[i : i + chunk], device=device)
        clean.append(score(xb).cpu())
        f = filter_images(xb, both)  # (2 nb, b, C, H, W)
        p = _score_all(score, f.reshape(-1, *xb.shape[1:]), batch_size)
        filt.append(p.reshape(2 * nb, len(xb), -1).cpu())
    pc = torch.cat(clean).numpy()
    pf = torch.cat(filt, dim=1).numpy()
    weights = None
    codes, n_groups = group_codes(groups, len(y))
    if n_boot > 0:
        weights = cluster_resamples(codes, n_groups, n_boot, np.random.default_rng(seed))
    auc_c, acc_c, rep_c = _metrics(pc, y, weights)
    res = [_metrics(pf[j], y, weights) for j in range(2 * nb)]
    out = {
        "bands": np.asarray(bands, dtype=np.float64),
        "auc_clean": auc_c,
        "acc_clean": acc_c,
        "auc_remove": np.array([r[0] for r in res[:nb]]),
        "auc_keep": np.array([r[0] for r in res[nb:]]),
        "acc_remove": np.array([r[1] for r in res[:nb]]),
        "acc_keep": np.array([r[1] for r in res[nb:]]),
        "rep_clean": rep_c,
        "rep_remove": np.stack([r[2] for r in res[:nb]], axis=-1),
        "rep_keep": np.stack([r[2] for r in res[nb:]], axis=-1),
        "n_images": len(y),
        "n_groups": n_groups,
    }
    out["reliance"] = out["auc_clean"] - out["auc_remove"]
    return out


def fourier_heatmap(
    score: Scorer,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    norm: float,
    step: int = 1,
    seed: int = 0,
    batch_size: int = 256,
    device: Any = "cpu",
) -> dict[str, Any]:
    """The Fourier heat map of a model on ``images`` (see module doc).

    Returns ``heatmap`` ``(H, W//2+1)`` (NaN where not computed with ``step > 1``), ``full``
    ``(H, W)`` fftshifted, ``freqs`` (F, 2) indices, ``metric`` (``auc_drop`` or ``error_increase``) and
    the clean value.
    """
    if not norm > 0:
        raise ConfigError(f"probes.heatmap_norm={norm}: must be > 0 (L2 norm of the added basis image)")
    device = torch.device(device)
    x = np.asarray(images, dtype=np.float32)
    y = np.asarray(labels).astype(np.int64)
    n, _, h, w = x.shape
    freqs = half_plane(h, w, step)
    basis = fourier_basis(h, w, freqs, device)  # (F, H, W), built once
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    signs = (torch.randint(0, 2, (len(freqs), n), generator=gen) * 2 - 1).float().to(device)
    xt = torch.as_tensor(x, device=device)
    pc = _score_all(score, xt, batch_size).cpu().numpy()
    binary = pc.shape[1] == 2
    clean_val = weighted_auc(y == 1, pc[:, 1]) if binary else float((pc.argmax(1) != y).mean())
    per_chunk = max(1, batch_size // max(1, n))
    values = np.empty(len(freqs))
    for f0 in range(0, len(freqs), max(1, per_chunk)):
        f1 = min(len(freqs), f0 + per_chunk)
        pert = xt[None] + float(norm) * signs[f0:f1, :, None, None, None] * basis[f0:f1, None, None]
        probs = _score_all(score, pert.reshape(-1, *xt.shape[1:]), batch_size).cpu().numpy()
        probs = probs.reshape(f1 - f0, n, -1)
        for j in range(f1 - f0):
            if binary:
                values[f0 + j] = clean_val - weighted_auc(y == 1, probs[j, :, 1])
            else:
                values[f0 + j] = float((probs[j].argmax(1) != y).mean()) - clean_val
    half = np.full((h, w // 2 + 1), np.nan)
    half[freqs[:, 0], freqs[:, 1]] = values
    # the duplicates of the self-conjugate columns (kx = 0, Nyquist) hold the same basis image
    for ky, kx in freqs:
        if kx == 0 or (w % 2 == 0 and kx == w // 2):
            half[(-ky) % h, kx] = half[ky, kx]
    return {
        "heatmap": half,
        "full": full_plane(half, w),
        "freqs": freqs,
        "metric": "auc_drop" if binary else "error_increase",
        "clean": float(clean_val),
        "norm": float(norm),
        "step": int(step),
        "n_images": n,
    }


def probe_images(
    images: np.ndarray, labels: np.ndarray, groups: np.ndarray, max_images: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded, class-stratified subsample of at most ``max_images`` (0: all), aligned arrays."""
    keep = _stratified(np.asarray(labels), int(max_images), int(seed))
    return images[keep], np.asarray(labels)[keep], np.asarray(groups)[keep]


def probe_model(
    model: nn.Module,
    preprocess: Callable,
    images: np.ndarray,
    labels: np.ndarray,
    groups: Any,
    bands: np.ndarray,
    opts: Mapping[str, Any],
    *,
    heatmap: bool,
    n_boot: int = 0,
    boot_seed: int = 0,
    device: Any = "cpu",
) -> dict[str, Any]:
    """Band reliance on ``images`` (the probe set) and, with ``heatmap``, the Fourier heat map on its
    first ``opts['heatmap_images']`` images (a stratified subsample, seed ``opts['seed']``)."""
    opts = probe_options(opts)
    score = model_scorer(model, preprocess, device)
    out = {
        "bands": band_reliance(
            score,
            images,
            labels,
            bands,
            groups=groups,
            n_boot=n_boot,
            seed=boot_seed,
            batch_size=int(opts["batch_size"]),
            device=device,
        )
    }
    if heatmap:
        keep = _stratified(np.asarray(labels), int(opts["heatmap_images"]), int(opts["seed"]))
        out["heatmap"] = fourier_heatmap(
            score,
            images[keep],
            np.asarray(labels)[keep],
            norm=float(opts["heatmap_norm"]),
            step=int(opts["heatmap_step"]),
            seed=int(opts["seed"]),
            batch_size=int(opts["batch_size"]),
            device=device,
        )
    return out


BAND_KEYS = ("auc_clean", "acc_clean", "auc_remove", "auc_keep", "acc_remove", "acc_keep")
REP_KEYS = ("rep_clean", "rep_remove", "rep_keep")


def stack_results(labels: Sequence[str], results: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Results of :func:`probe_model`, one per label, as the arrays of ``probes.npz``."""
    if not results:
        raise ValueError("no probe results to stack")
    first = results[0]["bands"]
    arrays: dict[str, np.ndarray] = {
        "labels": np.asarray(list(labels)),
        "bands": np.asarray(first["bands"], dtype=np.float64),
        "n_images": np.asarray(first["n_images"]),
        "n_groups": np.asarray(first["n_groups"]),
    }
    for k in BAND_KEYS + REP_KEYS:
        arrays[k] = np.stack([np.asarray(r["bands"][k], dtype=np.float64) for r in results])
    heat = [(lab, r["heatmap"]) for lab, r in zip(labels, results, strict=True) if "heatmap" in r]
    arrays["heat_labels"] = np.asarray([lab for lab, _ in heat], dtype=str)
    if heat:
        arrays["heatmap"] = np.stack([h["heatmap"] for _, h in heat])
        arrays["heatmap_full"] = np.stack([h["full"] for _, h in heat])
        arrays["heat_clean"] = np.asarray([h["clean"] for _, h in heat])
        arrays["heat_metric"] = np.asarray(heat[0][1]["metric"])
        arrays["heat_norm"] = np.asarray(heat[0][1]["norm"])
        arrays["heat_n_images"] = np.asarray(heat[0][1]["n_images"])
    return arrays
