"""ROC-AUC with bootstrap confidence intervals, and the shortcut gap.

- :func:`predict_scores`: positive-class softmax probabilities, model in ``eval()``.
- :func:`auc_with_ci`: ROC-AUC (``sklearn.metrics.roc_auc_score``) with a percentile bootstrap CI over
  test images: ``n_boot`` resamples of the images with replacement; a resample holding one class only
  has no AUC and is skipped (``n_boot_used`` says how many counted). The bootstrap AUCs use the
  equivalent rank (Mann-Whitney) formula with mid-ranks for ties, vectorised over resamples.
- :func:`evaluate_sets`: AUC and CI on each test set, and ``shortcut_gap = auc(test_clean) -
  auc(test_ood)``; when the two sets are the same images in the same order (as :func:`shortcut.build_sets`
  makes them) the gap gets a paired bootstrap CI from the same resamples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

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


def _rank_aucs(y: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """AUC of each resample ``idx[b]`` (rows) by the rank formula; NaN where one class is absent."""
    yb = y[idx]
    ranks = rankdata(scores[idx], axis=1)
    n1 = yb.sum(1)
    n0 = yb.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * yb).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    auc[(n1 == 0) | (n0 == 0)] = np.nan
    return auc


def _ci(boot: np.ndarray, ci: float) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return float("nan"), float("nan")
    a = (1.0 - ci) / 2
    return float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def _point_auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # lazy: sklearn.metrics costs ~1 s of every job's start-up

    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, score))


def auc_with_ci(
    y_true: Any, score: Any, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95, positive: int = 1
) -> dict[str, float | int]:
    """ROC-AUC and its percentile bootstrap CI: ``{auc, lo, hi, n, n_pos, n_neg, n_boot_used}``.

    NaN AUC (and CI) when ``y_true`` holds one class only.
    """
    y = _binary(y_true, positive)
    s = np.asarray(score, dtype=np.float64)
    if s.shape != y.shape:
        raise DataError(f"{len(s)} scores for {len(y)} labels")
    auc = _point_auc(y, s)
    out: dict[str, float | int] = {
        "auc": auc,
        "lo": float("nan"),
        "hi": float("nan"),
        "n": int(len(y)),
        "n_pos": int(y.sum()),
        "n_neg": int((~y).sum()),
        "n_boot_used": 0,
    }
    if np.isfinite(auc) and n_boot > 0:
        idx = np.random.default_rng(seed).integers(0, len(y), size=(int(n_boot), len(y)))
        boot = _rank_aucs(y, s, idx)
        out["lo"], out["hi"] = _ci(boot, ci)
        out["n_boot_used"] = int(np.isfinite(boot).sum())
    return out


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
) -> dict[str, Any]:
    """AUC with CI for each set, plus the shortcut gap.

    ``sets`` maps names to ``(images, labels)`` (for example :func:`shortcut.build_sets`); ``names``
    picks which to evaluate (default: those starting with ``test``). Returns ``{name: {auc, lo, hi, n,
    ...}}`` and, when ``test_clean`` and ``test_ood`` are both evaluated, ``shortcut_gap`` (float) with
    ``shortcut_gap_lo`` / ``shortcut_gap_hi`` (paired bootstrap when both sets hold the same labels).
    """
    names = list(names) if names is not None else [k for k in sets if k.startswith("test")]
    missing = [k for k in names if k not in sets]
    if missing:
        raise DataError(f"sets {missing} are not among {list(sets)}")
    results: dict[str, Any] = {}
    scores: dict[str, np.ndarray] = {}
    for name in names:
        images, labels = sets[name]
        scores[name] = predict_scores(
            model, preprocess, images, batch_size=batch_size, device=device, positive=positive
        )
        results[name] = auc_with_ci(labels, scores[name], n_boot=n_boot, seed=seed, ci=ci, positive=positive)
    if "test_clean" in results and "test_ood" in results:
        gap = results["test_clean"]["auc"] - results["test_ood"]["auc"]
        results["shortcut_gap"] = float(gap)
        lo = hi = float("nan")
        y_clean = _binary(sets["test_clean"][1], positive)
        y_ood = _binary(sets["test_ood"][1], positive)
        if np.isfinite(gap) and n_boot > 0 and np.array_equal(y_clean, y_ood):
            idx = np.random.default_rng(seed).integers(0, len(y_clean), size=(int(n_boot), len(y_clean)))
            boot = _rank_aucs(y_clean, scores["test_clean"], idx) - _rank_aucs(y_ood, scores["test_ood"], idx)
            lo, hi = _ci(boot, ci)
        results["shortcut_gap_lo"], results["shortcut_gap_hi"] = lo, hi
    return results
