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


# ------------------------------------------------------------------------------------------------
# Exact prevalence after subsampling, and the p = 0 baselines (docs/DEFINITIONS.md, "Shortcut protocol",
# "Baselines")
# ------------------------------------------------------------------------------------------------
def _condition_data(n_train=500, n_val=60, n_test=60, size=4, seed=0):
    """Clean images in [0, 0.4], artifacted = clean + 0.5: an image carries the artifact iff its max > 0.45."""
    labels, split = _design(n_train, n_val, n_test, seed)
    rng = np.random.default_rng(seed)
    clean = (0.4 * rng.random((len(labels), 1, size, size))).astype(np.float32)
    return {"clean": clean, "artifacted": clean + 0.5, "labels": labels, "split": split, "group": None}


def _n_artifacted(images: np.ndarray) -> int:
    return int((images.reshape(len(images), -1).max(1) > 0.45).sum())


@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("cap", [151, 0])
def test_prevalence_is_exact_after_subsampling(p, cap):
    from shortcut_psd import study

    data, seed = _condition_data(), 4
    sets = study.protocol_sets(data, p, seed, max_train_images=cap)
    realised = study.realised_prevalence(data, p, seed, max_train_images=cap)
    x, y = sets["train"]
    if cap:
        assert len(y) <= cap + 2 and len(y) < (data["split"] == "train").sum()
    for s in ("train", "val"):
        x, y = sets[s]
        n_pos = int((y == 1).sum())
        want = int(np.floor(p * n_pos + 0.5))
        assert _n_artifacted(x[y == 1]) == want, (s, n_pos)  # exactly round(p * n_pos) of the kept positives
        assert _n_artifacted(x[y == 0]) == 0
        assert realised[s] == {"n_pos": n_pos, "n_artifact": want, "fraction": want / n_pos}
    # the same training images as the seeded, class-stratified subsample of the train split
    train = data["split"] == "train"
    expected, _ = study._subsample(data["clean"][train], data["labels"][train], cap, seed)
    x = sets["train"][0]
    flag = x.reshape(len(x), -1).max(1) > 0.45
    np.testing.assert_allclose(x - 0.5 * flag[:, None, None, None], expected, atol=1e-6)


def test_finetune_condition_refuses_sets_not_subsampled_by_the_protocol():
    from shortcut_psd import study

    data = _condition_data()
    sets = study.protocol_sets(data, 0.5, 0)  # all 500 training images, but a cap of 100 in the recipe
    with pytest.raises(DataError, match="protocol_sets"):
        study.finetune_condition(None, None, sets, recipe={"max_train_images": 100}, seed=0)


def test_clean_is_raw_declaration_matches_every_kind():
    from shortcut_psd.artifacts import ARTIFACTS, CLEAN_IS_RAW, apply_artifact, clean_is_raw

    assert set(CLEAN_IS_RAW) == set(ARTIFACTS)
    rng = np.random.default_rng(0)
    images = (0.1 + 0.8 * rng.random((4, 1, 16, 16))).astype(np.float32)
    for kind in ARTIFACTS:
        for seed in (0, 1):
            clean, _ = apply_artifact(kind, images, seed=seed)
            assert np.array_equal(clean, images) == clean_is_raw(kind), kind
    assert clean_is_raw("photon_noise") is False


def test_own_p0_model_trains_on_the_artifacts_clean_images(tmp_path):
    """photon_noise's p = 0 model: its training images are the baseline-dose clean images of its artifact
    file, not the raw target images (data.npz) that the shared clean model trains on."""
    from shortcut_psd import study
    from shortcut_psd.artifacts import apply_artifact
    from shortcut_psd.data.store import ImageSet, save_imageset

    d = _condition_data(n_train=200, n_val=40, n_test=40, size=16)
    raw, labels, split = d["clean"], d["labels"], d["split"]
    group = np.array([f"g{i}" for i in range(len(labels))])
    save_imageset(tmp_path / "data.npz", ImageSet(raw, labels, split, group, ["neg", "pos"], name="t"))
    clean, art = apply_artifact("photon_noise", raw, seed=0, baseline_dose=2000.0, dose_fraction=0.1)
    np.savez(tmp_path / "images.npz", clean=clean, artifacted=art, labels=labels, split=split, group=group)
    seed, cap = 1, 100
    own = study.protocol_sets(
        study.load_condition_data(tmp_path / "images.npz", 0.0), 0.0, seed, max_train_images=cap
    )
    shared = study.protocol_sets(
        study.load_condition_data(tmp_path / "data.npz", 0.0), 0.0, seed, max_train_images=cap
    )
    keep = study.condition_keep(labels, split, cap, seed)
    kept_train = keep[split[keep] == "train"]
    np.testing.assert_array_equal(own["train"][0], clean[kept_train])
    np.testing.assert_array_equal(shared["train"][0], raw[kept_train])
    np.testing.assert_array_equal(own["train"][1], shared["train"][1])
    assert not np.array_equal(own["train"][0], shared["train"][0])
    np.testing.assert_array_equal(own["test_clean"][0], clean[split == "test"])
