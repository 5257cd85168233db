"""configs/paper.yaml plans its whole DAG on a fake tree with the layout the README prescribes."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from conftest import REPO, snakemake
from PIL import Image


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


@pytest.fixture
def fake_paper_tree(tmp_path):
    for source in ("imagenet", "radimagenet"):
        for split in ("train", "val"):
            for c in ("a", "b"):
                _png(tmp_path / "data" / source / split / c / "0.png", 10)
    for target, (neg, pos) in {
        "lodopab_ct": ("benign", "malignant"),
        "kneemri": ("healthy", "injured"),
    }.items():
        rows = ["path,label,split,group"]
        for i, (label, split) in enumerate(
            [(neg, "train"), (pos, "train"), (neg, "val"), (pos, "val"), (neg, "test"), (pos, "test")]
        ):
            _png(tmp_path / "data" / target / f"{i}.png", 20 * i)
            rows.append(f"{i}.png,{label},{split},patient{i}")
        (tmp_path / "data" / target / "manifest.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "RadImageNet-ResNet50.pt").write_bytes(
        b"stand-in: only its existence is checked when planning"
    )
    return tmp_path


def test_paper_config_plans_full_dag(fake_paper_tree):
    t0 = time.perf_counter()
    res = snakemake(
        "-n",
        "--nolock",
        "--quiet",
        "rules",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(fake_paper_tree),
        "--configfile",
        str(REPO / "configs" / "paper.yaml"),
        timeout=900,
    )
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stdout[-4000:]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", res.stdout, re.M)}
    # 8 inits x 2 targets x 5 seeds: one clean model shared by the 7 artifacts whose clean images are the
    # raw data, and one job per artifact: its 5 prevalences > 0, and for ct_photon_noise (clean images
    # with baseline-dose noise) its own p = 0 model too
    assert counts["finetune"] == 8 * 2 * 5, counts
    assert counts["finetune_shortcut"] == 8 * 2 * 5 * 7, counts
    assert counts["finetune_shortcut_own_p0"] == 8 * 2 * 5, counts
    assert counts["inject_artifact"] == 2 * 8 * 5, counts  # per target, artifact and artifact seed
    assert counts["pretrain"] == 5 * 5  # (imagenet x 3 edits + radimagenet x 2) x 5 seeds
    assert counts["total"] > 1000
    print(f"paper config: {counts['total']} jobs planned in {seconds:.1f} s")


def test_paper_config_refuses_missing_data_clearly(tmp_path):
    res = snakemake(
        "-n",
        "--nolock",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(REPO / "configs" / "paper.yaml"),
    )
    assert res.returncode != 0
    assert "datasets.imagenet.path" in res.stdout and "does not exist" in res.stdout, res.stdout[-2000:]
