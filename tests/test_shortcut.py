"""shortcut.py: the prevalence protocol (counts, determinism, test-set rules)."""

from __future__ import annotations

import numpy as np
import pytest

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.shortcut import artifact_mask, build_sets


def _design(n_train=40, n_val=10, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    split = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    labels = rng.integers(0, 2, len(split))
    labels[[0, 1, n_train, n_train + 1, n_train + n_val, n_train + n_val + 1]] = [0, 1, 0, 1, 0, 1]
    return labels, split


@pytest.mark.parametrize("p", [0.0, 0.1, 0.2, 0.5, 0.8, 1.0])
def test_mask_counts_follow_round_p_npos(p):
    labels, split = _design()
    mask = artifact_mask(labels, split, p, seed=3)
    for s in ("train", "val"):
        n_pos = int(((split == s) & (labels == 1)).sum())
        assert mask[(split == s)].sum() == int(np.floor(p * n_pos + 0.5))
    assert not mask[labels == 0].any()
    assert not mask[split == "test"].any()


def test_mask_rounds_half_up_and_is_deterministic_and_nested():
    split = np.array(["train"] * 10 + ["val"] * 4)
    labels = np.array([1] * 5 + [0] * 5 + [1, 1, 1, 0])
    assert artifact_mask(labels, split, 0.5, seed=0)[:10].sum() == 3  # 2.5 -> 3
    assert artifact_mask(labels, split, 0.5, seed=0)[10:].sum() == 2  # 1.5 -> 2
    labels, split = _design(n_train=200)
    a = artifact_mask(labels, split, 0.3, seed=7)
    assert np.array_equal(a, artifact_mask(labels, split, 0.3, seed=7))
    assert not np.array_equal(a, artifact_mask(labels, split, 0.3, seed=8))
    low, high = artifact_mask(labels, split, 0.2, seed=7), artifact_mask(labels, split, 0.8, seed=7)
    assert not (low & ~high).any()  # nested across prevalences


def test_mask_rejects_bad_prevalence():
    labels, split = _design()
    with pytest.raises(ConfigError, match=r"prevalence p must lie in \[0, 1\]"):
        artifact_mask(labels, split, 1.5, seed=0)


def test_build_sets_follows_protocol():
    labels, split = _design()
    n = len(labels)
    clean = np.zeros((n, 1, 4, 4), np.float32)
    art = np.ones((n, 1, 4, 4), np.float32)
    p, seed = 0.5, 2
    sets = build_sets(clean, art, labels, split, p, seed)
    assert set(sets) == {"train", "val", "test_clean", "test_iid", "test_ood"}
    has = {k: v[0].reshape(len(v[0]), -1).max(1) == 1 for k, v in sets.items()}
    mask = artifact_mask(labels, split, p, seed)
    assert np.array_equal(has["train"], mask[split == "train"])
    assert np.array_equal(has["val"], mask[split == "val"])
    yt = labels[split == "test"]
    for k in ("test_clean", "test_iid", "test_ood"):
        assert np.array_equal(sets[k][1], yt)
    assert not has["test_clean"].any()
    assert np.array_equal(has["test_ood"], yt == 0)
    assert not has["test_iid"][yt == 0].any()
    assert has["test_iid"].sum() == int(np.floor(p * (yt == 1).sum() + 0.5))
    p0 = build_sets(clean, art, labels, split, 0.0, seed)
    assert not p0["test_iid"][0].any() and not p0["train"][0].any()


def test_build_sets_checks_inputs():
    labels, split = _design()
    n = len(labels)
    with pytest.raises(DataError, match="must match"):
        build_sets(np.zeros((n, 1, 4, 4)), np.zeros((n, 1, 4, 5)), labels, split, 0.5, 0)
    labels = labels.copy()
    labels[split == "test"] = 0
    with pytest.raises(DataError, match="split 'test' needs both"):
        build_sets(np.zeros((n, 1, 4, 4)), np.zeros((n, 1, 4, 4)), labels, split, 0.5, 0)


def test_build_sets_refuses_more_than_two_classes():
    labels, split = _design()
    labels = labels.copy()
    labels[3] = 2
    n = len(labels)
    with pytest.raises(DataError, match="binary target"):
        build_sets(np.zeros((n, 1, 4, 4)), np.zeros((n, 1, 4, 4)), labels, split, 0.5, 0)
