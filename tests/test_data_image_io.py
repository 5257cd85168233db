"""Shared image I/O: files and arrays to [0, 1], grey/RGB, and the CLI reading images like the formats do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shortcut_psd.cli import load_images
from shortcut_psd.data.image_io import (
    LUMINANCE,
    array_images,
    read_image,
    resize_batch,
    to_channels,
    to_nchw,
    to_unit_range,
)
from shortcut_psd.data.user import load_user_dataset
from shortcut_psd.errors import DataError


def test_read_image_ranges_and_modes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey8 = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(grey8).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), grey8.astype(np.float32) / 255)
    grey16 = rng.integers(0, 65536, (9, 7), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.tif")
    np.testing.assert_allclose(read_image(tmp_path / "g16.tif"), grey16 / 65535, rtol=1e-6)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "c.png")
    assert read_image(tmp_path / "c.png").shape == (5, 6, 3)
    minmax = read_image(tmp_path / "g.png", intensity="minmax")
    assert minmax.min() == 0 and minmax.max() == 1
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt is not an image file"):
        read_image(tmp_path / "notes.txt")


def test_dicom_through_read_image() -> None:
    from pydicom.data import get_testdata_file

    ct = read_image(get_testdata_file("CT_small.dcm", download=False))
    assert ct.shape == (128, 128) and ct.dtype == np.float32 and 0 <= ct.min() and ct.max() <= 1
    with pytest.raises(DataError, match="10 usable frames"):
        read_image(get_testdata_file("emri_small.dcm", download=False))


def test_array_layouts_and_channels() -> None:
    x = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    nhwc = array_images(x, "x")
    np.testing.assert_array_equal(array_images(np.moveaxis(x, -1, 1), "x"), nhwc)  # NCHW -> NHWC
    assert to_nchw(nhwc).shape == (2, 3, 4, 5) and to_nchw(nhwc[..., 0]).shape == (2, 1, 4, 5)
    np.testing.assert_allclose(to_channels(nhwc[0], 1)[0], nhwc[0] @ LUMINANCE)
    assert to_channels(nhwc[0, ..., 0], 3).shape == (3, 4, 5)
    assert resize_batch(nhwc, 8, 1, "crop").shape == (2, 1, 8, 8)
    with pytest.raises(DataError, match="image 1 contains NaN"):
        array_images(np.array([np.zeros((3, 3)), np.full((3, 3), np.nan)]), "x")
    with pytest.raises(DataError, match="not \\[0, 1\\]"):
        to_unit_range(np.full((2, 2), 2.0), "dtype", "x")
    assert to_unit_range(np.full((2, 2), 7.0), "minmax", "x").max() == 0  # flat image


def test_cli_reads_a_folder_as_the_image_folder_format_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(4):
            shape = (16, 16, 3) if i % 2 else (16, 16)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
                tmp_path / "imgs" / cls / f"{i}.png"
            )
    for mode, channels in (("L", 1), ("RGB", 3)):
        images, labels = load_images(tmp_path / "imgs", mode=mode)
        ds = load_user_dataset(
            {"format": "imagefolder", "path": str(tmp_path / "imgs")}, image_size=16, channels=channels
        )
        order = np.argsort(ds.group)  # the CLI reads files in path order
        np.testing.assert_array_equal(images, ds.images[order])
        np.testing.assert_array_equal(labels, ds.labels[order])
    np.savez(tmp_path / "nan.npz", images=np.full((2, 1, 4, 4), np.nan, np.float32))
    with pytest.raises(DataError, match="contains NaN"):
        load_images(tmp_path / "nan.npz")
