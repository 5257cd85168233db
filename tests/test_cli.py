"""The shortcut-psd command: spectrum, artifact-psd, kinds, and gradient-psd on a saved checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from shortcut_psd.artifacts import apply_artifact
from shortcut_psd.cli import load_images, main, parse_params
from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.gradients import artifact_psd, image_psd
from shortcut_psd.spectral import PSDResult


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    images = (0.3 + 0.4 * rng.random((12, 1, 16, 16))).astype(np.float32)
    labels = np.arange(12) % 2
    path = tmp_path / "images.npz"
    np.savez(path, images=images, labels=labels)
    return path, images, labels


def test_spectrum_command(npz, tmp_path):
    path, images, _ = npz
    out = tmp_path / "out" / "spectrum.npz"
    assert (
        main(["spectrum", "--images", str(path), "--out", str(out), "--plot", str(tmp_path / "s.png")]) == 0
    )
    res = PSDResult.load(out)
    np.testing.assert_allclose(res.mean, image_psd(images).mean, rtol=1e-6)
    assert json.loads((tmp_path / "out" / "spectrum.json").read_text())["n"] == 12
    assert (tmp_path / "s.png").stat().st_size > 0


def test_artifact_psd_command_with_params(npz, tmp_path):
    path, images, _ = npz
    out = tmp_path / "psd.npz"
    argv = ["artifact-psd", "--kind", "band_noise", "--param", "f_lo_cpp=0.2", "--param", "f_hi_cpp=0.4"]
    argv += ["--param", "amplitude=0.5", "--seed", "3", "--images", str(path), "--out", str(out)]
    argv += [
        "--window",
        "none",
        "--save-images",
        str(tmp_path / "imgs.npz"),
        "--plot",
        str(tmp_path / "a.png"),
    ]
    assert main(argv) == 0
    res = PSDResult.load(out)
    clean, art = apply_artifact("band_noise", images, seed=3, f_lo_cpp=0.2, f_hi_cpp=0.4, amplitude=0.5)
    np.testing.assert_allclose(res.mean, artifact_psd(clean, art, window="none").mean, rtol=1e-6)
    assert res.options["artifact"] == "band_noise" and res.options["params"]["f_lo_cpp"] == 0.2
    with np.load(tmp_path / "imgs.npz") as z:
        np.testing.assert_array_equal(z["artifacted"], art)


def test_errors_exit_2_with_the_message(npz, tmp_path, capsys):
    path, _, _ = npz
    code = main(["artifact-psd", "--kind", "blur", "--images", str(path), "--out", str(tmp_path / "x.npz")])
    assert code == 2
    assert "unknown artifact 'blur'" in capsys.readouterr().err
    assert main(["spectrum", "--images", str(tmp_path / "missing"), "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()


def test_kinds_command_via_the_console_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "shortcut_psd.cli", "kinds"], capture_output=True, text=True, check=True
    )
    assert "band_noise(f_lo_cpp=0.1" in proc.stdout and "whiten(strength=1.0" in proc.stdout
    assert "nlm_denoise(h=0.05, sigma=0.05" in proc.stdout


def test_image_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(
                tmp_path / "imgs" / cls / f"{i}.png"
            )
    images, labels = load_images(tmp_path / "imgs")
    assert (
        images.shape == (6, 1, 20, 20)
        and images.dtype == np.float32
        and labels.tolist() == [0, 0, 0, 1, 1, 1]
    )
    assert main(["spectrum", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "s.npz")]) == 0
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / "a" / "odd.png")
    with pytest.raises(DataError, match="differ in size"):
        load_images(tmp_path / "imgs")


def test_medmnist_layout_and_labels_file(tmp_path):
    path = tmp_path / "med.npz"
    np.savez(path, test_images=np.zeros((4, 10, 10), np.uint8), test_labels=np.array([[0], [1], [1], [0]]))
    images, labels = load_images(path, split="test")
    assert images.shape == (4, 1, 10, 10) and labels.tolist() == [0, 1, 1, 0]
    (tmp_path / "lab.txt").write_text("1\n1\n0\n0\n")
    assert load_images(path, labels=tmp_path / "lab.txt")[1].tolist() == [1, 1, 0, 0]
    assert load_images(path, limit=2)[0].shape[0] == 2
    (tmp_path / "short.txt").write_text("1\n")
    with pytest.raises(DataError, match="1 labels for 4 images"):
        load_images(path, labels=tmp_path / "short.txt")


def test_parse_params():
    assert parse_params(["a=1", "b=0.5", "c=ideal", "d=true", "e=null", "f=1e4"]) == {
        "a": 1,
        "b": 0.5,
        "c": "ideal",
        "d": True,
        "e": None,
        "f": 1e4,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_params(["novalue"])


def test_gradient_psd_command(npz, tmp_path):
    models = pytest.importorskip("shortcut_psd.models")
    import torch

    path, images, labels = npz
    model = models.create_model("test_resnet", num_classes=2, in_chans=1)  # timm's tiny test net
    prep = {"in_chans": 1, "mean": [0.5], "std": [0.25]}
    ckpt = tmp_path / "model.pt"
    models.save_checkpoint(ckpt, model, {"preprocessing": prep})
    out = tmp_path / "g.npz"
    argv = ["gradient-psd", "--checkpoint", str(ckpt), "--images", str(path), "--out", str(out)]
    argv += ["--device", "cpu", "--batch-size", "5", "--plot", str(tmp_path / "g.png")]
    assert main(argv) == 0
    res = PSDResult.load(out)
    assert res.n == 12 and res.mean.sum() == pytest.approx(1.0) and res.options["kind"] == "gradient"
    # the same as calling the library on the reloaded model
    from shortcut_psd.gradients import gradient_psd

    loaded, meta = models.load_checkpoint(ckpt, "cpu")
    ref = gradient_psd([loaded], images, labels, models.Preprocessing.from_dict(meta["preprocessing"]))
    np.testing.assert_allclose(res.mean, ref.mean, rtol=1e-4)
    # labels are required
    np.savez(tmp_path / "nolab.npz", images=images)
    argv[4] = str(tmp_path / "nolab.npz")
    assert main(argv) == 2
    assert torch.is_grad_enabled()


def test_cli_window_choices_are_the_spectral_windows():
    from shortcut_psd import cli, spectral

    assert tuple(cli.WINDOW_CHOICES) == tuple(spectral.WINDOWS)
