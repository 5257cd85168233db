"""metrics.py: AUC with bootstrap CI, predictions, shortcut gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from shortcut_psd.clustered import weighted_auc
from shortcut_psd.metrics import auc_with_ci, evaluate_sets, predict_scores
from shortcut_psd.models import Preprocessing
from shortcut_psd.shortcut import build_sets


def _scores(n=300, sep=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, rng.standard_normal(n) + sep * y


def test_auc_matches_sklearn_and_ci_brackets_it():
    y, s = _scores()
    r = auc_with_ci(y, s, n_boot=1000, seed=0)
    assert r["auc"] == pytest.approx(roc_auc_score(y, s))
    assert r["lo"] < r["auc"] < r["hi"]
    assert 0.03 < r["hi"] - r["lo"] < 0.2
    assert r["n"] == 300 and r["n_pos"] + r["n_neg"] == 300 and r["n_boot_used"] == 1000
    assert auc_with_ci(y, s, n_boot=200, seed=5) == auc_with_ci(y, s, n_boot=200, seed=5)
    big = auc_with_ci(*_scores(n=3000), n_boot=300)
    assert big["hi"] - big["lo"] < r["hi"] - r["lo"]


def test_weighted_auc_equals_sklearn_on_resamples_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50).astype(bool)
    s = rng.integers(0, 5, 50).astype(float)  # many ties
    idx = rng.integers(0, 50, (20, 50))
    weights = np.stack([np.bincount(i, minlength=50) for i in idx]).astype(float)
    got = weighted_auc(y, s, weights)
    for b in range(20):
        yb = y[idx[b]]
        if yb.all() or not yb.any():
            assert np.isnan(got[b])
        else:
            assert got[b] == pytest.approx(roc_auc_score(yb, s[idx[b]]))


def test_one_class_gives_nan_and_small_sets_skip_bad_resamples():
    r = auc_with_ci(np.ones(10), np.arange(10.0))
    assert np.isnan(r["auc"]) and np.isnan(r["lo"])
    r = auc_with_ci([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], n_boot=500)
    assert r["auc"] == 1.0 and 0 < r["n_boot_used"] < 500


class CornerReader(torch.nn.Module):
    """Logit of class 1 grows with the top-left pixel: a model that reads only the artifact."""

    def forward(self, x):
        c = x[:, 0, 1, 1]
        return torch.stack([torch.zeros_like(c), 10 * (c - 0.75)], 1)


def test_evaluate_sets_gap_for_an_artifact_reader():
    rng = np.random.default_rng(0)
    n = 200
    labels = np.arange(n) % 2
    split = np.array(["train"] * 100 + ["val"] * 40 + ["test"] * 60)
    clean = rng.uniform(0, 0.5, (n, 1, 8, 8)).astype(np.float32)
    art = clean.copy()
    art[:, :, :3, :3] = 1.0
    sets = build_sets(clean, art, labels, split, 1.0, seed=0)
    prep = Preprocessing(1, 0.0, 1.0)
    scores = predict_scores(CornerReader(), prep, sets["test_iid"][0], batch_size=7)
    assert scores.shape == (60,) and scores.dtype == np.float64
    res = evaluate_sets(CornerReader(), prep, sets, n_boot=200)
    assert set(res) >= {"test_clean", "test_iid", "test_ood", "shortcut_gap"}
    assert res["test_iid"]["auc"] == 1.0 and res["test_ood"]["auc"] == 0.0
    assert res["shortcut_gap"] == pytest.approx(res["test_clean"]["auc"] - 0.0)
    assert res["shortcut_gap_lo"] <= res["shortcut_gap"] <= res["shortcut_gap_hi"]
    only = evaluate_sets(CornerReader(), prep, sets, names=["val"], n_boot=0)
    assert set(only) == {"val", "scores"} and np.isnan(only["val"]["lo"])
