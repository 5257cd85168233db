"""Users' data sets: ImageFolder, CSV manifest and MedMNIST NPZ -> ImageSet, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shortcut_psd.data.user import load_user_dataset, split_by_group
from shortcut_psd.errors import DataError


def _png(path: Path, rng: np.random.Generator, *, rgb: bool, size: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (*size, 3) if rgb else size
    Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(path)
    return path


def _folder(root: Path, classes: dict[str, int], seed: int = 0) -> Path:
    """Class folders of grey and RGB PNGs of mixed sizes."""
    rng = np.random.default_rng(seed)
    for cls, n in classes.items():
        for i in range(n):
            size = (int(rng.integers(12, 40)), int(rng.integers(12, 40)))
            _png(root / cls / f"{i}.png", rng, rgb=bool(i % 2), size=size)
    return root


def _load(spec: dict, **kw) -> object:
    kw = {"image_size": 16, "seed": 0, **kw}
    return load_user_dataset(spec, **kw)


# ---- ImageFolder -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_imagefolder_mixed_grey_rgb_sizes(tmp_path: Path, channels: int) -> None:
    root = _folder(tmp_path / "data", {"normal": 10, "abnormal": 10})
    ds = _load({"format": "imagefolder", "path": str(root)}, channels=channels)
    assert ds.images.shape == (20, channels, 16, 16) and ds.images.dtype == np.float32
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.classes == ["abnormal", "normal"]  # sorted folder names
    counts = ds.counts()
    assert all(counts["train"][c] >= 6 for c in ds.classes)
    assert all(sum(counts[s].values()) > 0 for s in ("val", "test"))
    assert len(np.unique(ds.group)) == 20  # each file is its own group
    if channels == 3:  # grey images are replicated into three equal channels
        grey_idx = [i for i, g in enumerate(ds.group) if int(Path(g).stem) % 2 == 0]
        np.testing.assert_allclose(ds.images[grey_idx, 0], ds.images[grey_idx, 2])


def test_imagefolder_split_folders_and_class_order(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        _folder(root / split, {"neg": n, "pos": n}, seed=len(split))
    ds = _load({"format": "imagefolder", "path": str(root), "classes": ["pos", "neg"]})
    assert ds.classes == ["pos", "neg"]
    assert ds.counts() == {
        "train": {"pos": 6, "neg": 6},
        "val": {"pos": 2, "neg": 2},
        "test": {"pos": 2, "neg": 2},
    }
    assert all(g.startswith(s + "/") for g, s in zip(ds.group, ds.split, strict=True))


def test_imagefolder_train_only_folder_draws_val_and_test(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _folder(root / "train", {"a": 10, "b": 10})
    ds = _load({"format": "imagefolder", "path": str(root)})
    assert set(np.unique(ds.split)) == {"train", "val", "test"}


def test_imagefolder_empty_class_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"a": 3, "b": 3})
    (root / "c").mkdir()
    with pytest.raises(DataError, match=r"class folder .*c is empty"):
        _load({"format": "imagefolder", "path": str(root)})


def test_imagefolder_single_class(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"only": 4})
    with pytest.raises(DataError, match=r"only one class \(only\)"):
        _load({"format": "imagefolder", "path": str(root)})


def test_imagefolder_non_image_file(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    with pytest.raises(DataError, match=r"notes\.txt is not an image file"):
        _load({"format": "imagefolder", "path": str(root)})


def test_imagefolder_corrupt_and_truncated_images(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "fake.png").write_text("this is text, not a PNG")
    with pytest.raises(DataError, match=r"fake\.png cannot be read as an image"):
        _load({"format": "imagefolder", "path": str(root)})
    (root / "a" / "fake.png").unlink()
    rng = np.random.default_rng(1)
    good = tmp_path / "big.jpg"
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(good, quality=95)
    data = good.read_bytes()
    (root / "b" / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg cannot be read.*truncated"):
        _load({"format": "imagefolder", "path": str(root)})


# ---- CSV manifest ------------------------------------------------------------------------------


def _manifest(tmp_path: Path, n_patients: int = 12, per_patient: int = 3, *, split: bool = False) -> Path:
    rng = np.random.default_rng(0)
    lines = ["path,label,group" + (",split" if split else "")]
    for p in range(n_patients):
        label = "injured" if p % 3 == 0 else "healthy"
        for k in range(per_patient):
            rel = f"img/p{p:02d}_{k}.png"
            _png(tmp_path / rel, rng, rgb=bool(k % 2), size=(20 + k, 24))
            extra = "," + ("train" if p < 8 else "val" if p < 10 else "test") if split else ""
            lines.append(f"{rel},{label},patient{p:02d}{extra}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_csv_groups_never_cross_splits_and_seed_repeats(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    spec = {"format": "csv", "path": str(manifest)}
    ds = _load(spec, val_fraction=0.25, test_fraction=0.25)
    assert ds.images.shape == (36, 1, 16, 16)
    assert ds.classes == ["healthy", "injured"]
    for g in np.unique(ds.group):
        assert len(np.unique(ds.split[ds.group == g])) == 1, g
    assert set(np.unique(ds.split)) == {"train", "val", "test"}
    for cls in range(2):  # stratified: every class in every split
        assert all(((ds.labels == cls) & (ds.split == s)).any() for s in ("train", "val", "test"))
    again = _load(spec, val_fraction=0.25, test_fraction=0.25)
    np.testing.assert_array_equal(again.split, ds.split)
    other = _load(spec, val_fraction=0.25, test_fraction=0.25, seed=5)
    assert not np.array_equal(other.split, ds.split)


def test_csv_split_column_is_used(tmp_path: Path) -> None:
    ds = _load({"format": "csv", "path": str(_manifest(tmp_path, split=True))})
    assert sum(ds.counts()["train"].values()) == 24
    assert sum(ds.counts()["val"].values()) == 6 and sum(ds.counts()["test"].values()) == 6


def test_csv_group_in_two_splits(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, split=True)
    lines = manifest.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",test"  # patient00's first image moves to test
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="group 'patient00' is in splits"):
        _load({"format": "csv", "path": str(manifest)})


def test_csv_missing_file_and_columns(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    (tmp_path / "img" / "p03_1.png").unlink()
    with pytest.raises(DataError, match=r"line 12: image file .*p03_1\.png does not exist"):
        _load({"format": "csv", "path": str(manifest)})
    bad = tmp_path / "bad.csv"
    bad.write_text("file,diagnosis\nimg/p00_0.png,healthy\n")
    with pytest.raises(DataError, match=r"bad\.csv lacks columns \['path', 'label'\]"):
        _load({"format": "csv", "path": str(bad)})
    ok = tmp_path / "mapped.csv"
    ok.write_text("file,diagnosis\nimg/p00_0.png,healthy\nimg/p01_0.png,injured\nimg/p02_0.png,healthy\n")
    ds = _load(
        {"format": "csv", "path": str(ok), "columns": {"path": "file", "label": "diagnosis"}},
        val_fraction=0.0,
        test_fraction=0.0,
    )
    assert len(ds.images) == 3


def test_csv_paths_may_not_leave_the_manifest_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    outside = _png(tmp_path / "outside.png", rng, rgb=False, size=(16, 16))
    inner = tmp_path / "study"
    _png(inner / "a.png", rng, rgb=False, size=(16, 16))
    manifest = inner / "m.csv"
    manifest.write_text("path,label\na.png,x\n../outside.png,y\n")
    with pytest.raises(DataError, match=r"outside the manifest's folder.*allow_outside: true"):
        _load({"format": "csv", "path": str(manifest)})
    manifest.write_text(f"path,label\na.png,x\n{outside},y\n")  # absolute, elsewhere
    with pytest.raises(DataError, match="allow_outside"):
        _load({"format": "csv", "path": str(manifest)})
    ds = _load(
        {"format": "csv", "path": str(manifest), "allow_outside": True}, val_fraction=0, test_fraction=0
    )
    assert ds.classes == ["x", "y"]


def test_csv_non_image_in_manifest(tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text("hello")
    _png(tmp_path / "a.png", np.random.default_rng(0), rgb=False, size=(8, 8))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.png,x\ndoc.txt,y\n")
    with pytest.raises(DataError, match=r"doc\.txt is not an image file"):
        _load({"format": "csv", "path": str(manifest)})


# ---- NPZ (MedMNIST layout) ---------------------------------------------------------------------


def _medmnist(path: Path, *, rgb: bool = False, nan: bool = False) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 12)):
        shape = (n, 28, 28, 3) if rgb else (n, 28, 28)
        arrays[f"{split}_images"] = (rng.random(shape) * 255).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(n, 1).astype(np.uint8)
    if nan:
        arrays["val_images"] = arrays["val_images"].astype(np.float32) / 255
        arrays["val_images"][3, 5, 5] = np.nan
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("rgb", "channels"), [(False, 1), (True, 1), (True, 3), (False, 3)])
def test_npz_medmnist_layout(tmp_path: Path, rgb: bool, channels: int) -> None:
    path = _medmnist(tmp_path / "pathmnist.npz", rgb=rgb)
    ds = _load(
        {"format": "npz", "path": str(path), "classes": ["a", "b", "c"]}, image_size=32, channels=channels
    )
    assert ds.images.shape == (62, channels, 32, 32)
    assert ds.classes == ["a", "b", "c"]
    assert [sum(ds.counts()[s].values()) for s in ("train", "val", "test")] == [40, 10, 12]
    assert ds.labels[:6].tolist() == [0, 1, 2, 0, 1, 2]
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.name == "pathmnist"


def test_npz_nan_and_missing_keys(tmp_path: Path) -> None:
    path = _medmnist(tmp_path / "bad.npz", nan=True)
    with pytest.raises(DataError, match=r"bad\.npz 'val_images': image 3 contains NaN"):
        _load({"format": "npz", "path": str(path)})
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros((3, 8, 8)))
    with pytest.raises(DataError, match=r"other\.npz lacks 'train_images'"):
        _load({"format": "npz", "path": str(other)})
    single = tmp_path / "single.npz"
    np.savez(single, train_images=np.zeros((4, 8, 8), np.uint8), train_labels=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="only one class"):
        _load({"format": "npz", "path": str(single)})


# ---- spec checks and the split helper ----------------------------------------------------------


def test_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data set format"):
        _load({"format": "hdf5", "path": "x"})
    with pytest.raises(DataError, match="unknown keys"):
        _load({"format": "npz", "path": "x", "colums": {}})
    with pytest.raises(DataError, match="does not exist"):
        _load({"format": "imagefolder", "path": str(tmp_path / "nope")})


def test_split_by_group_keeps_groups_whole() -> None:
    labels = np.repeat([0, 1], 50)
    group = np.array([f"g{i // 4}" for i in range(100)])
    split = split_by_group(labels, group, val_fraction=0.2, test_fraction=0.2, seed=3)
    for g in np.unique(group):
        assert len(np.unique(split[group == g])) == 1
    share = {s: (split == s).mean() for s in ("train", "val", "test")}
    assert 0.5 <= share["train"] <= 0.7 and share["val"] > 0.1 and share["test"] > 0.1
