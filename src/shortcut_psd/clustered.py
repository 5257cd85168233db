"""ROC-AUC and its intervals when test images come in groups (slabs, patients) and models in seeds.

Torch-free (the analysis environment imports it). Definitions (docs/DEFINITIONS.md, "Statistics"):

- **Weighted AUC.** ``AUC_w = sum_{i pos, j neg} w_i w_j [s_i > s_j] + 0.5 [s_i = s_j]`` divided by
  ``W_pos * W_neg``: the Mann-Whitney AUC with each image counted ``w`` times. With unit weights it is
  ``sklearn.metrics.roc_auc_score``. A bootstrap resample is a weight vector (how often each image was
  drawn), so one sort of the scores serves every resample: :func:`weighted_auc` is ``O(B N)`` after one
  ``O(N log N)`` sort and handles ties by mid-ranks. scikit-learn's ``roc_auc_score`` takes one weight
  vector per call; a loop over 2,000 resamples costs ~100x more, hence the hand-written vectorised form.
- **Cluster bootstrap.** Overlapping patches of one slab (or images of one patient) are not independent,
  so a resample draws *groups* with replacement and every image of a drawn group gets weight = the number
  of times its group was drawn (:func:`cluster_weights`). Without groups each image is its own group.
  With few groups (:class:`Resamples`), the weighted AUC is computed per pair of groups instead: one
  ``(G, G)`` table of pair counts, then ``c_b' M c_b / (c_b' P)(c_b' N)`` per resample, ``O(B G^2)``
  instead of ``O(B N)``; the counts are integers, so both forms give the same float to the last bit.
  A resample draws ``n - 1`` of the ``n`` units (groups here, seeds below): the bootstrap variance of a
  mean is then unbiased (with ``n`` draws it is ``(n - 1) / n`` of the usual estimate, which leaves a
  percentile interval too narrow with few units; the coverage tests in ``tests/test_clustered.py`` failed
  at 0.88 with ``n`` draws and 5 seeds). Percentile intervals of an AUC stay in [0, 1].
- **Seeds x groups.** A condition (init, target, artifact, p) is trained with several seeds and scored on
  the same test images (a crossed design: the same group resamples serve every seed). The AUC and probe
  tables use :func:`~shortcut_psd.seed_intervals.seed_group_t_interval` (module
  :mod:`shortcut_psd.seed_intervals`, re-exported here): a two-term t interval ``m -/+ sqrt(t_{S-1}^2 V_S + t_{G-1}^2 V_G)``, with ``V_S`` the seed-to-seed
  variance of the mean and ``V_G`` the group-bootstrap variance of the seed mean, formed on the logit
  (AUC) or atanh (gap) scale. With 2-5 seeds the percentile bootstrap over both (seeds drawn with
  replacement, groups once per replicate) covered 0.80-0.94 at nominal 0.95 in simulation (0.80-0.91 with
  2 seeds), the t interval 0.93-0.99 (docs/DEFINITIONS.md, "Statistics"); the tests keep the old method
  as a reference that must fail where the new one passes.

scipy.stats.bootstrap resamples one axis of independent observations; it has no cluster or crossed
resampling, which is why the resampling is written here (tests compare it with exact enumeration and
check its coverage by simulation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "group_codes",
    "cluster_weights",
    "Resamples",
    "cluster_resamples",
    "weighted_auc",
    "auc_interval",
    "seed_group_t_interval",
    "seed_group_t_difference",
    "percentile_interval",
    "seed_group_curves",
]


def group_codes(groups: Any, n: int) -> tuple[np.ndarray, int]:
    """Integer codes ``(n,)`` of the group labels and the number of groups (each image its own group when
    ``groups`` is None)."""
    if groups is None:
        return np.arange(n), n
    g = np.asarray(groups).astype(str).ravel()
    if g.shape != (n,):
        raise ValueError(f"groups must have one label per image ({n}); got shape {g.shape}")
    _, codes = np.unique(g, return_inverse=True)
    return codes.astype(np.int64), int(codes.max()) + 1 if n else 0


def cluster_weights(codes: np.ndarray, n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` image weights of ``n_boot`` cluster-bootstrap resamples (see module docstring)."""
    return _cluster_counts(n_groups, n_boot, rng)[:, codes]


def _cluster_counts(n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n_groups)``: how often each group is drawn in each resample (``n_groups - 1`` draws)."""
    n_draws = max(n_groups - 1, 1)
    draws = rng.integers(0, n_groups, size=(int(n_boot), n_draws))
    counts = np.zeros((int(n_boot), n_groups))
    np.add.at(counts, (np.arange(int(n_boot))[:, None], draws), 1.0)
    return counts


class Resamples:
    """Cluster-bootstrap resamples kept as group counts: ``counts`` ``(B, G)`` (how often each group was
    drawn) and ``codes`` ``(N,)`` (each image's group). :attr:`weights` gives the ``(B, N)`` image weights
    of :func:`cluster_weights`; :func:`weighted_auc` uses the counts directly when that is cheaper."""

    def __init__(self, codes: np.ndarray, counts: np.ndarray) -> None:
        self.codes, self.counts = np.asarray(codes, dtype=np.int64), np.asarray(counts, dtype=np.float64)
        self._weights: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        if self._weights is None:
            self._weights = self.counts[:, self.codes]
        return self._weights

    @property
    def shape(self) -> tuple[int, int]:
        return (self.counts.shape[0], self.codes.size)

    def __len__(self) -> int:
        return self.counts.shape[0]

    def by_groups(self) -> bool:
        """Whether the per-group-pair form is cheaper (``B G^2`` against ``B N`` operations, roughly)."""
        g = self.counts.shape[1]
        return g * g <= 4 * self.codes.size


def cluster_resamples(codes: np.ndarray, n_groups: int, n_boot: int, rng: np.random.Generator) -> Resamples:
    """The resamples of :func:`cluster_weights` (the same draws from ``rng``) as :class:`Resamples`."""
    return Resamples(codes, _cluster_counts(n_groups, n_boot, rng))


def _grouped_auc(y: np.ndarray, s: np.ndarray, r: Resamples) -> np.ndarray:
    """:func:`weighted_auc` under ``r.weights``, computed from group counts: ``num_b = c_b' M c_b`` with
    ``M[g, h]`` the positives of group ``g`` times the negatives of group ``h`` below them (ties half).
    Every term is a multiple of 1/2 far below 2**53, so the sums are exact and equal the per-image form's."""
    codes, counts = r.codes, r.counts
    n_groups = counts.shape[1]
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted, g_sorted = s[order], y[order], codes[order]
    _, start_of_value, n_tied = np.unique(s_sorted, return_index=True, return_counts=True)
    block = np.repeat(np.arange(len(start_of_value)), n_tied)
    start, end = start_of_value[block], (start_of_value + n_tied)[block]
    neg = np.zeros((y.size, n_groups))
    neg[np.flatnonzero(~y_sorted), g_sorted[~y_sorted]] = 1.0
    cum = np.concatenate([np.zeros((1, n_groups)), np.cumsum(neg, axis=0)], axis=0)  # (N + 1, G)
    below = cum[start] + 0.5 * (cum[end] - cum[start])  # per image: negatives of each group below it
    pos_of_group = np.zeros((n_groups, y.size))
    pos_of_group[g_sorted[y_sorted], np.flatnonzero(y_sorted)] = 1.0
    pairs = pos_of_group @ below  # (G, G)
    num = np.einsum("bg,gh,bh->b", counts, pairs, counts)
    den = (counts @ np.bincount(codes[y], minlength=n_groups)) * (
        counts @ np.bincount(codes[~y], minlength=n_groups)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_auc(y: Any, scores: Any, weights: Any | None = None) -> np.ndarray | float:
    """Weighted ROC-AUC (mid-ranks for ties) of binary ``y`` (bool, True = positive) and ``scores``.

    ``weights`` ``(N,)`` gives a float, ``(B, N)`` or :class:`Resamples` one AUC per row, None unit
    weights. NaN where the weights leave one class empty.
    """
    y = np.asarray(y, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{s.size} scores for {y.size} labels")
    if isinstance(weights, Resamples):
        if weights.codes.size != y.size:
            raise ValueError(f"weights have {weights.codes.size} columns for {y.size} images")
        if weights.by_groups():
            return _grouped_auc(y, s, weights)
        weights = weights.weights
    w = np.ones((1, y.size)) if weights is None else np.asarray(weights, dtype=np.float64)
    single = w.ndim == 1
    w = np.atleast_2d(w)
    if w.shape[1] != y.size:
        raise ValueError(f"weights have {w.shape[1]} columns for {y.size} images")
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted, w_sorted = s[order], y[order], w[:, order]
    # Block of tied scores around each sorted position: [start, end).
    _, start_of_value, counts = np.unique(s_sorted, return_index=True, return_counts=True)
    block = np.repeat(np.arange(len(start_of_value)), counts)
    start, end = start_of_value[block], (start_of_value + counts)[block]
    neg_w = w_sorted * ~y_sorted
    cum = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(neg_w, axis=1)], axis=1)
    below = cum[:, start]
    tied = cum[:, end] - below
    pos_w = w_sorted * y_sorted
    num = (pos_w * (below + 0.5 * tied)).sum(axis=1)
    den = pos_w.sum(axis=1) * neg_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    if weights is None or single:
        return float(auc[0])
    return auc


def percentile_interval(replicates: Any, ci: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the finite replicates (NaN, NaN when there are none)."""
    r = np.asarray(replicates, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    a = (1.0 - ci) / 2
    lo, hi = np.quantile(r, [a, 1 - a])
    return float(lo), float(hi)


def auc_interval(
    y: Any,
    scores: Any,
    *,
    groups: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """AUC with a cluster-bootstrap percentile interval over ``groups`` (images when None).

    Returns ``{auc, lo, hi, n, n_pos, n_neg, n_groups, n_boot_used, resampled}``; ``weights`` (B, N) or
    :class:`Resamples` replaces the drawn resamples (to pair several AUCs on the same images).
    """
    y = np.asarray(y, dtype=bool).ravel()
    codes, n_groups = group_codes(groups, y.size)
    out: dict[str, Any] = {
        "auc": float("nan"),
        "lo": float("nan"),
        "hi": float("nan"),
        "n": int(y.size),
        "n_pos": int(y.sum()),
        "n_neg": int((~y).sum()),
        "n_groups": int(n_groups),
        "n_boot_used": 0,
        "resampled": "groups" if groups is not None else "images",
    }
    if y.all() or not y.any():
        return out
    out["auc"] = weighted_auc(y, scores)
    if weights is None and n_boot > 0:
        weights = cluster_resamples(codes, n_groups, n_boot, np.random.default_rng(seed))
    if weights is not None:
        boot = weighted_auc(y, scores, weights)
        out["lo"], out["hi"] = percentile_interval(boot, ci)
        out["n_boot_used"] = int(np.isfinite(boot).sum())
    return out


def seed_group_curves(
    members: list[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Mean spectral curve over seeds with a seeds x groups percentile band.

    ``members``: one dict per seed with ``mean`` (n_bins,) and, when the PSD was taken with groups,
    ``group_names``, ``group_n`` and ``group_curves`` (n_groups, n_bins). Each seed's curve is normalised
    to sum 1; the estimate is their mean. Replicate ``b`` draws ``G - 1`` of the ``G`` groups named by any
    seed (one draw shared by all seeds: they share the test images) and recomputes each seed's
    image-weighted mean curve, then averages ``S - 1`` seeds drawn with replacement (one seed: none).
    Returns ``(mean, lo, hi, resampled)``; the band is NaN when neither seeds nor groups can be resampled.
    """
    if not members:
        raise ValueError("seed_group_curves needs at least one curve")
    unit = [np.asarray(m["mean"], dtype=np.float64) for m in members]
    unit = [c / c.sum() if c.sum() > 0 else c for c in unit]
    mean = np.mean(unit, axis=0)
    grouped = all(m.get("group_curves") is not None for m in members)
    names = sorted({str(g) for m in members for g in m.get("group_names") or []}) if grouped else []
    n_seeds = len(members)
    rng = np.random.default_rng(seed)
    if grouped and len(names) >= 2:
        index = {g: i for i, g in enumerate(names)}
        codes = np.arange(len(names))
        counts = cluster_weights(codes, len(names), n_boot, rng)  # (B, G) group counts
        reps = []
        for m in members:
            cols = [index[str(g)] for g in m["group_names"]]
            w = counts[:, cols] * np.asarray(m["group_n"], dtype=np.float64)[None, :]
            curves = np.asarray(m["group_curves"], dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = (w @ curves) / w.sum(axis=1, keepdims=True)
                r = r / r.sum(axis=1, keepdims=True)
            reps.append(r)
        stack = np.stack(reps)  # (S, B, bins)
        resampled = f"seeds ({n_seeds}) x groups ({len(names)})" if n_seeds > 1 else f"groups ({len(names)})"
    elif n_seeds > 1:
        stack = np.repeat(np.stack(unit)[:, None, :], n_boot, axis=1)
        resampled = f"seeds ({n_seeds})"
    else:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan, "none: one seed without groups"
    if n_seeds > 1:
        idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds - 1))
        boot = stack[idx, np.arange(n_boot)[:, None]].mean(axis=1)
    else:
        boot = stack[0]
    a = (1 - ci) / 2
    lo, hi = np.nanquantile(boot, [a, 1 - a], axis=0)
    return mean, lo, hi, resampled


# the t intervals of a mean over seeds live in their own module; re-exported here (imported last: no cycle)
from shortcut_psd.seed_intervals import seed_group_t_difference, seed_group_t_interval  # noqa: E402
