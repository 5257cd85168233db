"""Learning order, aggregation over seeds: means with seed-resampling intervals, the natural vs medical
permutation test, and mean trajectories for the figures (docs/DEFINITIONS.md, "Learning order",
bullet Aggregation; docs/DEFINITIONS.md, "Statistics").

Re-exported by :mod:`shortcut_psd.dynamics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd.dynamics_scalars import centroids


def seed_interval(
    values: Sequence[float], *, n_boot: int, seed: int, ci: float
) -> tuple[float, float, float, str]:
    """Mean over seeds and a percentile interval resampling ``S - 1`` of ``S`` seeds per replicate.

    Returns ``(mean, lo, hi, resampled)``; with fewer than two finite seeds the interval is NaN and
    ``resampled`` says that seed variation is absent. The interval lies in the values' range.
    """
    from shortcut_psd.clustered import percentile_interval, seed_group_replicates

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), "none (no finite value)"
    if v.size == 1:
        return float(v[0]), float("nan"), float("nan"), "none (one seed: seed variation absent)"
    rng = np.random.default_rng(seed)
    reps = seed_group_replicates(np.repeat(v[:, None], n_boot, axis=1), rng)
    lo, hi = percentile_interval(reps, ci)
    return float(v.mean()), lo, hi, f"seeds ({v.size}, {v.size - 1} drawn per replicate)"


SUMMARY_COLUMNS = [
    "phase",
    "init",
    "artifact",
    "prevalence",
    "quantity",
    "mean",
    "lo",
    "hi",
    "n_seeds",
    "resampled",
]
TEST_COLUMNS = ["phase", "artifact", "prevalence", "quantity", "natural", "medical", "difference", "p", "n_natural",
                "n_medical", "min_p", "note"]  # fmt: skip


def summarise(per_model: pd.DataFrame, *, n_boot: int, seed: int, ci: float) -> pd.DataFrame:
    """Per (phase, init, artifact, prevalence) and scalar: mean over seeds with a seed-resampling interval."""
    rows = []
    keys = ["phase", "init", "artifact", "prevalence"]
    quantities = [c for c in per_model.columns if c not in (*keys, "target", "seed")]
    for key, g in per_model.groupby(keys, sort=True, dropna=False):
        for q in quantities:
            vals = pd.to_numeric(g[q], errors="coerce").to_numpy()
            m, lo, hi, how = seed_interval(vals, n_boot=n_boot, seed=seed, ci=ci)
            rows.append([*key, q, m, lo, hi, int(np.isfinite(vals).sum()), how])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def source_tests(
    per_model: pd.DataFrame,
    natural: Sequence[str],
    medical: Sequence[str],
    *,
    alpha: float,
    permutations: int,
    seed: int,
) -> pd.DataFrame:
    """Natural vs medical inits: difference of means over seeds, per phase, artifact, prevalence and scalar.

    A two-sided permutation test over seeds (:func:`shortcut_psd.stats.permutation_test`) is printed only
    where its smallest attainable p (:func:`shortcut_psd.aggregate.min_two_sample_p`) is at most ``alpha``;
    otherwise ``p`` is empty and ``note`` says why. Each seed's values are averaged over the inits of a
    group first, so a unit is one seed of one group (seeds are the independent replicates).
    """
    from shortcut_psd.aggregate import min_two_sample_p
    from shortcut_psd.stats import permutation_test

    rows = []
    keys = ["phase", "artifact", "prevalence"]
    quantities = [c for c in per_model.columns if c not in (*keys, "init", "target", "seed")]
    for key, g in per_model.groupby(keys, sort=True, dropna=False):
        for q in quantities:
            a = g[g["init"].isin(natural)].groupby("seed")[q].mean().dropna()
            b = g[g["init"].isin(medical)].groupby("seed")[q].mean().dropna()
            diff = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
            mp = min_two_sample_p(len(a), len(b))
            p, note = float("nan"), ""
            if not len(a) or not len(b):
                note = "no natural or no medical init with a value (dynamics.inits_natural / inits_medical)"
            elif not mp <= alpha:
                note = f"not tested: with {len(a)} and {len(b)} seeds the smallest attainable p is {mp:.3g} > alpha"
            else:
                p = float(
                    permutation_test(a.to_numpy(), b.to_numpy(), n_resamples=permutations, seed=seed)[
                        "p_value"
                    ]
                )
            rows.append([*key, q, ",".join(natural), ",".join(medical), diff, p, len(a), len(b), mp, note])
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def mean_trajectory(snaps: Sequence[Mapping[str, Any]], key: str, *, n_boot: int, seed: int, ci: float):
    """Mean over models (seeds) of ``key`` per step on the steps all of them share, with a seed band.

    ``key``: ``centroid``, ``gap``, ``auc_clean``, or ``curves`` (mean only; the band is None). Returns
    ``(steps, mean, lo, hi)``; the band resamples ``S - 1`` of ``S`` seeds (NaN with one seed).
    """
    from shortcut_psd.clustered import percentile_interval, seed_group_replicates

    common = sorted(set.intersection(*[set(np.asarray(s["steps"]).tolist()) for s in snaps]))

    def values(s):
        idx = [np.asarray(s["steps"]).tolist().index(k) for k in common]
        if key == "centroid":
            return centroids(s["curves"], s["freqs"])[idx]
        if key == "gap":
            return (np.asarray(s["auc_clean"]) - np.asarray(s["auc_ood"]))[idx]
        return np.asarray(s[key])[idx]

    v = np.stack([values(s) for s in snaps])
    mean = v.mean(axis=0)
    if key == "curves" or len(snaps) < 2:
        return np.asarray(common), mean, None, None
    rng = np.random.default_rng(seed)
    lo, hi = np.empty(len(common)), np.empty(len(common))
    for j in range(len(common)):
        reps = seed_group_replicates(np.repeat(v[:, j : j + 1], n_boot, axis=1), rng)
        lo[j], hi[j] = percentile_interval(reps, ci)
    return np.asarray(common), mean, lo, hi
