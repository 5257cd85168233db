"""General statistics: a two-group permutation test, Holm's adjustment and distances between spectral
curves. The study's intervals and question 3's test live in :mod:`shortcut_psd.clustered` and
:mod:`shortcut_psd.association` (docs/DEFINITIONS.md, "Statistics").

- **Permutation test between two groups** (between inits per (artifact, p), over seeds): two-sided,
  statistic = difference of means (or medians) ``a - b``; the null distribution comes from reassigning
  the pooled values to the two groups. When every reassignment fits in ``n_resamples`` scipy enumerates
  them exactly, otherwise it samples ``n_resamples`` at random. Its false-positive rate is checked by
  simulation in ``tests/test_stats.py``.
- **Holm adjustment** of the p-values of all pairwise tests within one family (step-down, controls the
  family-wise error rate).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from shortcut_psd.errors import DataError

__all__ = ["ColumnError", "permutation_test", "holm", "curve_distance"]


def _finite(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


class ColumnError(DataError, ValueError):
    """A table lacks a column a statistic or figure needs (also a ``ValueError``)."""


# --------------------------------------------------------------------------------------------------
# Two-group permutation test and Holm
# --------------------------------------------------------------------------------------------------

_STATISTICS = {
    "mean_diff": lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
    "median_diff": lambda a, b, axis: np.median(a, axis=axis) - np.median(b, axis=axis),
}


def permutation_test(
    a: Any, b: Any, *, n_resamples: int = 10000, seed: int = 0, statistic: str = "mean_diff"
) -> dict[str, Any]:
    """Two-sided permutation test of ``statistic(a) - statistic(b)`` (``"mean_diff"`` or ``"median_diff"``).

    Uses :func:`scipy.stats.permutation_test` with ``permutation_type="independent"``: exact when the
    number of distinct reassignments ``C(n_a + n_b, n_a)`` is at most ``n_resamples`` (``exact=True`` in
    the result), else Monte Carlo with ``n_resamples`` draws from ``seed``. Note that with few seeds the
    smallest attainable p is bounded (3 vs 3 seeds: 2/20 = 0.1). Non-finite values are dropped; with fewer
    than one value in either group the statistic and p are NaN.

    Returns ``{"statistic", "p_value", "n_a", "n_b", "exact"}``.
    """
    if statistic not in _STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; choose one of {sorted(_STATISTICS)}")
    x, y = _finite(a), _finite(b)
    out: dict[str, Any] = {
        "statistic": float("nan"),
        "p_value": float("nan"),
        "n_a": int(x.size),
        "n_b": int(y.size),
        "exact": False,
    }
    if x.size == 0 or y.size == 0:
        return out
    fn = _STATISTICS[statistic]
    out["statistic"] = float(fn(x, y, 0))
    if np.ptp(np.concatenate([x, y])) == 0:  # all values equal: every reassignment gives 0
        out.update(p_value=1.0, exact=True)
        return out
    res = sps.permutation_test(
        (x, y),
        lambda u, v, axis: fn(u, v, axis),
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    out["p_value"] = float(res.pvalue)
    out["exact"] = math.comb(x.size + y.size, x.size) <= n_resamples
    return out


def holm(p_values: Any) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate), same order as the input.

    scipy has Benjamini-Hochberg/Yekutieli (``scipy.stats.false_discovery_control``) but no Holm, so it is
    written out: sort the m finite p-values ascending, ``p_adj(i) = max_{j<=i} min(1, (m - j + 1) p(j))``
    (1-based ranks). NaN p-values stay NaN and do not count towards m.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


# --------------------------------------------------------------------------------------------------
# Curve distances (before vs after fine-tuning)
# --------------------------------------------------------------------------------------------------


def curve_distance(p: Any, q: Any) -> dict[str, float]:
    """Distances between two non-negative spectral curves on the same frequency bins.

    Both curves are first normalised to sum 1. Returns:

    - ``l1``: ``sum |p - q|`` in [0, 2] (= 2 × total-variation distance);
    - ``js``: Jensen-Shannon *distance* (square root of the divergence, base 2) in [0, 1];
    - ``cosine``: cosine *distance* ``1 - p·q / (|p||q|)`` in [0, 1] for non-negative curves.

    All three are 0 for identical curve shapes.
    """
    p = np.asarray(p, dtype=float).ravel()
    q = np.asarray(q, dtype=float).ravel()
    if p.shape != q.shape:
        raise ValueError(f"curves must have the same number of bins, got {p.size} and {q.size}")
    for name, c in (("p", p), ("q", q)):
        if not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
            raise ValueError(f"curve {name} must be finite, non-negative and not all zero")
    p, q = p / p.sum(), q / q.sum()
    cos = float(p @ q / (np.linalg.norm(p) * np.linalg.norm(q)))
    return {
        "l1": float(np.abs(p - q).sum()),
        "js": float(jensenshannon(p, q, base=2)),
        "cosine": float(max(0.0, 1.0 - cos)),
    }
