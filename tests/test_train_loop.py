"""The pieces of train_classifier's loop: one seed gives the same weights, history and on_step calls;
on_step sees step 0 before any update and every update after; early stopping keeps the best weights."""

from __future__ import annotations

import math

import pytest
import torch
from test_train import make_task, one_torch_thread, run  # noqa: F401 - one_torch_thread: autouse

from shortcut_psd.dynamics_schedule import steps_per_epoch
from shortcut_psd.shortcut import build_sets
from shortcut_psd.train import _BestWeights

RECIPE = {
    "epochs": 3,
    "batch_size": 25,
    "lr": 1e-2,
    "optimizer": "sgd",
    "warmup_epochs": 1,
    "augment": "flip_crop",
    "label_smoothing": 0.1,
    "patience": 0,
}


@pytest.fixture(scope="module")
def task():
    return make_task(n=120, size=16)


def train_once(task, seed=0):
    """A scratch model trained on the p = 0.5 sets; returns ``(model, history, on_step calls)``."""
    calls = []

    def on_step(k, m):
        calls.append((k, m.training, [p.detach().clone() for p in m.parameters()]))
        m.eval()  # train_classifier puts the model back in train() after each call

    model, hist, _ = run(task, 0.5, seed=seed, recipe=RECIPE, on_step=on_step)
    return model, hist, calls


def test_same_seed_same_weights_history_and_steps(task):
    m1, h1, c1 = train_once(task)
    m2, h2, c2 = train_once(task)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1.drop(columns="seconds").equals(h2.drop(columns="seconds"))
    assert [(k, t) for k, t, _ in c1] == [(k, t) for k, t, _ in c2]
    assert all(all(map(torch.equal, a, b)) for (_, _, a), (_, _, b) in zip(c1, c2, strict=True))
    _, h3, _ = train_once(task, seed=1)
    assert not h3["train_loss"].equals(h1["train_loss"])


def test_on_step_sees_step_zero_then_every_update(task):
    model, hist, calls = train_once(task)
    n = steps_per_epoch(len(build_sets(*task, 0.5, seed=0)["train"][1]), RECIPE["batch_size"])
    assert [k for k, _, _ in calls] == list(range(n * RECIPE["epochs"] + 1))
    assert all(training for _, training, _ in calls[1:])  # each update is made in train() mode
    assert not all(map(torch.equal, calls[0][2], calls[1][2]))  # step 0 comes before the first update
    assert not model.training and len(hist) == RECIPE["epochs"]
    assert hist["lr"].tolist()[0] == pytest.approx(RECIPE["lr"] / n)  # first warm-up step, logged per epoch


def test_best_weights_tracker_keeps_the_lowest_loss_and_counts_patience():
    net = torch.nn.Linear(2, 1)
    best = _BestWeights(patience=2)
    assert best.loss == math.inf and not best.stop
    assert best.update(net, 1, 0.5)
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not best.update(net, 2, 0.7) and not best.stop
    assert not best.update(net, 3, 0.5) and best.stop  # equal is not lower
    assert best.epoch == 1 and best.loss == 0.5 and best.stale == 2
    assert all(torch.equal(best.state[k], kept[k]) for k in kept)
    never = _BestWeights(patience=0)
    never.update(net, 1, 1.0)
    for epoch in range(2, 10):
        never.update(net, epoch, 2.0)
    assert not never.stop
