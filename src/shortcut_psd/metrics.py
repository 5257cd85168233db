"""ROC-AUC with cluster-bootstrap confidence intervals, and the shortcut gap.

- :func:`predict_scores`: positive-class softmax probabilities, model in ``eval()``.
- :func:`auc_with_ci`: ROC-AUC with a percentile bootstrap CI that resamples the test images' *groups*
  (slabs, patients: overlapping patches of one group are not independent), or single images when no
  groups are given (:mod:`shortcut_psd.clustered`). A resample holding one class only has no AUC and is
  skipped (``n_boot_used`` says how many counted).
- :func:`evaluate_sets`: AUC and CI on each test set, and ``shortcut_gap = auc(test_clean) -
  auc(test_ood)``; the two sets are the same images (and groups) in the same order (as
  :func:`shortcut.build_sets` makes them), so the gap gets a paired interval from the same resamples.
  Every set's per-image scores are returned too, so the aggregation can resample seeds and groups together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from shortcut_psd.clustered import (
    Resamples,
    auc_interval,
    cluster_resamples,
    group_codes,
    percentile_interval,
    weighted_auc,
)
from shortcut_psd.errors import DataError


@torch.inference_mode()
def predict_scores(
    model: nn.Module,
    preprocess,
    images: Any,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    positive: int = 1,
) -> np.ndarray:
    """Probability of class ``positive`` for each image ``(N, C, H, W)`` in ``[0, 1]``; float64 ``(N,)``."""
    model.eval()
    device = torch.device(device)
    model.to(device)
    out = []
    for i in range(0, len(images), batch_size):
        xb = torch.as_tensor(np.asarray(images[i : i + batch_size], dtype=np.float32)).to(device)
        out.append(model(preprocess(xb)).float().softmax(1)[:, positive].cpu())
    if not out:
        return np.zeros(0)
    return torch.cat(out).double().numpy()


def _binary(y_true: Any, positive: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise DataError(f"labels must be 1-D; got shape {y.shape}")
    return y == positive


def auc_with_ci(
    y_true: Any,
    score: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    positive: int = 1,
    groups: Any = None,
) -> dict[str, Any]:
    """ROC-AUC and its percentile bootstrap CI over ``groups`` (images when None):
    ``{auc, lo, hi, n, n_pos, n_neg, n_groups, n_boot_used, resampled}``. NaN AUC (and CI) when
    ``y_true`` holds one class only."""
    y = _binary(y_true, positive)
    s = np.asarray(score, dtype=np.float64)
    if s.shape != y.shape:
        raise DataError(f"{len(s)} scores for {len(y)} labels")
    return auc_interval(y, s, groups=groups, n_boot=n_boot, seed=seed, ci=ci)


def evaluate_sets(
    model: nn.Module,
    preprocess,
    sets: Mapping[str, tuple[Any, Any]],
    *,
    names: Sequence[str] | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    positive: int = 1,
    groups: Any = None,
) -> dict[str, Any]:
    """AUC with CI for each set, plus the shortcut gap.

    ``sets`` maps names to ``(images, labels)`` (for example :func:`shortcut.build_sets`); ``names``
    picks which to evaluate (default: those starting with ``test``). ``groups`` labels the test images
    (one per image, the same for every set: the sets hold the same images in the same order) and makes
    every interval a cluster bootstrap over groups; all sets share the same resamples. Returns ``{name:
    {auc, lo, hi, n, ...}}``, ``scores`` (``{name: per-image scores}``) and, when ``test_clean`` and
    ``test_ood`` are both evaluated, ``shortcut_gap`` with ``shortcut_gap_lo`` / ``shortcut_gap_hi``.
    """
    names = list(names) if names is not None else [k for k in sets if k.startswith("test")]
    missing = [k for k in names if k not in sets]
    if missing:
        raise DataError(f"sets {missing} are not among {list(sets)}")
    results: dict[str, Any] = {}
    scores: dict[str, np.ndarray] = {}
    weights: dict[int, Resamples] = {}
    for name in names:
        images, labels = sets[name]
        scores[name] = predict_scores(
            model, preprocess, images, batch_size=batch_size, device=device, positive=positive
        )
        n = len(labels)
        g = groups if groups is not None and len(groups) == n else None
        if n not in weights and n_boot > 0:
            codes, n_groups = group_codes(g, n)
            weights[n] = cluster_resamples(codes, n_groups, n_boot, np.random.default_rng(seed))
        results[name] = auc_interval(
            _binary(labels, positive), scores[name], groups=g, n_boot=0, ci=ci, weights=weights.get(n)
        )
    results["scores"] = scores
    if "test_clean" in results and "test_ood" in results:
        gap = results["test_clean"]["auc"] - results["test_ood"]["auc"]
        results["shortcut_gap"] = float(gap)
        lo = hi = float("nan")
        y_clean = _binary(sets["test_clean"][1], positive)
        y_ood = _binary(sets["test_ood"][1], positive)
        w = weights.get(len(y_clean))
        if np.isfinite(gap) and w is not None and np.array_equal(y_clean, y_ood):
            boot = weighted_auc(y_clean, scores["test_clean"], w) - weighted_auc(y_ood, scores["test_ood"], w)
            lo, hi = percentile_interval(boot, ci)
        results["shortcut_gap_lo"], results["shortcut_gap_hi"] = lo, hi
    return results
