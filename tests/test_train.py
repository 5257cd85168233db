"""train.py (and the protocol end to end): a tiny timm model learns a corner-square shortcut at p=1.

Task: grey 32 px images; the class is the orientation of a faint grating (horizontal = 0, vertical = 1)
under noise; the artifact is a bright 5x5 square near the top-left corner.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from shortcut_psd.errors import ConfigError, TrainingError
from shortcut_psd.metrics import evaluate_sets
from shortcut_psd.models import build_init
from shortcut_psd.shortcut import build_sets
from shortcut_psd.train import HISTORY_COLUMNS, augment_batch, resolve_recipe, set_seed, train_classifier

RECIPE = {"epochs": 6, "batch_size": 32, "lr": 3e-3, "augment": "none", "patience": 0}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: identical numbers, and no OpenMP oversubscription when the 2 cores are shared
    (with other jobs running, 2 threads made these tests about 8x slower than 1)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_task(n=400, size=32, amp=0.08, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    yy, xx = np.mgrid[:size, :size] / size
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    grating = np.where(
        labels[:, None, None] == 1, np.sin(2 * np.pi * 4 * xx + phase), np.sin(2 * np.pi * 4 * yy + phase)
    )
    clean = np.clip(0.5 + amp * grating + noise * rng.standard_normal((n, size, size)), 0, 1)
    clean = clean.astype(np.float32)[:, None]
    artifacted = clean.copy()
    artifacted[:, :, 1:6, 1:6] = 1.0
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    split = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val))
    return clean, artifacted, labels, split


@pytest.fixture(scope="module")
def task():
    return make_task()


def run(task, p, seed=0, recipe=RECIPE, **kw):
    clean, artifacted, labels, split = task
    sets = build_sets(clean, artifacted, labels, split, p, seed=seed)
    x = sets["train"][0]
    set_seed(seed)
    model, prep, _ = build_init(
        {"kind": "scratch"},
        arch="test_resnet",
        num_classes=2,
        in_chans_data=1,
        image_mean_std=(float(x.mean()), float(x.std())),
    )
    model, hist = train_classifier(
        model, prep, sets["train"], sets["val"], recipe=recipe, seed=seed, device="cpu", **kw
    )
    return model, hist, evaluate_sets(model, prep, sets, n_boot=200)


@pytest.fixture(scope="module")
def run_p1(task):
    return run(task, 1.0)


def test_p1_learns_the_shortcut(run_p1):
    model, hist, res = run_p1
    assert res["test_ood"]["auc"] < 0.3
    assert res["shortcut_gap"] > 0.3
    assert res["test_iid"]["auc"] > 0.9
    assert list(hist.columns) == HISTORY_COLUMNS and len(hist) == RECIPE["epochs"]
    assert not model.training


def test_p0_has_no_gap(task):
    _, _, res = run(task, 0.0)
    assert res["test_clean"]["auc"] > 0.7
    assert abs(res["shortcut_gap"]) < 0.15


def test_same_seed_same_numbers_on_cpu(task, run_p1, caplog):
    with caplog.at_level(logging.INFO, logger="shortcut_psd.train"):
        model, hist, res = run(task, 1.0, progress=True)
    pd.testing.assert_frame_equal(hist.drop(columns="seconds"), run_p1[1].drop(columns="seconds"))
    scores = res.pop("scores")
    expected = dict(run_p1[2])
    expected_scores = expected.pop("scores")
    assert res == expected
    for name, values in scores.items():
        np.testing.assert_array_equal(values, expected_scores[name])
    text = caplog.text
    assert "240 train / 80 val images of 1x32x32" in text and "epoch 6/6" in text and "val_auc" in text


def test_best_weights_are_restored_and_early_stopping(task):
    recipe = {
        **RECIPE,
        "epochs": 30,
        "lr": 2e-2,
        "optimizer": "sgd",
        "schedule": "constant",
        "patience": 2,
        "augment": "flip_crop",
        "warmup_epochs": 1,
        "label_smoothing": 0.1,
    }
    model, hist, res = run(task, 1.0, recipe=recipe)
    assert len(hist) < 30  # stopped early
    assert hist["val_loss"].idxmin() == len(hist) - 1 - 2  # patience 2 after the best epoch
    clean, artifacted, labels, split = task
    sets = build_sets(clean, artifacted, labels, split, 1.0, seed=0)
    x = sets["train"][0]
    from shortcut_psd.models import Preprocessing

    prep = Preprocessing(1, float(x.mean()), float(x.std()))
    with torch.no_grad():
        logits = model(prep(torch.as_tensor(sets["val"][0])))
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(sets["val"][1]))
    assert float(loss) == pytest.approx(hist["val_loss"].min(), rel=1e-4)


def test_max_train_images_is_not_a_train_classifier_key(task):
    """One subsample only: shortcut_psd.study applies max_train_images (before the shortcut protocol)."""
    with pytest.raises(ConfigError, match=r"'max_train_images' is applied by shortcut_psd.study"):
        run(task, 1.0, recipe={**RECIPE, "epochs": 1, "max_train_images": 50})


def test_nan_loss_raises_training_error(task):
    with pytest.raises(TrainingError, match=r"epoch 1, batch \d+/\d+ \(lr 1e\+30\).*lower the learning rate"):
        run(task, 1.0, recipe={**RECIPE, "lr": 1e30, "optimizer": "sgd", "epochs": 1})


def test_recipe_validation():
    assert resolve_recipe({"lr": 0.1})["lr"] == 0.1
    with pytest.raises(ConfigError, match="'epoch' \\(did you mean 'epochs'\\?\\)"):
        resolve_recipe({"epoch": 3})
    with pytest.raises(ConfigError, match="augment 'mixup' is not one of"):
        resolve_recipe({"augment": "mixup"})


def test_augment_batch_is_seeded_and_shape_preserving():
    x = torch.rand(16, 1, 12, 10)
    for kind in ("flip", "flip_crop"):
        a = augment_batch(x, kind, torch.Generator().manual_seed(0))
        b = augment_batch(x, kind, torch.Generator().manual_seed(0))
        assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    flipped = augment_batch(x, "flip", torch.Generator().manual_seed(0))
    for i in range(16):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    assert augment_batch(x, "none", torch.Generator()) is x


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_multiclass_auc_equals_scikit_learn(classes):
    """The rank AUC used during training (no sklearn import at start-up) equals roc_auc_score, ties included."""
    from sklearn.metrics import roc_auc_score

    from shortcut_psd.train import multiclass_auc

    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 300)
    logits = np.round(rng.normal(size=(300, classes)) + np.eye(classes)[y], 1)  # rounding makes ties
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = (
        roc_auc_score(y, prob[:, 1])
        if classes == 2
        else roc_auc_score(y, prob, multi_class="ovr", average="macro", labels=np.arange(classes))
    )
    assert multiclass_auc(y, prob) == pytest.approx(want, abs=1e-12)
    assert np.isnan(multiclass_auc(np.zeros(10, int), prob[:10]))
