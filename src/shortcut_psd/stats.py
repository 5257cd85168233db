"""Statistics over seeds and conditions: t-CIs, permutation tests, Holm, Spearman with permutation p and
a seed-level bootstrap CI, and distances between spectral curves.

Definitions (the report quotes these):

- **Mean and CI over seeds**: the sample mean and the two-sided Student-t interval
  ``mean ± t_{(1+ci)/2, n-1} · s / sqrt(n)`` with ``s`` the sample standard deviation (``ddof=1``).
  Non-finite values are dropped first; ``n`` counts the finite values.
- **Permutation test between two groups** (as in the sibling study, between inits per (artifact, p)):
  two-sided, statistic = difference of means (or medians) ``a - b``; the null distribution comes from
  reassigning the pooled values to the two groups. When every reassignment fits in ``n_resamples``
  scipy enumerates them exactly, otherwise it samples ``n_resamples`` at random.
- **Holm adjustment** of the p-values of all pairwise tests within one group (step-down, controls the
  family-wise error rate).
- **Rank correlation** (question 3): Spearman's rho between alignment and shortcut gap across
  (init, artifact) pairs, with a permutation p-value (pairings shuffled) and a bootstrap CI that
  resamples seeds within each pair (see :func:`bootstrap_rank_correlation`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from shortcut_psd.errors import DataError

__all__ = [
    "ColumnError",
    "mean_ci",
    "summarise",
    "permutation_test",
    "holm",
    "pairwise_init_tests",
    "rank_correlation",
    "bootstrap_rank_correlation",
    "curve_distance",
]


def _finite(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


class ColumnError(DataError, ValueError):
    """A table lacks a column a statistic or figure needs (also a ``ValueError``)."""


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    """Raise :class:`ColumnError` naming every column of ``cols`` that ``df`` lacks."""
    if not isinstance(df, pd.DataFrame):
        raise ColumnError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ColumnError(
            f"{what}: missing column(s) {missing}; the frame has {list(df.columns)}. "
            "Pass a long (tidy) frame with one row per seed and these columns."
        )


# --------------------------------------------------------------------------------------------------
# Mean and t-CI over seeds
# --------------------------------------------------------------------------------------------------


def mean_ci(values: Any, ci: float = 0.95) -> dict[str, Any]:
    """Mean with a Student-t confidence interval over seeds.

    Returns ``{"mean", "lo", "hi", "n", "std", "single"}``. ``std`` is the sample standard deviation
    (``ddof=1``). Non-finite values are dropped. With ``n == 1`` there is no spread: ``lo = hi = mean``,
    ``std = nan`` and ``single = True`` flags that the interval is not a real CI. With ``n == 0`` every
    number is NaN.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r} (for a 95% interval pass 0.95)")
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "lo": nan, "hi": nan, "n": 0, "std": nan, "single": False}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "lo": mean, "hi": mean, "n": 1, "std": float("nan"), "single": True}
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + ci / 2, df=n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n, "std": std, "single": False}


def summarise(df: pd.DataFrame, by: list[str], cols: list[str], ci: float = 0.95) -> pd.DataFrame:
    """Tidy summary over seeds: one row per group of ``by``.

    Columns: the ``by`` columns, then for each ``col`` in ``cols``: ``{col}_mean``, ``{col}_lo``,
    ``{col}_hi`` (t-interval, see :func:`mean_ci`) and ``{col}_std``, then ``n`` = number of rows in the
    group (seeds). A column with NaNs in a group gets its CI from its finite values only.
    """
    by, cols = list(by), list(cols)
    _require(df, by + cols, "summarise")
    rows = []
    for key, group in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        for col in cols:
            s = mean_ci(group[col].to_numpy(), ci=ci)
            row[f"{col}_mean"], row[f"{col}_lo"], row[f"{col}_hi"] = s["mean"], s["lo"], s["hi"]
            row[f"{col}_std"] = s["std"]
        row["n"] = len(group)
        rows.append(row)
    out_cols = by + [f"{c}_{s}" for c in cols for s in ("mean", "lo", "hi", "std")] + ["n"]
    return pd.DataFrame(rows, columns=out_cols)


# --------------------------------------------------------------------------------------------------
# Two-group permutation test, Holm, pairwise tests between inits
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


def pairwise_init_tests(
    auc_df: pd.DataFrame,
    metric: str = "gap",
    by: Sequence[str] = ("target", "artifact", "prevalence"),
    init_col: str = "init",
    *,
    n_resamples: int = 10000,
    seed: int = 0,
    statistic: str = "mean_diff",
) -> pd.DataFrame:
    """Permutation test of ``metric`` between every pair of inits, within each group of ``by``.

    ``auc_df`` has one row per seed (columns ``by``, ``init_col``, ``metric``). For each group and each
    pair ``(init_a, init_b)`` of the inits present in it (sorted, ``init_a < init_b``) the result holds
    ``mean_a, mean_b, diff (= statistic a - b), p_value, n_a, n_b`` and ``p_holm``: the Holm-adjusted p
    over all pairs of the same group. Groups with a single init yield no rows.
    """
    by = list(by)
    _require(auc_df, by + [init_col, metric], "pairwise_init_tests")
    rows = []
    for key, group in auc_df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        base = dict(zip(by, key, strict=True))
        values = {i: g[metric].to_numpy(dtype=float) for i, g in group.groupby(init_col, sort=True)}
        group_rows = []
        for ia, ib in itertools.combinations(sorted(values), 2):
            a, b = values[ia], values[ib]
            t = permutation_test(a, b, n_resamples=n_resamples, seed=seed, statistic=statistic)
            fa, fb = _finite(a), _finite(b)
            group_rows.append(
                {
                    **base,
                    "init_a": ia,
                    "init_b": ib,
                    "mean_a": float(fa.mean()) if fa.size else float("nan"),
                    "mean_b": float(fb.mean()) if fb.size else float("nan"),
                    "diff": t["statistic"],
                    "p_value": t["p_value"],
                    "n_a": t["n_a"],
                    "n_b": t["n_b"],
                }
            )
        for r, ph in zip(group_rows, holm([r["p_value"] for r in group_rows]), strict=True):
            r["p_holm"] = float(ph)
        rows.extend(group_rows)
    cols = by + ["init_a", "init_b", "mean_a", "mean_b", "diff", "p_value", "p_holm", "n_a", "n_b"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------------------------------
# Spearman: permutation p and seed-level bootstrap CI
# --------------------------------------------------------------------------------------------------


def _pearson_rows(rx: np.ndarray, ry: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson correlation along ``axis`` (NaN where either side is constant)."""
    dx = rx - rx.mean(axis=axis, keepdims=True)
    dy = ry - ry.mean(axis=axis, keepdims=True)
    num = (dx * dy).sum(axis=axis)
    den = np.sqrt((dx * dx).sum(axis=axis) * (dy * dy).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rank_correlation(x: Any, y: Any, *, n_permutations: int = 10000, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho with a two-sided permutation p-value.

    rho from :func:`scipy.stats.spearmanr` (average ranks for ties). p from
    :func:`scipy.stats.permutation_test` with ``permutation_type="pairings"``: the pairing of x with y is
    shuffled (exact over all n! pairings when ``n! <= n_permutations``). Pairs with a non-finite value are
    dropped. Returns ``{"rho", "p_value", "n"}``; rho and p are NaN when n < 3 or either side is constant.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    out: dict[str, Any] = {"rho": float("nan"), "p_value": float("nan"), "n": n}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    out["rho"] = float(sps.spearmanr(x, y).statistic)
    # Shuffling pairings does not change either side's ranks: rank once, then Pearson on ranks (= Spearman).
    rx, ry = sps.rankdata(x), sps.rankdata(y)
    res = sps.permutation_test(
        (rx,),
        lambda u, axis: _pearson_rows(u, ry, axis=axis),
        permutation_type="pairings",
        vectorized=True,
        n_resamples=n_permutations,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    out["p_value"] = float(res.pvalue)
    return out


def bootstrap_rank_correlation(
    table: pd.DataFrame,
    *,
    x: str = "alignment",
    y: str = "gap",
    unit: str = "seed",
    pair_cols: Sequence[str] = ("init", "artifact"),
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Spearman rho between ``x`` and ``y`` across pairs, with a bootstrap CI over seeds.

    Procedure:

    1. Rows are first averaged per (pair, ``unit``), so each seed counts once per pair (for example
       alignment and gap of one fine-tuning seed).
    2. Point estimate: per pair (a combination of ``pair_cols``, e.g. (init, artifact)) take the mean of
       ``x`` and of ``y`` over its seeds; rho = Spearman across pairs of these means.
    3. Each of ``n_boot`` replicates resamples, independently within every pair, that pair's seeds with
       replacement (as many draws as it has seeds; x and y of a seed stay together), recomputes the per-pair
       means and the Spearman rho across pairs. The set of pairs is fixed: the CI reflects seed-to-seed
       variation, not the choice of inits and artifacts.
    4. CI: the percentile interval ``[(1-ci)/2, (1+ci)/2]`` of the replicate rhos. Replicates whose rho is
       undefined (a side constant across pairs) are dropped and counted in ``n_boot_valid``.

    This stratified, two-level resampling is not what :func:`scipy.stats.bootstrap` does (it resamples one
    axis of the data jointly), hence the hand-written loop. Pairs with only one seed contribute a fixed
    mean. Returns ``{"rho", "lo", "hi", "n_pairs", "n_units_min", "n_boot", "n_boot_valid", "ci"}``.
    """
    pair_cols = list(pair_cols)
    _require(table, pair_cols + [unit, x, y], "bootstrap_rank_correlation")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    clean = table.loc[np.isfinite(table[x].astype(float)) & np.isfinite(table[y].astype(float))]
    per_unit = clean.groupby(pair_cols + [unit], sort=True, dropna=False)[[x, y]].mean().reset_index()
    groups = [g for _, g in per_unit.groupby(pair_cols, sort=True, dropna=False)]
    n_pairs = len(groups)
    out: dict[str, Any] = {
        "rho": float("nan"),
        "lo": float("nan"),
        "hi": float("nan"),
        "n_pairs": n_pairs,
        "n_units_min": int(min((len(g) for g in groups), default=0)),
        "n_boot": n_boot,
        "n_boot_valid": 0,
        "ci": ci,
    }
    if n_pairs < 3:
        return out
    mx = np.array([g[x].mean() for g in groups])
    my = np.array([g[y].mean() for g in groups])
    out["rho"] = float(_pearson_rows(sps.rankdata(mx), sps.rankdata(my)))

    rng = np.random.default_rng(seed)
    bx = np.empty((n_boot, n_pairs))
    by_ = np.empty((n_boot, n_pairs))
    for j, g in enumerate(groups):
        gx, gy = g[x].to_numpy(dtype=float), g[y].to_numpy(dtype=float)
        idx = rng.integers(0, len(g), size=(n_boot, len(g)))
        bx[:, j] = gx[idx].mean(axis=1)
        by_[:, j] = gy[idx].mean(axis=1)
    rhos = _pearson_rows(sps.rankdata(bx, axis=1), sps.rankdata(by_, axis=1), axis=1)
    rhos = rhos[np.isfinite(rhos)]
    out["n_boot_valid"] = int(rhos.size)
    if rhos.size:
        out["lo"], out["hi"] = (float(v) for v in np.quantile(rhos, [(1 - ci) / 2, (1 + ci) / 2]))
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
