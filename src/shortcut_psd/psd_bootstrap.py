"""The spread of a PSD over groups: a percentile cluster bootstrap of the image-weighted mean curve.

Definitions (docs/DEFINITIONS.md, "Independent units"): the groups (patients, brain slabs, ...) are the
independent units, so :func:`cluster_bootstrap_ci` resamples groups, not images. Used by
:class:`shortcut_psd.psd_accumulator.PSDAccumulator` for results with ``spread_over="groups"``; re-exported
by :mod:`shortcut_psd.psd_result` and :mod:`shortcut_psd.spectral`.
"""

from __future__ import annotations

import numpy as np

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.spectral import CI_LEVEL, N_BOOT


def cluster_bootstrap_ci(
    group_sums,
    group_counts,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = CI_LEVEL,
    block: int = 250,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile cluster-bootstrap CI of an image-weighted mean curve, resampling groups.

    ``group_sums`` (G, n_bins): the sum of the curves of each group's images; ``group_counts`` (G,): its
    number of images. Each of ``n_boot`` replicates draws G groups with replacement (uniformly, seeded by
    ``seed``) and takes the image-weighted mean curve of the drawn groups, ``sum(drawn sums) / sum(drawn
    counts)``; the CI is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the replicates,
    bin by bin. A replicate is a weighted average of group means, so the CI lies within their range.
    Needs G >= 2 (one group has no spread to resample: the CI is NaN); with few groups the interval is
    coarse (there are only so many distinct resamples) and tends to be too narrow, as any bootstrap
    with few clusters. Replicates are drawn in blocks of ``block`` to bound memory by ``block * G``.
    """
    sums = np.asarray(group_sums, dtype=np.float64)
    counts = np.asarray(group_counts, dtype=np.float64)
    if sums.ndim != 2 or counts.shape != (sums.shape[0],):
        raise DataError(
            f"group sums must be (G, n_bins) and counts (G,); got {sums.shape} and {counts.shape}"
        )
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r} must lie in (0, 1)")
    n_groups = sums.shape[0]
    if n_groups < 2:
        nan = np.full(sums.shape[1], np.nan)
        return nan, nan.copy()
    if int(n_boot) < 1:
        raise ConfigError(f"n_boot={n_boot!r} must be >= 1")
    if np.any(counts <= 0):
        raise DataError("every group needs at least one image for the cluster bootstrap")
    rng = np.random.default_rng(int(seed))
    reps = []
    for start in range(0, int(n_boot), block):
        b = min(block, int(n_boot) - start)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        weights = np.zeros((b, n_groups))
        np.add.at(weights, (np.arange(b)[:, None], draws), 1.0)
        reps.append((weights @ sums) / (weights @ counts)[:, None])
    reps = np.concatenate(reps)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(reps, [tail, 100.0 - tail], axis=0)
    return lo, hi
