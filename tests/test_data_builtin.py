"""Built-in data sets: shapes, value range, labels, splits that share no group or tissue, offline build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from shortcut_psd.data.brain_tissue import _mni152, _slabs, _slices_first
from shortcut_psd.data.builtin import (
    BUILTINS,
    build_brain_tissue,
    build_builtin,
    build_clinical,
    build_photos,
    builtin_defaults,
    dicom_frames,
)
from shortcut_psd.data.crops import crops_at, grid_crops, grid_starts, split_bands
from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError


def _check_common(ds: ImageSet, size: int) -> None:
    assert ds.images.dtype == np.float32
    assert ds.images.shape[1:] == (1, size, size)
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert set(np.unique(ds.split)) <= set(SPLITS)
    # every class is in train, and no group crosses splits
    train_labels = set(ds.labels[ds.split == "train"].tolist())
    assert train_labels == set(range(ds.num_classes))
    for g in np.unique(ds.group):
        assert len(np.unique(ds.split[ds.group == g])) == 1, g
    assert ds.meta["sources"] and all("licence" in s for s in ds.meta["sources"])
    assert ds.meta["counts"] == ds.counts()


@pytest.fixture(scope="module")
def photos() -> ImageSet:
    return build_photos(image_size=16, stride=16, crops_per_image=60, downscale=4)


@pytest.fixture(scope="module")
def clinical() -> ImageSet:
    return build_clinical(image_size=16, stride=16, short_sides=(64,), crops_per_image=40)


@pytest.fixture(scope="module")
def brain() -> ImageSet:
    return build_brain_tissue(image_size=16, stride=12, slice_step=6)


def test_photos_instance_classes_and_bands(photos: ImageSet) -> None:
    _check_common(photos, 16)
    assert photos.num_classes >= 12  # sixteen where every loader works offline
    assert {"astronaut", "camera", "china", "grace_hopper"} <= set(photos.classes)
    counts = photos.counts()
    assert sum(counts["val"].values()) > 0 and sum(counts["test"].values()) > 0
    # groups are photo/band: one band per split and photo
    for g in np.unique(photos.group):
        photo, band = g.split("/")
        assert band == photos.split[photos.group == g][0]
        assert photos.classes[photos.labels[photos.group == g][0]] == photo
    # the cap: at most ceil(60 * fraction) crops per photo and band
    for split, cap in (("train", 42), ("val", 9), ("test", 9)):
        assert max(counts[split].values()) <= cap
    assert photos.images.reshape(len(photos.images), -1).std(axis=1).min() >= 0.02


def test_bands_and_grid_crops_stay_inside_their_band() -> None:
    """A crop of one split never reaches into another split's rows: use an image whose pixel value is
    its row index and check each crop's rows against its band."""
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    bands = split_bands(100, fractions)
    assert bands == {"train": (0, 70), "val": (70, 85), "test": (85, 100)}
    rows = np.repeat(np.arange(100, dtype=np.float32)[:, None], 40, axis=1)
    for split, (r0, r1) in bands.items():
        crops = grid_crops(rows, 8, 3, (r0, r1))
        assert len(crops) > 0
        assert crops.min() >= r0 and crops.max() < r1, split
    cols = rows.T.copy()
    crops = grid_crops(cols, 8, 3, None, (85, 100))
    assert crops.min() >= 85 and crops.max() < 100


def test_photos_deterministic(photos: ImageSet) -> None:
    again = build_photos(image_size=16, stride=16, crops_per_image=60, downscale=4)
    np.testing.assert_array_equal(again.images, photos.images)
    np.testing.assert_array_equal(again.group, photos.group)


def test_clinical_modalities(clinical: ImageSet) -> None:
    _check_common(clinical, 16)
    assert clinical.num_classes >= 5
    assert {"CR", "CT", "MR", "US", "fundus", "microscopy"} <= set(clinical.classes)
    # split by source image or frame: a group is a file name or file/frame
    sources = {s["name"] for s in clinical.meta["sources"]}
    assert {g.split("/")[0] for g in np.unique(clinical.group)} <= sources
    assert (clinical.split != "train").any()
    # compressed files are skipped with a reason that names them, never decoded with a plugin
    skipped = {s["name"]: s["reason"] for s in clinical.meta["skipped"]}
    assert "explicit_VR-UN" in skipped and "compressed" in skipped["explicit_VR-UN"]
    # background-only crops are gone
    flat = clinical.images.reshape(len(clinical.images), -1)
    assert flat.std(axis=1).min() >= 0.04


def test_clinical_band_split_reaches_val_with_every_class() -> None:
    ds = build_clinical(image_size=16, stride=16, short_sides=(128,), split_by="band")
    counts = ds.counts()
    for split in ("train", "val"):
        assert all(n > 0 for n in counts[split].values()), (split, counts[split])
    assert sum(n > 0 for n in counts["test"].values()) >= 4
    assert all(g.rsplit("/", 1)[1] == s for g, s in zip(ds.group, ds.split, strict=True))


def test_dicom_frames_monochrome1_multiframe_and_colour() -> None:
    from pydicom.data import get_testdata_file

    cr = dicom_frames(get_testdata_file("RG1_UNCI.dcm", download=False))
    assert len(cr) == 1 and cr[0].dtype == np.float32
    # MONOCHROME1 is inverted: the air around the chest (high raw value) is dark after loading
    h, w = cr[0].shape
    lungs = cr[0][h // 3 : h // 2, w // 4 : w // 3].mean()
    spine = cr[0][h // 3 : h // 2, w // 2 - 30 : w // 2 + 30].mean()
    assert spine > lungs
    assert len(dicom_frames(get_testdata_file("emri_small.dcm", download=False))) == 10
    us = dicom_frames(get_testdata_file("US1_UNCI.dcm", download=False))  # RGB -> grey
    assert us[0].shape == (480, 640)
    for frame in (*cr, *us):
        assert 0.0 <= frame.min() and frame.max() <= 1.0
    with pytest.raises(DataError, match="explicit_VR-UN.dcm.*compressed"):
        dicom_frames(get_testdata_file("explicit_VR-UN.dcm", download=False))


def test_brain_tissue_labels_and_slabs(brain: ImageSet) -> None:
    _check_common(brain, 16)
    assert brain.classes == ["grey_matter", "white_matter"]
    assert brain.meta["positive_class"] == "white_matter"
    balance = brain.meta["class_balance"]
    assert balance == brain.counts()
    for split in SPLITS:
        assert all(n > 0 for n in balance[split].values())
    slabs = sorted(brain.meta["slabs"], key=lambda s: s["first_slice"])
    gap = brain.meta["params"]["gap"]
    assert gap == 8
    for a, b in zip(slabs, slabs[1:], strict=False):
        assert a["first_slice"] <= a["last_slice"]
        assert b["first_slice"] - a["last_slice"] - 1 >= gap  # whole gap of unused slices between slabs
    assert {s["split"] for s in slabs} == set(SPLITS)
    # group_slices defaults to slice_step: one group per sampled slice, each inside its split's slab
    assert brain.meta["params"]["group_slices"] == 6
    for g in np.unique(brain.group):
        split = brain.split[brain.group == g][0]
        g0, g1 = _group_range(g)
        assert g.startswith(f"axial_{split}_slab_") and g1 - g0 + 1 <= 6
        assert sum(s["first_slice"] <= g0 <= g1 <= s["last_slice"] for s in slabs if s["split"] == split) == 1


def _group_range(group: str) -> tuple[int, int]:
    first, last = group.rsplit("_", 1)[1].split("-")
    return int(first), int(last)


def _old_brain_tissue(image_size: int = 32, stride: int = 8, slice_step: int = 4, gap: int | None = None):
    """images, labels, split and group as built before groups were thinner than a split's slab (the
    group was the whole slab), re-derived here from the same helpers."""
    gap = image_size // 2 if gap is None else gap
    t1, gm, wm, _ = _mni152()
    t1, gm, wm = (_slices_first(v, "axial") for v in (t1, gm, wm))
    t1 = np.clip(t1, 0.0, 1.0)
    _, rows, cols = t1.shape
    half = image_size // 2
    rr, cc = np.meshgrid(
        grid_starts(rows, image_size, stride) + half,
        grid_starts(cols, image_size, stride) + half,
        indexing="ij",
    )
    rr, cc = rr.ravel(), cc.ravel()
    labelled = ((gm[:, rr, cc] > 0.5) | (wm[:, rr, cc] > 0.5)).sum(axis=1)
    slab_list = _slabs(labelled, SPLITS, [0.6, 0.2, 0.2], gap)
    images, labels, split, group = [], [], [], []
    for name, z0, z1 in slab_list:
        by_label: dict[int, list[np.ndarray]] = {0: [], 1: []}
        for z in range(z0, z1, slice_step):
            is_wm = wm[z, rr, cc] > 0.5
            is_gm = (gm[z, rr, cc] > 0.5) & ~is_wm
            for label, mask in ((1, is_wm), (0, is_gm)):
                if mask.any():
                    by_label[label].append(crops_at(t1[z], rr[mask] - half, cc[mask] - half, image_size))
        for label, crops in by_label.items():
            if crops:
                n = sum(len(c) for c in crops)
                images.append(np.concatenate(crops))
                labels += [label] * n
                split += [name] * n
                group += [f"axial_{name}_slab_{z0:03d}-{z1 - 1:03d}"] * n
    return np.concatenate(images)[:, None], np.array(labels), np.array(split), np.array(group)


# Test-split groups, as built with nilearn 0.13.1's MNI152 template: default (image_size 32, stride 8,
# slice_step 4) 9 (train 18, val 4); smoke (image_size 16, stride 12, slice_step 8) 5 (train 10, val 3).
@pytest.mark.parametrize(
    "params, min_test_groups",
    [
        pytest.param({}, 5, id="default"),
        pytest.param({"image_size": 16, "stride": 12, "slice_step": 8}, 3, id="smoke"),
    ],
)
def test_brain_tissue_groups_split_the_old_slabs_only(params: dict, min_test_groups: int) -> None:
    ds = build_brain_tissue(**params)
    images, labels, split, old_group = _old_brain_tissue(**params)
    # same images, labels and splits, in the same order, as when the group was the whole slab
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.split, split)
    # every new group lies inside exactly one old slab, and is a slice range inside it
    for g in np.unique(ds.group):
        old = np.unique(old_group[ds.group == g])
        assert len(old) == 1, (g, old)
        g0, g1 = _group_range(g)
        s0, s1 = _group_range(old[0])
        assert s0 <= g0 <= g1 <= s1
    # group_slices at least a slab thick gives back the old grouping exactly
    whole = build_brain_tissue(**params, group_slices=10_000)
    np.testing.assert_array_equal(whole.group, old_group)
    n_groups = {s: len(np.unique(ds.group[ds.split == s])) for s in SPLITS}
    print(f"brain_tissue {params or 'default'}: groups per split {n_groups}")
    assert n_groups["test"] >= min_test_groups, n_groups
    assert all(n_groups[s] > len(np.unique(old_group[split == s])) for s in SPLITS)


def test_brain_tissue_group_slices() -> None:
    ds = build_brain_tissue(image_size=16, stride=12, slice_step=6, group_slices=12)
    per_slice = build_brain_tissue(image_size=16, stride=12, slice_step=6)
    np.testing.assert_array_equal(ds.images, per_slice.images)
    assert ds.meta["params"]["group_slices"] == 12
    # two sampled slices per group (the last group of a slab may hold one)
    assert len(np.unique(ds.group)) < len(np.unique(per_slice.group))
    for g in np.unique(per_slice.group):
        assert len(np.unique(ds.group[per_slice.group == g])) == 1
    for bad in (0, -4, 1.5, True, "4"):
        with pytest.raises(DataError, match="group_slices"):
            build_brain_tissue(image_size=16, stride=12, slice_step=6, group_slices=bad)


def test_brain_tissue_orders_and_axes() -> None:
    ds = build_brain_tissue(
        image_size=16, stride=12, slice_step=6, axis="coronal", order=("train", "val", "test", "train")
    )
    assert [s["split"] for s in ds.meta["slabs"]] == ["train", "val", "test", "train"]
    with pytest.raises(DataError, match="axis"):
        build_brain_tissue(axis="oblique")
    with pytest.raises(DataError, match="order"):
        build_brain_tissue(order=("train", "val"))


def test_registry_and_defaults() -> None:
    assert set(BUILTINS) == {"photos", "clinical", "brain_tissue"}
    d = builtin_defaults("brain_tissue")
    assert d["group_slices"] is None
    assert d["image_size"] == 32 and d["threshold"] == 0.5 and d["slabs"] == [0.6, 0.2, 0.2]
    assert builtin_defaults("photos")["seed"] == 0
    with pytest.raises(DataError, match="unknown built-in"):
        builtin_defaults("imagenet")
    with pytest.raises(DataError, match="no parameters"):
        build_builtin("photos", image_sise=16)


_OFFLINE = textwrap.dedent(
    """
    import socket
    try:  # prove the sandbox has no network before trusting the result
        socket.create_connection(("1.1.1.1", 80), timeout=2)
        raise SystemExit("network reachable inside unshare -n")
    except OSError:
        pass
    from shortcut_psd.data.builtin import build_brain_tissue, build_clinical, build_photos
    p = build_photos(image_size=16, stride=16, crops_per_image=20, downscale=4)
    c = build_clinical(image_size=16, stride=16, short_sides=(64,), crops_per_image=20)
    b = build_brain_tissue(image_size=16, stride=16, slice_step=8)
    print("OK", p.num_classes, c.num_classes, b.num_classes, len(p.images), len(c.images), len(b.images))
    """
)


def test_builds_with_networking_disabled() -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("the unshare command is not installed, so the network cannot be switched off here")
    if os.geteuid() != 0:
        pytest.skip("unshare -n needs root here; run the tests as root to check the offline build")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here ({probe.stderr.strip()})")
    out = subprocess.run(
        [unshare, "-n", sys.executable, "-c", _OFFLINE], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK"), out.stdout
    _, n_photos, n_clinical, n_brain, *_ = out.stdout.split()
    # every source loads offline: 16 photos, 7 modalities (only the JPEG 2000 CT file is skipped)
    assert (int(n_photos), int(n_clinical), int(n_brain)) == (16, 7, 2), out.stdout
