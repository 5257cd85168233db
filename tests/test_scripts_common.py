"""workflow/scripts/_common.make_init: the one place where a job's init (params, input checkpoint, seed
wildcard, device) becomes a ``study.make_init`` call, for psd_pretrained, probes_run and finetune."""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO

from shortcut_psd import study

SCRIPTS = REPO / "workflow" / "scripts"


@pytest.fixture
def common(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("_common")


def job(spec, checkpoint, seed="3", device="cpu"):
    init = {"spec": spec, "arch": "test_resnet", "model_kwargs": {}}
    return SimpleNamespace(
        params=SimpleNamespace(init=init, device=device),
        input=SimpleNamespace(init=checkpoint),
        wildcards=SimpleNamespace(seed=seed),
    )


@pytest.mark.parametrize(
    "spec, checkpoint, want",
    [
        ({"kind": "scratch"}, [], None),
        ({"kind": "source", "source": "photos", "edit": "none"}, "results/m.pt", "results/m.pt"),
    ],
)
def test_the_job_plumbing_reaches_study_make_init(common, monkeypatch, spec, checkpoint, want):
    seen = {}
    monkeypatch.setattr(study, "make_init", lambda s, **kw: seen.update(spec=s, **kw) or "made")
    images = np.zeros((4, 1, 8, 8), np.float32)
    assert common.make_init(job(spec, checkpoint), num_classes=2, clean_train_images=images) == "made"
    assert seen.pop("clean_train_images") is images
    assert seen == {
        "spec": spec,
        "checkpoint": want,
        "arch": "test_resnet",
        "model_kwargs": {},
        "num_classes": 2,
        "seed": 3,
        "device": "cpu",
    }


def test_same_model_as_a_direct_call(common):
    images = np.random.default_rng(0).random((6, 1, 16, 16), dtype=np.float32)
    m1, p1, i1 = common.make_init(job({"kind": "scratch"}, []), num_classes=2, clean_train_images=images)
    m2, p2, i2 = study.make_init(
        {"kind": "scratch"},
        checkpoint=None,
        arch="test_resnet",
        model_kwargs={},
        num_classes=2,
        clean_train_images=images,
        seed=3,
        device="cpu",
    )
    assert p1.to_dict() == p2.to_dict() and i1 == i2
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


@pytest.mark.parametrize("script", ["psd_pretrained.py", "probes_run.py", "finetune.py"])
def test_the_scripts_use_it(script):
    text = (SCRIPTS / script).read_text()
    assert re.search(r"_common\.make_init\(\s*sm,", text) and "study.make_init" not in text
    assert re.search(r"^_common\.finish\(log\)$", text, re.M)
