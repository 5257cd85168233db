"""Bad data fails with a message that names the file or the class, in the library and in the workflow.

Unit cases go through ``shortcut_psd.data.user.load_user_dataset`` (and the pipeline's own readers);
the slow case runs the workflow on two user targets, one corrupt, with ``--keep-going``: the corrupt
target's preparation fails naming the file in its log and every job of the good target completes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_keep_going
from PIL import Image

from shortcut_psd.data.store import load_imageset
from shortcut_psd.data.user import load_user_dataset
from shortcut_psd.errors import DataError
from shortcut_psd.shortcut import build_sets

REPO = Path(__file__).resolve().parents[1]


def write_png(path: Path, seed: int, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)
    return path


def image_folder(root: Path, classes=("neg", "pos"), per_class: int = 6, size: int = 16) -> Path:
    for k, cls in enumerate(classes):
        for i in range(per_class):
            write_png(root / cls / f"{cls}_{i:03d}.png", seed=1000 * k + i, size=size)
    return root


def truncate(path: Path, keep: int = 40) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


# ------------------------------------------------------------------------------------------------
# Each case builds a broken data set under tmp and returns (spec, text the message must contain).
# ------------------------------------------------------------------------------------------------
def case_truncated_image(tmp: Path):
    root = image_folder(tmp / "imgs")
    bad = root / "pos" / "pos_003.png"
    truncate(bad)
    return {"format": "imagefolder", "path": str(root)}, str(bad)


def case_non_image_file(tmp: Path):
    root = image_folder(tmp / "imgs")
    bad = root / "neg" / "notes.txt"
    bad.write_text("scanner settings\n")
    return {"format": "imagefolder", "path": str(root)}, str(bad)


def case_text_named_png(tmp: Path):
    root = image_folder(tmp / "imgs")
    bad = root / "neg" / "fake.png"
    bad.write_text("this is not a PNG\n")
    return {"format": "imagefolder", "path": str(root)}, str(bad)


def case_empty_class_folder(tmp: Path):
    root = image_folder(tmp / "imgs")
    (root / "other").mkdir()
    return {"format": "imagefolder", "path": str(root)}, "other"


def case_single_class(tmp: Path):
    root = image_folder(tmp / "imgs", classes=("pos",))
    return {"format": "imagefolder", "path": str(root)}, "pos"


def case_manifest_missing_file(tmp: Path):
    root = image_folder(tmp / "imgs")
    rows = ["path,label"] + [f"{p.relative_to(root)},{p.parent.name}" for p in sorted(root.rglob("*.png"))]
    rows.append("pos/gone.png,pos")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return {"format": "csv", "path": str(root / "manifest.csv")}, "gone.png"


def case_manifest_single_class(tmp: Path):
    root = image_folder(tmp / "imgs")
    rows = ["path,label"] + [f"{p.relative_to(root)},tumour" for p in sorted(root.rglob("*.png"))]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return {"format": "csv", "path": str(root / "manifest.csv")}, "tumour"


def case_manifest_truncated_image(tmp: Path):
    root = image_folder(tmp / "imgs")
    rows = ["path,label"] + [f"{p.relative_to(root)},{p.parent.name}" for p in sorted(root.rglob("*.png"))]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    truncate(root / "neg" / "neg_001.png")
    return {"format": "csv", "path": str(root / "manifest.csv")}, str(root / "neg" / "neg_001.png")


def _npz(tmp: Path, **arrays) -> Path:
    path = tmp / "set.npz"
    np.savez(path, **arrays)
    return path


def case_npz_nan(tmp: Path):
    x = np.random.default_rng(0).random((10, 16, 16)).astype(np.float32)
    x[7, 3, 3] = np.nan
    path = _npz(tmp, train_images=x, train_labels=np.arange(10) % 2)
    return {"format": "npz", "path": str(path)}, f"{path} 'train_images': image 7"


def case_npz_single_class(tmp: Path):
    x = np.random.default_rng(0).random((10, 16, 16)).astype(np.float32)
    path = _npz(tmp, train_images=x, train_labels=np.zeros(10, int))
    return {"format": "npz", "path": str(path)}, str(path)


def case_npz_label_count(tmp: Path):
    x = np.random.default_rng(0).random((10, 16, 16)).astype(np.float32)
    path = _npz(tmp, train_images=x, train_labels=np.arange(9) % 2)
    return {"format": "npz", "path": str(path)}, f"{path} 'train_labels'"


def case_npz_truncated(tmp: Path):
    x = np.random.default_rng(0).random((50, 16, 16)).astype(np.float32)
    path = _npz(tmp, train_images=x, train_labels=np.arange(50) % 2)
    truncate(path, keep=path.stat().st_size // 2)
    return {"format": "npz", "path": str(path)}, str(path)


CASES: list[tuple[str, Callable]] = [
    ("truncated-image", case_truncated_image),
    ("non-image-file", case_non_image_file),
    ("text-named-png", case_text_named_png),
    ("empty-class-folder", case_empty_class_folder),
    ("single-class-target", case_single_class),
    ("manifest-missing-file", case_manifest_missing_file),
    ("manifest-single-class", case_manifest_single_class),
    ("manifest-truncated-image", case_manifest_truncated_image),
    ("npz-nan", case_npz_nan),
    ("npz-single-class", case_npz_single_class),
    ("npz-label-count", case_npz_label_count),
    ("npz-truncated", case_npz_truncated),
]


@pytest.mark.parametrize("make", [pytest.param(f, id=i) for i, f in CASES])
def test_bad_user_data_names_the_file_or_class(make, tmp_path):
    spec, named = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_user_dataset(spec, image_size=16, channels=1, seed=0)
    assert named in str(info.value), str(info.value)


def test_damaged_prepared_data_set_names_itself(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(DataError, match=str(path)):
        load_imageset(path)
    with pytest.raises(DataError, match="does not exist"):
        load_imageset(tmp_path / "missing.npz")


def test_multiclass_target_is_refused_by_the_protocol():
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1, 2], 10)
    split = np.repeat(["train", "val", "test"], 10)
    x = rng.random((30, 1, 8, 8)).astype(np.float32)
    with pytest.raises(DataError, match="binary"):
        build_sets(x, x, labels, split, 0.5, seed=0)


# ------------------------------------------------------------------------------------------------
# The workflow: one good and one corrupt user target, --keep-going
# ------------------------------------------------------------------------------------------------
def split_folders(root: Path, per_split: dict[str, int], seed: int) -> Path:
    for s, n in per_split.items():
        for k, cls in enumerate(("neg", "pos")):
            for i in range(n):
                write_png(root / s / cls / f"{i:03d}.png", seed=seed + 10_000 * k + 100 * len(s) + i)
    return root


@pytest.mark.slow
def test_workflow_keeps_going_past_a_corrupt_target(tmp_path):
    sizes = {"train": 24, "val": 8, "test": 8}
    split_folders(tmp_path / "good", sizes, seed=0)
    split_folders(tmp_path / "bad", sizes, seed=1)
    corrupt = tmp_path / "bad" / "train" / "pos" / "005.png"
    truncate(corrupt)

    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg.update(
        results="res",
        seeds=[0],
        datasets={
            "good": {"format": "imagefolder", "path": "good"},
            "bad": {"format": "imagefolder", "path": "bad"},
        },
        targets=["good", "bad"],
        edits={"none": {"kind": "none"}},
        inits={"scratch": {"kind": "scratch"}},
        artifacts={"tag": {"kind": "tag"}},
        prevalences=[0, 1],
        psd={"head_seeds": [0], "max_images": 16, "batch_size": 16},
        evaluation={"bootstrap": 20},
    )
    cfg["finetune"].update(epochs=1)
    proc = run_keep_going(tmp_path, cfg)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]

    res = tmp_path / "res"
    log = (res / "logs" / "data" / "bad.log").read_text()
    assert "005.png" in log and "DataError" in log, log
    assert not (res / "data" / "bad" / "data.npz").exists()
    assert "prepare_dataset" in out and "bad" in out

    good = [
        "data/good/data.npz",
        "artifacts/good/tag/seed0/images.npz",
        "finetune/scratch/good/none/p0/seed0/model.pt",
        "finetune/scratch/good/tag/p1/seed0/model.pt",
        "eval/scratch/good/tag/p0/seed0/metrics.json",
        "eval/scratch/good/tag/p1/seed0/metrics.json",
        "psd/pretrained/scratch/good/seed0/psd.npz",
        "psd/finetuned/scratch/good/tag/p1/seed0/psd.npz",
        "psd/finetuned/scratch/good/none/p0/seed0/psd.npz",
    ]
    missing = [f for f in good if not (res / f).is_file()]
    assert not missing, (missing, out[-3000:])
    # nothing of the corrupt target beyond its failed preparation
    assert not list(res.glob("*/*/bad/**/*.pt")) and not (res / "artifacts" / "bad").exists()
    # no temporary files left behind by the atomic writers
    assert not [p for p in res.rglob(".*.tmp")]
