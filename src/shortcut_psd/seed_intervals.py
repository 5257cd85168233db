"""Student t intervals of a mean over seeds: the seed term alone, or with a test-group term.

Torch-free. Definitions and the simulations behind them: docs/DEFINITIONS.md, "Statistics" (a condition's
AUC, between inits). :func:`seed_group_t_interval` serves the AUC tables (``auc_summary``) and the probe
tables; :func:`seed_group_t_difference` the differences between inits (``init_tests``). The group
resamples come from :func:`shortcut_psd.clustered.cluster_resamples`; both functions are re-exported by
:mod:`shortcut_psd.clustered`. A percentile bootstrap over seeds and groups covered 0.80-0.94 at nominal
0.95 with 2-5 seeds in simulation, because it treats a variance estimated from 2-5 seeds as known; these
t intervals covered 0.93-0.99 (``tests/test_clustered.py``). :func:`seed_t_interval`, the seed term
alone, serves the learning-order summaries (docs/DEFINITIONS.md, "Learning order").
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["seed_t_interval", "seed_group_t_interval", "seed_group_t_difference"]


_SCALE_BOUNDS = {"logit": (0.0, 1.0), "atanh": (-1.0, 1.0), "raw": (-np.inf, np.inf)}


def _finite_seeds(point_per_seed: Any, reps_per_seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """The seeds with a finite point value: their points ``(S,)`` and replicates ``(S, B)``."""
    point = np.asarray(point_per_seed, dtype=np.float64).ravel()
    reps = np.asarray(reps_per_seed, dtype=np.float64)
    if reps.ndim != 2 or reps.shape[0] != point.size:
        raise ValueError(
            f"reps_per_seed must be (seeds, replicates) with {point.size} seeds; got {reps.shape}"
        )
    keep = np.isfinite(point)
    return point[keep], reps[keep]


def _seed_mean_reps(reps: np.ndarray) -> np.ndarray:
    """``(B,)``: per group resample, the mean over seeds of the finite values (NaN where none is)."""
    ok = np.isfinite(reps)
    n = ok.sum(axis=0)
    total = np.where(ok, reps, 0.0).sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _resample_var(x: np.ndarray) -> float:
    """Variance (ddof 1) over the finite resamples; NaN with fewer than two."""
    x = x[np.isfinite(x)]
    return float(x.var(ddof=1)) if x.size >= 2 else float("nan")


def _seed_var(point: np.ndarray) -> tuple[float, int]:
    """Seed-to-seed variance of the mean over seeds, ``var(ddof=1) / S``, and its df ``S - 1``."""
    n = point.size
    return (float(point.var(ddof=1)) / n if n >= 2 else 0.0), n - 1


def _t_half_width(parts: list[tuple[float, int]], ci: float) -> float:
    """``sqrt(sum t_{q, df}^2 V)`` over the ``(V, df)`` parts with ``df >= 1`` (``q = (1 + ci) / 2``); NaN
    when a used ``V`` is not finite or no part is usable."""
    from scipy.stats import t  # only needed here: clustered is imported by the training jobs

    used = [(v, df) for v, df in parts if df >= 1]
    if not used or not all(np.isfinite(v) for v, _ in used):
        return float("nan")
    q = (1 + ci) / 2
    return float(np.sqrt(sum(float(t.ppf(q, df)) ** 2 * v for v, df in used)))


def _on_scale(m: float, h: float, scale: str, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """``m -/+ h`` formed on ``scale`` (delta method: the half-width divided by the transform's slope at
    ``m``) and mapped back; on the raw scale, or where ``m`` is at the edge of the transform's range,
    ``m -/+ h`` clipped to ``bounds`` (default: the scale's range). Always ``lo <= m <= hi``."""
    from scipy.special import expit

    if scale not in _SCALE_BOUNDS:
        raise ValueError(f"scale must be one of {sorted(_SCALE_BOUNDS)}; got {scale!r}")
    if not (np.isfinite(m) and np.isfinite(h)):
        return float("nan"), float("nan")
    lo_b, hi_b = _SCALE_BOUNDS[scale] if bounds is None else bounds
    if scale == "logit" and 0.0 < m < 1.0:
        z, d = np.log(m / (1.0 - m)), h / (m * (1.0 - m))
        lo, hi = float(expit(z - d)), float(expit(z + d))
    elif scale == "atanh" and -1.0 < m < 1.0:
        z, d = np.arctanh(m), h / (1.0 - m * m)
        lo, hi = float(np.tanh(z - d)), float(np.tanh(z + d))
    else:
        lo, hi = float(np.clip(m - h, lo_b, hi_b)), float(np.clip(m + h, lo_b, hi_b))
    return min(lo, m), max(hi, m)  # a round trip through the transform may move m by one ulp


def seed_t_interval(v: np.ndarray, ci: float, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``mean +- t_{S-1, (1 + ci) / 2} sd / sqrt(S)`` over the ``S`` rows of ``v`` (axis 0), clipped to
    ``bounds``: the seed is the unit, and with 2-10 seeds a percentile bootstrap of the mean (normal
    quantiles, never beyond the seeds' own range) covers far below its nominal level
    (docs/DEFINITIONS.md, "Learning order"; tests/test_dynamics_calibration.py). Used by the
    learning-order summaries; :func:`seed_group_t_interval` adds a test-group term to the same seed term."""
    from scipy.stats import t

    n = v.shape[0]
    m = v.mean(axis=0)
    half = t.ppf((1 + ci) / 2, n - 1) * v.std(axis=0, ddof=1) / np.sqrt(n)
    return np.clip(m - half, *bounds), np.clip(m + half, *bounds)


def seed_group_t_interval(
    point_per_seed: Any,
    reps_per_seed: Any,
    n_groups: int,
    ci: float = 0.95,
    *,
    scale: str = "raw",
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Interval of a mean over seeds that were scored on the same resampled test groups.

    ``point_per_seed`` ``(S,)``: each seed's statistic ``a_s``; ``reps_per_seed`` ``(S, B)``: the same
    statistics under ``B`` group resamples shared by every seed (``G - 1`` of ``n_groups = G`` groups
    drawn, :func:`cluster_resamples`; without groups ``G`` is the number of images). Seeds with a
    non-finite point value are left out. With ``m = mean_s a_s`` and ``q = (1 + ci) / 2``:

    - ``V_S = var_s(a_s, ddof=1) / S`` (seed-to-seed variance of the mean; no term when ``S == 1``),
    - ``V_G = var_b(mean_s R[s, b], ddof=1)`` over the finite resamples (test-group variance of the mean),
    - ``h = sqrt(t_{q,S-1}^2 V_S + t_{q,G-1}^2 V_G)`` (no group term when ``G < 2``),

    and the interval is ``m -/+ h`` on ``scale``: ``"logit"`` (AUCs:
    ``expit(logit(m) -/+ h / (m (1 - m)))``), ``"atanh"`` (gaps, differences of AUCs:
    ``tanh(atanh(m) -/+ h / (1 - m^2))``) or ``"raw"``. Where ``m`` is at the edge of the transform's range
    (an AUC of 0 or 1) it falls back to ``m -/+ h`` clipped to ``bounds`` (default the scale's range:
    [0, 1], [-1, 1], none). The result always holds ``m`` and lies inside the scale's range. NaN, NaN
    when there is no seed, no usable term (one seed and one group) or fewer than two finite resamples.

    Why not the percentile bootstrap over seeds and groups: with 2-5 seeds it covered
    0.80-0.94 at nominal 0.95 in simulation, this interval 0.93-0.99 (docs/DEFINITIONS.md,
    "Statistics"; tested in ``tests/test_clustered.py``).
    """
    point, reps = _finite_seeds(point_per_seed, reps_per_seed)
    if point.size == 0:
        return float("nan"), float("nan")
    m = float(point.mean())
    v_g = _resample_var(_seed_mean_reps(reps)) if n_groups >= 2 else 0.0
    h = _t_half_width([_seed_var(point), (v_g, int(n_groups) - 1)], ci)
    return _on_scale(m, h, scale, bounds)


def seed_group_t_difference(
    point_a: Any,
    reps_a: Any,
    point_b: Any,
    reps_b: Any,
    n_groups: int,
    ci: float = 0.95,
    *,
    bounds: tuple[float, float] = (-2.0, 2.0),
) -> tuple[float, float]:
    """Interval of ``mean(a) - mean(b)``: two sets of seeds (independent models, e.g. two inits) scored on
    the same test groups, with replicates ``(S_a, B)`` and ``(S_b, B)`` under the same ``B`` group
    resamples (see :func:`seed_group_t_interval`).

    ``h = sqrt(t_{q,S_a-1}^2 V_a + t_{q,S_b-1}^2 V_b + t_{q,G-1}^2 V_G)``, ``V_a = var(a, ddof=1) / S_a``
    (likewise ``V_b``; no term for a side with one seed), ``V_G = var_b(mean_s Ra[s, b] - mean_s Rb[s, b],
    ddof=1)`` (the test groups are shared, so their variation is paired); the interval is ``diff -/+ h``
    clipped to ``bounds`` ([-2, 2] for a difference of AUC gaps). In simulation it covered 0.97-0.99 at
    nominal 0.95 with 2-5 seeds per side, the percentile bootstrap 0.82-0.94 (docs/DEFINITIONS.md,
    "Statistics").
    """
    pa, ra = _finite_seeds(point_a, reps_a)
    pb, rb = _finite_seeds(point_b, reps_b)
    if ra.shape[1] != rb.shape[1]:
        raise ValueError(f"both sides need the same group resamples; got {ra.shape[1]} and {rb.shape[1]}")
    if pa.size == 0 or pb.size == 0:
        return float("nan"), float("nan")
    diff = float(pa.mean() - pb.mean())
    v_g = _resample_var(_seed_mean_reps(ra) - _seed_mean_reps(rb)) if n_groups >= 2 else 0.0
    h = _t_half_width([_seed_var(pa), _seed_var(pb), (v_g, int(n_groups) - 1)], ci)
    return _on_scale(diff, h, "raw", bounds)
