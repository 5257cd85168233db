"""Input gradients (finite differences, eval-mode batching) and the streaming gradient PSD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shortcut_psd.config import load_schema, psd_options
from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.gradients import artifact_psd, gradient_psd, image_psd, input_gradients
from shortcut_psd.spectral import RadialSpectrum


def preprocess(x):
    return (x - 0.5) / 0.25


def small_net(in_chans=1, classes=3, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(in_chans, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.Dropout(0.5),
        nn.Conv2d(4, 4, 3, padding=1, stride=2),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, classes),
    ).to(dtype)
    # give batch norm non-trivial running statistics
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    return net


def images(n=6, c=1, h=12, w=12, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def test_matches_finite_differences_in_double_precision():
    net = small_net(dtype=torch.float64)
    x01 = torch.as_tensor(images(3), dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    g = input_gradients(net, x01, y, preprocess)
    net.eval()

    def loss(xp):
        return F.cross_entropy(net(xp), y, reduction="sum").item()

    xp = preprocess(x01)
    eps = 1e-6
    rng = np.random.default_rng(0)
    for _ in range(12):
        idx = tuple(int(rng.integers(0, s)) for s in xp.shape)
        plus, minus = xp.clone(), xp.clone()
        plus[idx] += eps
        minus[idx] -= eps
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        assert g[idx].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_gradient_is_taken_wrt_the_preprocessed_input():
    net = small_net(dtype=torch.float64).eval()
    x01 = torch.as_tensor(images(2), dtype=torch.float64).requires_grad_(True)
    y = torch.tensor([1, 0])
    F.cross_entropy(net(preprocess(x01)), y, reduction="sum").backward()
    g = input_gradients(net, x01.detach(), y, preprocess)
    # d/dx01 = d/dxp * dxp/dx01 = g / 0.25
    torch.testing.assert_close(x01.grad, g / 0.25)


def test_batched_eval_gradients_equal_per_image_and_leave_the_model_alone():
    net = small_net()
    net.train()
    x01 = torch.as_tensor(images(5))
    y = torch.tensor([0, 1, 2, 0, 1])
    g = input_gradients(net, x01, y, preprocess)
    assert net.training  # mode restored
    assert all(p.grad is None for p in net.parameters())  # only the input gradient was computed
    single = torch.cat([input_gradients(net, x01[i : i + 1], y[i : i + 1], preprocess) for i in range(5)])
    torch.testing.assert_close(g, single, rtol=1e-5, atol=1e-7)


def test_several_models_give_stacked_gradients():
    nets = [small_net(seed=s) for s in range(3)]
    x01, y = torch.as_tensor(images(4)), torch.tensor([0, 1, 2, 0])
    g = input_gradients(nets, x01, y, preprocess)
    assert g.shape == (3, 4, 1, 12, 12)
    torch.testing.assert_close(g[1], input_gradients(nets[1], x01, y, preprocess))


def test_works_under_no_grad():
    net = small_net()
    x01, y = torch.as_tensor(images(2)), torch.tensor([0, 1])
    with torch.no_grad():
        g = input_gradients(net, x01, y, preprocess)
    assert g.abs().sum() > 0


def test_gradient_psd_is_independent_of_batch_size_and_deterministic():
    nets = [small_net(seed=s) for s in range(2)]
    x = images(23, h=16, w=16)
    y = np.arange(23) % 3
    a = gradient_psd(nets, x, y, preprocess, batch_size=5)
    b = gradient_psd(nets, x, y, preprocess, batch_size=64)
    c = gradient_psd(nets, x, y, preprocess, batch_size=5)
    for key in ("mean", "std", "ci_lo", "ci_hi", "spectrum_2d"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-5, atol=1e-9)
        np.testing.assert_array_equal(getattr(a, key), getattr(c, key))
    assert a.n == 23 and a.options["n_models"] == 2 and a.mean.sum() == pytest.approx(1.0)
    assert a.spectrum_2d.shape == (16, 16)


def test_gradient_psd_averages_per_image_curves_over_models():
    nets = [small_net(seed=s) for s in range(2)]
    x, y = images(8, h=16, w=16), np.arange(8) % 3
    both = gradient_psd(nets, x, y, preprocess, normalise="sum")
    one = [gradient_psd([m], x, y, preprocess, normalise="sum") for m in nets]
    np.testing.assert_allclose(both.mean, (one[0].mean + one[1].mean) / 2, rtol=1e-5)


def test_gradient_psd_of_a_sinusoidal_template_model_peaks_at_its_frequency():
    # Logits = <w_c, x> with templates w_c = cos(2 pi k x / N + phase_c): the input gradient is a mix of
    # the templates, so its PSD peaks at k / N exactly.
    n, k = 32, 6
    xx = torch.arange(n, dtype=torch.float32)
    templates = torch.stack([torch.cos(2 * np.pi * k * xx / n + ph).expand(n, n) for ph in (0.0, 1.0)])
    lin = nn.Linear(n * n, 2, bias=False)
    lin.weight.data = templates.reshape(2, -1)
    model = nn.Sequential(nn.Flatten(), lin)
    x = images(10, h=n, w=n)
    res = gradient_psd([model], x, np.arange(10) % 2, preprocess, window="none")
    assert res.freqs[res.mean.argmax()] == pytest.approx(k / n)
    assert res.mean.max() > 0.99


def test_sum_power_channels_and_rgb_preprocessing():
    net = small_net(in_chans=3)

    def grey_to_rgb(x):
        return preprocess(x.expand(-1, 3, -1, -1))

    x, y = images(6, h=16, w=16), np.arange(6) % 3
    r_mean = gradient_psd([net], x, y, grey_to_rgb, channels="mean")
    r_sum = gradient_psd([net], x, y, grey_to_rgb, channels="sum_power", normalise="none")
    assert r_mean.options["channels"] == "mean" and r_sum.options["channels"] == "sum_power"
    # reference: per-channel power summed, radially averaged
    g = input_gradients(net, torch.as_tensor(x), torch.as_tensor(y), grey_to_rgb)
    rs = RadialSpectrum(16, 16)
    ref = sum(rs(g[:, c])[0] for c in range(3)).mean(0).double().numpy()
    np.testing.assert_allclose(r_sum.mean, ref, rtol=1e-5)


def test_amp_bf16_on_cpu_is_close_to_float32():
    net = small_net()
    x, y = images(8, h=16, w=16), np.arange(8) % 3
    full = gradient_psd([net], x, y, preprocess)
    half = gradient_psd([net], x, y, preprocess, amp=True)
    assert np.corrcoef(full.mean, half.mean)[0, 1] > 0.98
    with pytest.raises(ConfigError, match="CUDA"):
        gradient_psd([net], x, y, preprocess, amp="fp16", device="cpu")


def test_image_and_artifact_psd():
    rng = np.random.default_rng(0)
    clean = rng.random((10, 1, 16, 16)).astype(np.float32) * 0.5
    noise = (rng.standard_normal((10, 1, 16, 16)) * 0.05).astype(np.float32)
    art = artifact_psd(clean, clean + noise)
    direct = image_psd(noise, detrend="none", kind="artifact")
    np.testing.assert_allclose(art.mean, direct.mean, rtol=1e-4)
    assert art.options["kind"] == "artifact"
    # detrend="mean" (image_psd's default) removes the brightness from the DC bin
    bright = image_psd(clean + 0.5)
    assert bright.mean[0] < 0.05
    with pytest.raises(DataError, match="differ in shape"):
        artifact_psd(clean, clean[:5])


def test_bad_arguments_raise_named_errors():
    net = small_net()
    x = images(4)
    with pytest.raises(DataError, match="labels"):
        gradient_psd([net], x, np.zeros(3), preprocess)
    with pytest.raises(ConfigError, match="sum_power"):
        gradient_psd([net], x, np.zeros(4), preprocess, channels="max")
    with pytest.raises(ConfigError, match="minmax"):
        gradient_psd([net], x, np.zeros(4), preprocess, normalise="l2")
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        image_psd(x[0])
    with pytest.raises(DataError, match="empty"):
        image_psd(x[:0])


def test_channels_last_changes_results_only_by_rounding():
    net = small_net(in_chans=3, seed=1)
    x, y = images(9, c=3, h=16, w=16), np.arange(9) % 3
    a = gradient_psd([net], x, y, preprocess, batch_size=4)
    b = gradient_psd([net], x, y, preprocess, batch_size=4, channels_last=True)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(b.spectrum_2d, a.spectrum_2d, rtol=1e-4, atol=1e-9)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------------------
# Spread over groups, curves under several windows, Tukey window, channels of the artifact PSD
# ------------------------------------------------------------------------------------------------
def test_gradient_psd_over_groups_has_each_groups_own_curve():
    nets = [small_net(seed=s) for s in range(2)]
    x, y = images(14, h=16, w=16), np.arange(14) % 3
    groups = np.array(["s2", "s1", "s1", "s3", "s2", "s1", "s3", "s3", "s1", "s2", "s2", "s1", "s3", "s1"])
    plain = gradient_psd(nets, x, y, preprocess, batch_size=4)
    res = gradient_psd(nets, x, y, preprocess, batch_size=4, groups=groups)
    assert plain.spread_over == "images" and plain.group_curves is None
    assert res.spread_over == "groups" and res.group_names == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(res.group_n, [6, 4, 4])
    np.testing.assert_allclose(res.mean, plain.mean, rtol=1e-6)  # the mean curve does not change
    for g, curve in zip(res.group_names, res.group_curves, strict=True):
        own = gradient_psd(nets, x[groups == g], y[groups == g], preprocess)
        np.testing.assert_allclose(curve, own.mean, rtol=1e-5)
    np.testing.assert_allclose(res.std, res.group_curves.std(0, ddof=1), rtol=1e-9)
    assert np.all(res.ci_lo >= res.group_curves.min(0) - 1e-12)
    assert np.all(res.ci_hi <= res.group_curves.max(0) + 1e-12)
    # integer labels work too; they are recorded as strings
    ints = gradient_psd(nets, x, y, preprocess, groups=np.searchsorted(["s1", "s2", "s3"], groups))
    assert ints.group_names == ["0", "1", "2"]
    np.testing.assert_allclose(ints.ci_lo, res.ci_lo, rtol=1e-6)
    with pytest.raises(DataError, match="groups"):
        gradient_psd(nets, x, y, preprocess, groups=groups[:5])


@pytest.mark.parametrize("main", ["none", "hann", "tukey"])
def test_also_windows_equal_separate_computations(main):
    nets = [small_net(seed=s) for s in range(2)]
    x, y = images(9, h=16, w=16), np.arange(9) % 3
    kw = {"batch_size": 4, "tukey_alpha": 0.3}
    res = gradient_psd(nets, x, y, preprocess, window=main, also_windows=("hann", "tukey", "none"), **kw)
    assert list(res.window_curves) == ["hann", "tukey", "none"]
    np.testing.assert_array_equal(res.window_curves[main], res.mean)
    for w in ("hann", "tukey", "none"):
        alone = gradient_psd(nets, x, y, preprocess, window=w, **kw)
        np.testing.assert_allclose(res.window_curves[w], alone.mean, rtol=1e-5, atol=1e-9)
        assert alone.window_curves == {}
    assert res.options["tukey_alpha"] == 0.3


def test_also_windows_of_image_and_artifact_psd():
    rng = np.random.default_rng(1)
    clean = rng.random((7, 1, 16, 16)).astype(np.float32)
    art = clean + (rng.standard_normal((7, 1, 16, 16)) * 0.1).astype(np.float32)
    res = artifact_psd(clean, art, window="none", also_windows=("hann",), batch_size=3)
    np.testing.assert_allclose(res.window_curves["hann"], artifact_psd(clean, art).mean, rtol=1e-5)
    np.testing.assert_array_equal(res.window_curves["none"], res.mean)
    img = image_psd(clean, window="hann", also_windows=("tukey",), tukey_alpha=0.7)
    np.testing.assert_allclose(
        img.window_curves["tukey"], image_psd(clean, window="tukey", tukey_alpha=0.7).mean, rtol=1e-5
    )
    with pytest.raises(ConfigError, match="also_windows"):
        image_psd(clean, also_windows=("hamming",))


def test_tukey_window_through_gradient_psd():
    net = small_net()
    x, y = images(6, h=16, w=16), np.arange(6) % 3
    none = gradient_psd([net], x, y, preprocess, window="none")
    hann = gradient_psd([net], x, y, preprocess, window="hann")
    np.testing.assert_array_equal(
        gradient_psd([net], x, y, preprocess, window="tukey", tukey_alpha=0).mean, none.mean
    )
    np.testing.assert_array_equal(
        gradient_psd([net], x, y, preprocess, window="tukey", tukey_alpha=1).mean, hann.mean
    )
    with pytest.raises(ConfigError, match="tukey_alpha"):
        gradient_psd([net], x, y, preprocess, window="tukey", tukey_alpha=2)


def test_artifact_psd_honours_channels_and_groups():
    rng = np.random.default_rng(2)
    clean = rng.random((8, 3, 16, 16)).astype(np.float32)
    # channels with different noise: the channel mean and the summed channel powers differ
    noise = (
        rng.standard_normal((8, 3, 16, 16)).astype(np.float32)
        * np.array([0.02, 0.1, 0.3], np.float32)[:, None, None]
    )
    art = clean + noise
    diff = art - clean
    out = {}
    for how in ("sum_power", "mean"):
        out[how] = artifact_psd(clean, art, channels=how)
        direct = image_psd(diff, detrend="none", kind="artifact", channels=how)
        np.testing.assert_allclose(out[how].mean, direct.mean, rtol=1e-5)
        assert out[how].options["channels"] == how
    assert np.abs(out["sum_power"].mean - out["mean"].mean).max() > 1e-3
    # the workflow's call: artifact_psd(clean, artifacted, **psd_options(config psd section))
    psd = {k: v["default"] for k, v in load_schema()["properties"]["psd"]["properties"].items()}
    assert psd["tukey_alpha"] == 0.5 and psd["window"] == "hann"
    opts = psd_options(dict(psd, channels="sum_power"))
    assert opts["channels"] == "sum_power" and opts["tukey_alpha"] == 0.5
    np.testing.assert_allclose(artifact_psd(clean, art, **opts).mean, out["sum_power"].mean, rtol=1e-6)
    grouped = artifact_psd(clean, art, groups=["a", "a", "b", "b", "c", "c", "d", "d"], **opts)
    assert grouped.spread_over == "groups" and grouped.group_n.tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(grouped.mean, out["sum_power"].mean, rtol=1e-6)


def test_psd_images_returns_the_same_subsample_with_its_groups():
    from shortcut_psd import study
    from shortcut_psd.data import ImageSet

    rng = np.random.default_rng(3)
    n = 60
    split = np.where(np.arange(n) < 40, "test", "train")
    group = np.array([f"g{i // 4}" for i in range(n)])  # 4 images per group, groups within one split
    ds = ImageSet(images(n, h=8, w=8), rng.integers(0, 2, n), split, group, ["a", "b"], name="toy")
    x, y, g = study.psd_images(ds, {"split": "test", "max_images": 10}, seed=1)
    # the same subsample as the images-and-labels version: _subsample of the split
    x0, y0 = study._subsample(*ds.subset("test"), 10, 1)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    idx = [int(np.flatnonzero((ds.images == xi).all(axis=(1, 2, 3)))[0]) for xi in x]
    np.testing.assert_array_equal(g, ds.group[idx])
    assert len(study.psd_images(ds, {"split": "test", "max_images": 0}, seed=1)[2]) == 40
