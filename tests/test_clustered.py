"""Cluster and seeds x groups bootstrap of AUCs: exact pieces, and coverage by simulation
(docs/DEFINITIONS.md, "Statistics")."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shortcut_psd import clustered as C


def test_weighted_auc_matches_sklearn_sample_weight():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80).astype(bool)
    s = np.round(rng.normal(size=80) + y, 1)  # ties
    w = rng.integers(0, 4, 80).astype(float)
    assert C.weighted_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w))
    assert C.weighted_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(C.weighted_auc(y, s, np.where(y, 0.0, 1.0)))


def test_cluster_weights_draw_whole_groups():
    groups = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 2)
    codes, n_groups = C.group_codes(groups, 10)
    w = C.cluster_weights(codes, n_groups, 500, np.random.default_rng(1))
    assert w.shape == (500, 10)
    for label in "abc":
        block = w[:, groups == label]
        assert (block == block[:, :1]).all()  # every image of a group gets its group's count
    per_group = np.stack([w[:, groups == g][:, 0] for g in "abc"], axis=1)
    assert (per_group.sum(1) == 2).all()  # n - 1 draws of n groups (unbiased variance of a mean)


def _clustered_study(rng, n_groups, per_group=30, tau=1.0):
    """Scores with a group effect shared by both classes and a class mix that varies by group: patches of
    one slab are alike, so the slab, not the patch, is the independent unit."""
    groups, ys, ss = [], [], []
    for g in range(n_groups):
        frac = rng.uniform(0.2, 0.8)
        y = rng.random(per_group) < frac
        s = 0.8 * y + rng.normal(0, tau) + rng.normal(0, 0.5, per_group)
        groups += [g] * per_group
        ys.append(y)
        ss.append(s)
    return np.concatenate(ys), np.concatenate(ss), np.array(groups)


@pytest.mark.parametrize(
    ("n", "n_groups", "decimals"),
    [(300, 6, 3), (300, 6, 0), (40, 3, 1), (500, 40, 2), (12, 2, 0)],
)
def test_group_count_auc_is_bit_identical_to_the_image_weight_auc(n, n_groups, decimals):
    """The per-group-pair form (few groups) gives exactly the per-image form's floats, ties, resamples
    that empty a class (NaN) and all: the counts are integers, so every sum is exact."""
    rng = np.random.default_rng(n + n_groups + decimals)
    y = rng.random(n) < 0.3
    y[:2] = [True, False]
    scores = np.round(rng.normal(size=n) + y, decimals)  # rounding makes ties
    codes = np.sort(rng.integers(0, n_groups, n))
    codes[:n_groups] = np.arange(n_groups)
    r = C.cluster_resamples(codes, n_groups, 500, np.random.default_rng(7))
    w = C.cluster_weights(codes, n_groups, 500, np.random.default_rng(7))
    assert np.array_equal(r.weights, w), "the same draws"
    assert r.by_groups()
    grouped = C.weighted_auc(y, scores, r)
    assert np.array_equal(grouped, C.weighted_auc(y, scores, w), equal_nan=True)
    assert np.isfinite(grouped).any()


def test_many_groups_fall_back_to_image_weights():
    codes = np.arange(30)
    r = C.cluster_resamples(codes, 30, 50, np.random.default_rng(0))
    assert not r.by_groups() and len(r) == 50 and r.shape == (50, 30)
    y, s = np.arange(30) % 2 == 0, np.linspace(0, 1, 30)
    assert np.array_equal(C.weighted_auc(y, s, r), C.weighted_auc(y, s, r.weights), equal_nan=True)


def test_cluster_interval_covers_the_population_auc_where_the_image_bootstrap_does_not():
    rng = np.random.default_rng(2)
    y, s, _ = _clustered_study(rng, 20000, per_group=10)
    truth = roc_auc_score(y, s)
    n, hits_group, hits_image = 200, 0, 0
    for i in range(n):
        y, s, g = _clustered_study(rng, 20)
        by_group = C.auc_interval(y, s, groups=g, n_boot=400, seed=i)
        by_image = C.auc_interval(y, s, groups=None, n_boot=400, seed=i)
        assert 0 <= by_group["lo"] <= by_group["hi"] <= 1
        hits_group += by_group["lo"] <= truth <= by_group["hi"]
        hits_image += by_image["lo"] <= truth <= by_image["hi"]
    assert hits_group / n >= 0.90, hits_group / n
    assert hits_image / n < 0.80, hits_image / n  # what the report printed before


def test_seed_group_replicates_single_seed_is_the_group_resample():
    v = np.arange(12.0).reshape(1, 12)
    assert np.array_equal(C.seed_group_replicates(v, np.random.default_rng(0)), v[0])
    with pytest.raises(ValueError):
        C.seed_group_replicates(np.zeros(3), np.random.default_rng(0))


def test_seeds_by_groups_interval_covers_a_conditions_mean_auc():
    """A condition: 5 seeds, each a model whose separation varies at random, all scored on the same 20
    test slabs. Truth = the population AUC averaged over the seed distribution."""
    rng = np.random.default_rng(3)
    y, base, _ = _clustered_study(rng, 2000, per_group=10)
    truth = float(np.mean([roc_auc_score(y, base + d * y) for d in rng.normal(0, 0.15, 200)]))
    hits, n = 0, 150
    for i in range(n):
        y, base, g = _clustered_study(rng, 20)
        codes, n_groups = C.group_codes(g, len(y))
        w = C.cluster_weights(codes, n_groups, 300, np.random.default_rng(i))
        per_seed = np.stack([C.weighted_auc(y, base + d * y, w) for d in rng.normal(0, 0.15, 5)])
        lo, hi = C.percentile_interval(C.seed_group_replicates(per_seed, np.random.default_rng(i)))
        assert 0 <= lo <= hi <= 1
        hits += lo <= truth <= hi
    assert hits / n >= 0.90, hits / n
