"""Question 3 in a crossed design: does alignment go with the shortcut gap *within* an artifact?

Torch-free. The data of one (target, p): alignment ``A[i, a, s]`` and gap ``G[i, a, s]`` for init ``i``,
artifact ``a`` and seed ``s``. Definitions (docs/DEFINITIONS.md, "Statistics"):

- Cells are averaged over seeds: ``Abar[i, a]``, ``Gbar[i, a]``.
- **Interaction residuals.** Every artifact shifts alignment and gap for all inits at once (an artifact
  that is broad-band is both easy to align with and easy to learn), and every init may shift them for all
  artifacts (an init that overfits everything). Those main effects are removed by double centring
  ``r[i, a] = X[i, a] - X[i, .] - X[., a] + X[., .]``; what is left asks the study's question: *do the
  inits that align more with an artifact than usual show a larger gap for that artifact than usual?*
- **Within-artifact statistic** ``T_art``: for each artifact, Spearman's rho across inits between the
  residuals of A and of G; the mean over artifacts (artifacts where either side is constant are left
  out). **Within-init statistic** ``T_init``: the mirror, Spearman across artifacts within each init,
  averaged over inits. Both lie in [-1, 1].
- **Permutation test** (two-sided). ``T_art``: the residuals of A are permuted among inits, independently
  within each artifact (exactly, over all ``(k!)^m`` combinations, when that is at most
  ``n_permutations``; else Monte Carlo, ``p = (1 + #{|T*| >= |T|}) / (1 + B)``). ``T_init``: permuted
  among artifacts within each init. The smallest p the design can give is computed exactly from the
  permutation distribution; where it exceeds ``alpha`` no p-value is given (NaN) and the note says why.
  Calibration under strong artifact and init main effects with no interaction link, and power under a
  planted link, are checked by simulation in ``tests/test_association.py``.
- **Interval** (percentile bootstrap, same estimator as the point estimate): each replicate resamples
  artifacts with replacement and seeds with replacement (one draw of seeds shared by all cells: seeds are
  crossed with inits and artifacts), recomputes ``Abar``, ``Gbar``, the residuals and the statistic. The
  inits are the study's fixed conditions and are not resampled.
- The pooled Spearman rho over all (init, artifact) cells of ``Abar`` and ``Gbar`` is a description only:
  the cells are not independent, so it gets no p-value.

scipy.stats.permutation_test shuffles one sample freely or pairs; it has no stratified (within-block)
permutation, hence the hand-written null distribution (tests compare it with brute-force enumeration).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats as sps

__all__ = ["double_centre", "within_statistic", "within_test", "association_bootstrap", "association_rows"]

STATISTICS = ("within_artifact", "within_init")


def double_centre(x: np.ndarray) -> np.ndarray:
    """Residuals of a two-way table after removing row and column means."""
    x = np.asarray(x, dtype=np.float64)
    r = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    # Rounding noise of a table made of main effects alone is not an interaction: rank it as a tie.
    r[np.abs(r) <= 1e-9 * (np.abs(x).max() + 1e-300)] = 0.0
    return r


def _ranks_by_column(x: np.ndarray) -> np.ndarray:
    return sps.rankdata(x, axis=0)


def _pearson_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns (axis 0 = observations); NaN where a side is constant."""
    da = a - a.mean(axis=0)
    db = b - b.mean(axis=0)
    num = (da * db).sum(axis=0)
    den = np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)


def _oriented(a: np.ndarray, g: np.ndarray, statistic: str) -> tuple[np.ndarray, np.ndarray]:
    """Residual tables with the permuted units on axis 0 and the blocks on axis 1."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}; got {statistic!r}")
    ra, rg = double_centre(a), double_centre(g)
    return (ra, rg) if statistic == "within_artifact" else (ra.T, rg.T)


def within_statistic(a: Any, g: Any, statistic: str = "within_artifact") -> tuple[float, np.ndarray]:
    """``(T, per-block rhos)`` for seed-mean tables ``a``, ``g`` of shape (inits, artifacts)."""
    a, g = np.asarray(a, dtype=np.float64), np.asarray(g, dtype=np.float64)
    if a.shape != g.shape or a.ndim != 2:
        raise ValueError(f"alignment and gap tables must be 2-D and of one shape; got {a.shape}, {g.shape}")
    ra, rg = _oriented(a, g, statistic)
    rhos = _pearson_cols(_ranks_by_column(ra), _ranks_by_column(rg))
    ok = np.isfinite(rhos)
    return (float(rhos[ok].mean()) if ok.any() else float("nan")), rhos


def _within_statistic_batch(a: np.ndarray, g: np.ndarray, statistic: str) -> np.ndarray:
    """:func:`within_statistic`'s T for a batch of tables ``(B, inits, artifacts)``, vectorised (the
    bootstrap's 2,000 replicates one by one took ~20 s of the aggregation job)."""
    pairs = [_oriented(x, y, statistic) for x, y in zip(a, g, strict=True)]
    # units on axis 0, as the column helpers take them: (units, B, blocks)
    ra = np.stack([r for r, _ in pairs], axis=1)
    rg = np.stack([r for _, r in pairs], axis=1)
    rhos = _pearson_cols(_ranks_by_column(ra), _ranks_by_column(rg))  # (B, blocks)
    ok = np.isfinite(rhos)
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(ok, rhos, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)


def _null_statistics(
    ra: np.ndarray, rg: np.ndarray, n_max: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """Statistic under within-block permutations of the residuals of A, each permuted table double
    centred again (so the permuted blocks share the dependence that centring puts between the observed
    blocks). All ``(k!)^m`` combinations when at most ``n_max``, else ``n_max`` random ones."""
    k, m = ra.shape
    total = math.factorial(k) ** m
    if total <= n_max:
        one = np.array(list(itertools.permutations(range(k))))
        grid = np.array(list(itertools.product(range(len(one)), repeat=m)))
        perms = one[grid]  # (P, m, k)
        exact = True
    else:
        perms = np.argsort(rng.random((n_max, m, k)), axis=2)
        exact = False

    def permute_and_centre(r: np.ndarray, order: np.ndarray) -> np.ndarray:
        x = np.take_along_axis(r.T[None, :, :], order, axis=2).transpose(0, 2, 1)  # (P, k, m)
        return (
            x
            - x.mean(axis=2, keepdims=True)
            - x.mean(axis=1, keepdims=True)
            + x.mean(axis=(1, 2), keepdims=True)
        )

    # Both sides are permuted (the G side by a second, independent draw): then the permuted blocks carry
    # the dependence that double centring puts between blocks on *both* sides, as the observed ones do.
    if exact:
        perms_g = np.broadcast_to(np.arange(k), perms.shape)
    else:
        perms_g = np.argsort(rng.random(perms.shape), axis=2)
    xa = sps.rankdata(permute_and_centre(ra, perms), axis=1)
    xg = sps.rankdata(permute_and_centre(rg, perms_g), axis=1)
    da, dg = xa - xa.mean(axis=1, keepdims=True), xg - xg.mean(axis=1, keepdims=True)
    num = (da * dg).sum(axis=1)
    den = np.sqrt((da * da).sum(axis=1) * (dg * dg).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rhos = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)
    with warnings.catch_warnings():  # a permutation whose blocks are all undefined: NaN, dropped later
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(rhos, axis=1), exact


def within_test(
    a: Any,
    g: Any,
    statistic: str = "within_artifact",
    *,
    n_permutations: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Stratified permutation test of ``statistic`` (see the module docstring).

    Returns ``{statistic, p_value, min_p, exact, n_units, n_blocks, note}``: ``n_units`` the permuted
    units per block (inits for ``within_artifact``), ``n_blocks`` the blocks, ``min_p`` the smallest
    p-value the design can give (``2 / (k!)^m`` for ``k`` distinct units in each of ``m`` blocks, and
    never below ``1 / (1 + n_permutations)`` for a Monte Carlo null), ``p_value`` NaN (with ``note``) when
    ``min_p > alpha``.
    """
    a, g = np.asarray(a, dtype=np.float64), np.asarray(g, dtype=np.float64)
    t, _ = within_statistic(a, g, statistic)
    ra, rg = _oriented(a, g, statistic)
    k, m = ra.shape
    unit, block = ("inits", "artifacts") if statistic == "within_artifact" else ("artifacts", "inits")
    out: dict[str, Any] = {
        "statistic": t,
        "p_value": float("nan"),
        "min_p": float("nan"),
        "exact": False,
        "n_units": int(k),
        "n_blocks": int(m),
        "note": "",
    }
    if k < 3 or m < 2 or not np.isfinite(t):
        out["note"] = f"no test: needs at least 3 {unit} and 2 {block} with varying values"
        return out
    total = math.factorial(k) ** m
    null, exact = _null_statistics(ra, rg, n_permutations, np.random.default_rng(seed))
    null = null[np.isfinite(null)]
    tol = 1e-9
    min_p = 2.0 / total if exact else max(2.0 / total, 1.0 / (1 + n_permutations))
    if exact:
        p = float(np.mean(np.abs(null) >= abs(t) - tol))
    else:
        p = float((1 + np.sum(np.abs(null) >= abs(t) - tol)) / (1 + null.size))
    out.update(min_p=float(min(min_p, 1.0)), exact=bool(exact))
    if min_p > alpha:
        out["note"] = (
            f"no p-value: with {k} {unit} in each of {m} {block} the smallest attainable p is "
            f"{min_p:.3g} > alpha {alpha:g}"
        )
    else:
        out["p_value"] = p
    return out


def association_bootstrap(
    a3: Any, g3: Any, *, n_boot: int = 2000, seed: int = 0, ci: float = 0.95
) -> dict[str, Any]:
    """Percentile intervals of both statistics, resampling artifacts and seeds (module docstring).

    ``a3``, ``g3``: (inits, artifacts, seeds). Returns ``{within_artifact: (lo, hi), within_init: (lo,
    hi), n_boot_valid: {...}}``.
    """
    a3, g3 = np.asarray(a3, dtype=np.float64), np.asarray(g3, dtype=np.float64)
    if a3.shape != g3.shape or a3.ndim != 3:
        raise ValueError(
            f"expected two (inits, artifacts, seeds) arrays of one shape; got {a3.shape}, {g3.shape}"
        )
    _, m, n_seeds = a3.shape
    rng = np.random.default_rng(seed)
    draws = [(rng.integers(0, m, size=m), rng.integers(0, n_seeds, size=n_seeds)) for _ in range(n_boot)]
    reps = {s: np.full(n_boot, np.nan) for s in STATISTICS}
    chunk = 256  # replicates per batch: the statistic of many replicates at once (same values as one by one)
    for start in range(0, n_boot, chunk):
        part = draws[start : start + chunk]
        ab = np.stack([np.nanmean(a3[:, cols][:, :, seeds], axis=2) for cols, seeds in part])
        gb = np.stack([np.nanmean(g3[:, cols][:, :, seeds], axis=2) for cols, seeds in part])
        for s in STATISTICS:
            reps[s][start : start + len(part)] = _within_statistic_batch(ab, gb, s)
    a_ = (1 - ci) / 2
    out: dict[str, Any] = {"n_boot_valid": {}}
    for s, r in reps.items():
        r = r[np.isfinite(r)]
        out["n_boot_valid"][s] = int(r.size)
        out[s] = tuple(float(v) for v in np.quantile(r, [a_, 1 - a_])) if r.size else (np.nan, np.nan)
    return out


def association_rows(
    a3: Any,
    g3: Any,
    *,
    n_permutations: int = 10000,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """One row per statistic (within_artifact, within_init) plus the pooled description."""
    a3, g3 = np.asarray(a3, dtype=np.float64), np.asarray(g3, dtype=np.float64)
    k, m, n_seeds = a3.shape
    abar, gbar = np.nanmean(a3, axis=2), np.nanmean(g3, axis=2)
    boot = association_bootstrap(a3, g3, n_boot=n_boot, seed=seed, ci=ci) if m >= 2 else None
    resampled = f"artifacts ({m}) x seeds ({n_seeds})" if n_seeds > 1 else f"artifacts ({m}); 1 seed"
    rows = []
    for s in STATISTICS:
        t = within_test(abar, gbar, s, n_permutations=n_permutations, seed=seed, alpha=alpha)
        lo, hi = boot[s] if boot else (np.nan, np.nan)
        rows.append(
            {
                "statistic": s,
                "estimate": t["statistic"],
                "lo": lo,
                "hi": hi,
                "p_value": t["p_value"],
                "min_p": t["min_p"],
                "permutation": ("exact" if t["exact"] else "monte carlo") if np.isfinite(t["min_p"]) else "",
                "n_inits": k,
                "n_artifacts": m,
                "n_seeds": n_seeds,
                "resampled": resampled if boot else "no interval: fewer than 2 artifacts",
                "note": t["note"],
            }
        )
    ok = np.isfinite(abar) & np.isfinite(gbar)
    pooled = (
        float(sps.spearmanr(abar[ok], gbar[ok]).statistic)
        if ok.sum() >= 3 and np.ptp(abar[ok]) > 0 and np.ptp(gbar[ok]) > 0
        else float("nan")
    )
    rows.append(
        {
            "statistic": "pooled (description)",
            "estimate": pooled,
            "lo": np.nan,
            "hi": np.nan,
            "p_value": np.nan,
            "min_p": np.nan,
            "permutation": "",
            "n_inits": k,
            "n_artifacts": m,
            "n_seeds": n_seeds,
            "resampled": "",
            "note": "description only: the (init, artifact) cells share inits and artifacts, so no p-value",
        }
    )
    return rows
