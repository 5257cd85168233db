"""Known answers of the behavioural probes (docs/DEFINITIONS.md, "Probes")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from shortcut_psd import probes
from shortcut_psd.errors import ConfigError

H = W = 32
LOW = (1, 1)  # radius ~0.044 cpp
HIGH = (0, 12)  # radius 0.375 cpp


def _pattern(k):
    return probes.fourier_basis(H, W, np.array([k]))[0]


def _data(n=200, seed=0):
    """Label in both a low- and a high-frequency pattern, plus white noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0.5, 0.1, size=(n, 1, H, W)).astype(np.float32)
    amp = (2 * y - 1)[:, None, None, None] * 0.5
    x += amp * (_pattern(LOW).numpy() + _pattern(HIGH).numpy())[None, None]
    groups = np.arange(n) // 10
    return x, y, groups


class Reader(nn.Module):
    """Logits (0, s) with s = <x, pattern>, optionally after an ideal low-pass of the input."""

    def __init__(self, k, lowpass_cpp=None):
        super().__init__()
        self.register_buffer("pattern", _pattern(k))
        self.lowpass_cpp = lowpass_cpp

    def forward(self, x):
        if self.lowpass_cpp is not None:
            mask = probes.band_masks(H, W, np.array([[0.0, self.lowpass_cpp]]))
            x = probes.filter_images(x, mask)[0]
        s = (x[:, 0] * self.pattern).sum(dim=(1, 2)) * 20
        return torch.stack([torch.zeros_like(s), s], dim=1)


def _score(model):
    return probes.model_scorer(model, lambda t: t)


def _band_of(bands, r):
    return int(np.nonzero((bands[:, 0] <= r) & (r < bands[:, 1]))[0][0])


def test_default_bands_partition_the_plane():
    bands = probes.default_bands(H, W, 8)
    assert bands.shape == (8, 2) and bands[0, 0] == 0 and np.isinf(bands[-1, 1])
    assert np.allclose(bands[1:, 0], bands[:-1, 1])
    masks = probes.band_masks(H, W, bands)
    assert torch.equal(masks.sum(0), torch.ones(H, W // 2 + 1))
    with pytest.raises(ConfigError, match="probes.n_bands"):
        probes.default_bands(H, W, 40)
    with pytest.raises(ConfigError, match="holds no frequency"):
        probes.check_bands([[0.71, 0.8]], H, W)


def test_mask_all_gives_chance_and_keep_all_is_exact():
    x, y, g = _data()
    model = Reader(LOW)
    everything = np.array([[0.0, np.inf]])
    res = probes.band_reliance(_score(model), x, y, everything, groups=g, n_boot=50)
    assert res["auc_clean"] > 0.95
    assert res["auc_keep"][0] == res["auc_clean"]  # exactly
    assert res["auc_remove"][0] == pytest.approx(0.5, abs=1e-9)
    assert res["rep_remove"].shape == (50, 1)
    # a conv net on constant (all-removed) images also ties every score
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    r2 = probes.band_reliance(_score(net), x, y, everything)
    assert r2["auc_remove"][0] == pytest.approx(0.5, abs=0.02)
    assert r2["auc_keep"][0] == r2["auc_clean"]


def test_lowpass_model_relies_on_low_frequencies_only():
    x, y, _ = _data()
    model = Reader(LOW, lowpass_cpp=0.1)
    bands = probes.default_bands(H, W, 8)
    res = probes.band_reliance(_score(model), x, y, bands)
    high = bands[:, 0] >= 0.1
    assert np.allclose(res["reliance"][high], 0, atol=1e-6)
    # only rounding noise of the filter reaches the read-out: chance within noise
    assert np.allclose(res["auc_keep"][high], 0.5, atol=0.1)
    assert res["reliance"][_band_of(bands, np.hypot(1, 1) / 32)] > 0.3
    hm = probes.fourier_heatmap(_score(model), x[:64], y[:64], norm=20.0, step=1)
    r = probes.radius_grid(H, W)
    assert np.nanmax(np.abs(hm["heatmap"][r >= 0.11])) < 1e-6
    assert np.nanmax(hm["heatmap"][r < 0.1]) > 0.1


def test_high_frequency_reader_relies_on_its_band():
    x, y, _ = _data()
    model = Reader(HIGH)
    bands = probes.default_bands(H, W, 8)
    res = probes.band_reliance(_score(model), x, y, bands)
    own = _band_of(bands, 12 / 32)
    assert res["reliance"][own] > 0.4
    others = np.arange(len(bands)) != own
    assert np.allclose(res["reliance"][others], 0, atol=1e-6)
    assert res["auc_keep"][own] > 0.95
    hm = probes.fourier_heatmap(_score(model), x[:64], y[:64], norm=20.0)
    peak = np.unravel_index(np.nanargmax(hm["heatmap"]), hm["heatmap"].shape)
    assert peak == HIGH
    assert hm["metric"] == "auc_drop"


def test_heatmap_half_plane_holds_every_basis():
    for h, w in [(8, 8), (7, 9), (6, 5)]:
        freqs = probes.half_plane(h, w)
        full = {(ky, kx) for ky in range(h) for kx in range(w)}
        covered = set()
        for ky, kx in freqs:
            covered |= {(ky, kx), ((-ky) % h, (-kx) % w)}
        assert covered == full
        assert len(freqs) == len({frozenset({(a, b), ((-a) % h, (-b) % w)}) for a, b in full})
        k = np.array([[1, 2], [(-1) % h, (-2) % w]])
        u = probes.fourier_basis(h, w, k)
        assert torch.allclose(u[0], u[1], atol=1e-6)
        assert torch.allclose(u.flatten(1).norm(dim=1), torch.ones(2))
    half = np.arange(8 * 5, dtype=float).reshape(8, 5)
    full = probes.full_plane(half, 8)
    unshifted = np.fft.ifftshift(full)
    for ky in range(8):
        for kx in range(8):
            assert unshifted[ky, kx] == unshifted[(-ky) % 8, (-kx) % 8]


def test_multiclass_reports_accuracy_and_error_increase():
    x, y, _ = _data(120)
    y3 = y + (np.arange(120) % 3 == 0) * 2 * (y == 0)  # classes 0, 1, 2

    class Three(nn.Module):
        def forward(self, t):
            s = t.mean(dim=(1, 2, 3))
            return torch.stack([s, -s, 0 * s], 1)

    res = probes.band_reliance(_score(Three()), x, y3, probes.default_bands(H, W, 4))
    assert np.isnan(res["auc_clean"]) and 0 <= res["acc_clean"] <= 1
    assert res["acc_keep"].shape == (4,)
    hm = probes.fourier_heatmap(_score(Three()), x[:30], y3[:30], norm=1.0, step=4)
    assert hm["metric"] == "error_increase"


def test_linear_probe_learns_a_separable_target():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=3, in_chans=1)
    x, y, _ = _data(160)
    probe, info = probes.linear_probe(model, lambda t: t, x, y, 2, seed=0, max_images=120)
    assert info["n_train"] == 120 and info["train_accuracy"] > 0.8
    again, _ = probes.linear_probe(model, lambda t: t, x, y, 2, seed=0, max_images=120)
    assert torch.equal(probe.get_classifier().weight, again.get_classifier().weight)
    assert probe.get_classifier().out_features == 2


def test_cli_band_reliance_and_heatmap(tmp_path):
    """The CLI subcommands on a user's checkpoint, with and without a linear probe."""
    models = pytest.importorskip("shortcut_psd.models")
    from shortcut_psd.cli import main

    x, y, _ = _data(60)
    x = np.clip(x, 0, 1)[:, :, :16, :16]
    data = tmp_path / "imgs.npz"
    np.savez(data, images=x, labels=y)
    model = models.create_model("test_resnet", num_classes=2, in_chans=1)
    ckpt = tmp_path / "model.pt"
    models.save_checkpoint(ckpt, model, {"preprocessing": {"in_chans": 1, "mean": [0.5], "std": [0.25]}})
    out = tmp_path / "band.npz"
    base = ["--checkpoint", str(ckpt), "--images", str(data), "--device", "cpu"]
    assert main(["band-reliance", *base, "--out", str(out), "--n-bands", "4", "--bootstrap", "20"]) == 0
    with np.load(out) as z:
        assert z["auc_remove"].shape == (4,) and z["rep_remove"].shape == (20, 4)
    assert (tmp_path / "band.json").exists()
    heat = tmp_path / "heat.npz"
    argv = ["heatmap", *base, "--out", str(heat), "--step", "2", "--plot", str(tmp_path / "h.png")]
    assert main(argv) == 0
    with np.load(heat) as z:
        assert z["heatmap"].shape == (16, 9) and z["full"].shape == (16, 16)
    assert (tmp_path / "h.png").stat().st_size > 1000


def _fake_run(rng, labels, nb=4, n_boot=30):
    m = len(labels)
    clean = rng.uniform(0.8, 0.9, m)
    remove = clean[:, None] - rng.uniform(0, 0.3, (m, nb))
    return {
        "labels": np.asarray(labels),
        "bands": probes.default_bands(H, W, nb),
        "auc_clean": clean,
        "acc_clean": clean,
        "auc_remove": remove,
        "auc_keep": rng.uniform(0.4, 0.9, (m, nb)),
        "acc_remove": remove,
        "acc_keep": rng.uniform(0.4, 0.9, (m, nb)),
        "rep_clean": np.clip(clean[:, None] + rng.normal(0, 0.05, (m, n_boot)), 0, 1),
        "rep_remove": np.clip(remove[:, None, :] + rng.normal(0, 0.3, (m, n_boot, nb)), 0, 1),
        "rep_keep": np.clip(rng.uniform(0.4, 0.9, (m, n_boot, nb)) * 1.3, 0, 1),
        "n_groups": np.asarray(6),
    }


def test_probe_tables_intervals_in_range_and_no_p_for_relations():
    from shortcut_psd import probe_tables as pt

    rng = np.random.default_rng(0)
    labels = ["pretrained", "none/p0", "tag/p1"]
    runs = {("a", "t", s): _fake_run(rng, labels) for s in (0, 1, 2)}
    table = pt.band_reliance_table(runs, ci=0.95)
    assert len(table) == 3 * 4 and (table["n_seeds"] == 3).all()
    assert table[["reliance_lo", "reliance_hi"]].stack().between(-1, 1).all()
    assert table[["auc_keep_lo", "auc_keep_hi"]].stack().between(0, 1).all()
    assert (table["reliance_lo"] <= table["reliance"] + 1e-9).all()
    assert (table["reliance"] <= table["reliance_hi"] + 1e-9).all()
    assert table["resampled"].eq("seeds (3, t 2 df) x groups (6, t 5 df)").all()
    one = pt.band_reliance_table({("a", "t", 0): runs[("a", "t", 0)]})
    assert one["resampled"].eq("groups (6, t 5 df); one seed").all()
    views = {
        ("a", "t", "before"): {
            "model": "pretrained",
            "n_seeds": 3,
            "reliance": [1, 2, 3, 4],
            "gradient_power": [1, 2, 4, 3],
            "heatmap": [4, 3, 2, 1],
        }
    }
    rel = pt.relations_table(views)
    assert rel["p"].isna().all() and rel["note"].str.contains("no p-value").all()
    assert rel.loc[(rel.view_a == "reliance") & (rel.view_b == "heatmap"), "spearman_rho"].item() == -1.0
    for labs, want in (
        (["a/p1", "none/p0", "b/p0"], "none/p0"),
        (["b/p0", "a/p1"], "b/p0"),
        (["a/p1"], None),
    ):
        assert pt.after_label(labs) == want
