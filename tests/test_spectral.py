"""Known answers for the radial spectrum: white noise flat, sinusoid peak, Parseval, odd = even.

Definitions: docs/DEFINITIONS.md, "Gradient PSD".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.spectral import (
    PSDAccumulator,
    PSDResult,
    RadialSpectrum,
    alignment,
    cluster_bootstrap_ci,
    curve_scalars,
    full_plane,
    normalise_curves,
    window_1d,
)

SIZES = [(32, 32), (33, 33), (64, 64), (63, 63), (32, 48), (31, 20)]


def reference_profile(img: np.ndarray, *, window: str, spectrum: str, include_corners: bool) -> np.ndarray:
    """Plain per-image numpy reference: full fft2 plane, radius from fftfreq, round(r * N), bin mean."""
    h, w = img.shape
    n = min(h, w)
    if window == "hann":
        wy = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(h) / h)  # periodic Hann
        wx = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(w) / w)
        win = np.outer(wy, wx)
    else:
        win = np.ones((h, w))
    f = np.fft.fft2(img * win)
    p = np.abs(f) ** 2 / (win**2).sum()
    if spectrum == "amplitude":
        p = np.sqrt(p)
    r = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
    k = np.floor(r * n + 0.5).astype(int)
    n_bins = k.max() + 1 if include_corners else n // 2 + 1
    out = np.zeros(n_bins)
    for b in range(n_bins):
        out[b] = p[k == b].mean()
    return out


@pytest.mark.parametrize("window", ["none", "hann"])
@pytest.mark.parametrize("size", [(32, 32), (33, 33), (24, 40)])
def test_white_noise_is_flat(window, size):
    # 2000 images: the DC bin (one coefficient per image, chi-square 1) has relative sd sqrt(2/2000) = 3 %.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, *size, generator=g) * 0.5
    rs = RadialSpectrum(*size, window=window)
    prof, _ = rs(x)
    mean = prof.mean(0).numpy()
    # Scaled so that white noise of variance s^2 reads s^2 in every bin, whatever the size and window.
    np.testing.assert_allclose(mean, 0.25, rtol=0.10)
    acc = rs.accumulator()
    acc.update(normalise_curves(prof, "sum"))
    res = acc.result()
    assert abs(res.scalars["loglog_slope"]) < 0.05


def _sinusoid(h, w, ky, kx, phase=0.3):
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.cos(2 * np.pi * (ky * yy / h + kx * xx / w) + phase)


@pytest.mark.parametrize("window", ["none", "hann"])
@pytest.mark.parametrize("n", [32, 33, 64, 63])
@pytest.mark.parametrize("direction", ["x", "y", "diagonal"])
def test_sinusoid_peaks_in_its_bin(n, direction, window):
    k = n // 5
    ky, kx = {"x": (0, k), "y": (k, 0), "diagonal": (k, k)}[direction]
    f = np.hypot(ky / n, kx / n)
    rs = RadialSpectrum(n, n, window=window)
    prof, _ = rs(torch.as_tensor(_sinusoid(n, n, ky, kx))[None])
    peak = int(prof[0].argmax())
    assert peak == round(f * n)
    assert abs(rs.freqs[peak] - f) <= 0.5 / n
    if window == "none":  # no leakage: the whole power sits in that one bin
        assert prof[0, peak] / prof[0].sum() > 0.999


def test_sinusoid_non_square_and_frequencies():
    h, w = 32, 48
    rs = RadialSpectrum(h, w, window="none")
    assert np.allclose(rs.freqs, np.arange(17) / 32)
    prof, _ = rs(torch.as_tensor(_sinusoid(h, w, 0, 12))[None])  # 12/48 = 0.25 cycles/pixel
    assert rs.freqs[int(prof[0].argmax())] == pytest.approx(0.25)


@pytest.mark.parametrize("size", SIZES)
def test_parseval_unwindowed_power(size):
    x = torch.randn(6, *size, dtype=torch.float64)
    rs = RadialSpectrum(*size, window="none", include_corners=True)
    prof, spec = rs(x)
    energy = (x.double() ** 2).sum((1, 2)).numpy()
    # full plane = half plane with half-plane weights; spectra are |F|^2 / (H W)
    np.testing.assert_allclose((spec * rs.col_weights).sum((1, 2)).numpy(), energy, rtol=1e-4)
    np.testing.assert_allclose(prof.double().numpy() @ rs.counts, energy, rtol=1e-4)
    assert rs.counts.sum() == size[0] * size[1]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("window", ["none", "hann"])
@pytest.mark.parametrize("spectrum", ["power", "amplitude"])
@pytest.mark.parametrize("include_corners", [False, True])
def test_batched_equals_numpy_reference(size, window, spectrum, include_corners):
    rng = np.random.default_rng(1)
    imgs = rng.random((5, *size))
    rs = RadialSpectrum(*size, window=window, spectrum=spectrum, include_corners=include_corners)
    prof, _ = rs(torch.as_tensor(imgs))
    ref = np.stack(
        [
            reference_profile(im, window=window, spectrum=spectrum, include_corners=include_corners)
            for im in imgs
        ]
    )
    np.testing.assert_allclose(prof.numpy(), ref, rtol=2e-4, atol=1e-6)
    assert prof.dtype == torch.float32


def test_half_precision_input_is_computed_in_float32():
    x = torch.randn(4, 32, 32)
    rs = RadialSpectrum(32, 32)
    for dt in (torch.float16, torch.bfloat16):
        p, s = rs(x.to(dt))
        assert p.dtype == torch.float32 and s.dtype == torch.float32
        # identical to promoting the (rounded) input first: no half-precision FFT anywhere
        np.testing.assert_allclose(p.numpy(), rs(x.to(dt).float())[0].numpy(), rtol=1e-6)


@pytest.mark.parametrize("n", [63, 64, 65])
def test_even_and_odd_sizes_agree_on_one_continuous_signal(n):
    # Periodic Gaussian-smoothed white noise: PSD = s^2 |H(f)|^2 with H(f) = exp(-2 pi^2 sigma^2 f^2),
    # a continuous function of f, so every size must give the same curve at its own bin centres.
    sigma = 1.5
    rng = np.random.default_rng(2)
    x = ndimage.gaussian_filter(
        rng.standard_normal((400, n, n)), sigma=(0, sigma, sigma), mode="wrap", truncate=6
    )
    rs = RadialSpectrum(n, n, window="none")
    prof = rs(torch.as_tensor(x))[0].mean(0).double().numpy()
    expected = np.exp(-4 * np.pi**2 * sigma**2 * rs.freqs**2)
    keep = expected > 1e-3
    np.testing.assert_allclose(prof[keep], expected[keep], rtol=0.1)


def test_full_plane_matches_fft2_for_even_and_odd_widths():
    for h, w in [(6, 8), (7, 9), (5, 4)]:
        x = np.random.default_rng(3).random((h, w))
        rs = RadialSpectrum(h, w, window="none")
        _, half = rs(torch.as_tensor(x)[None])
        full = rs.full_plane(half[0].numpy())
        ref = np.fft.fftshift(np.abs(np.fft.fft2(x)) ** 2 / (h * w))
        np.testing.assert_allclose(full, ref, rtol=1e-4, atol=1e-6)
    with pytest.raises(DataError):
        full_plane(np.zeros((4, 3)), 8)


def test_normalise_curves_numpy_and_torch():
    c = np.array([[1.0, 3.0, 4.0], [0.0, 0.0, 0.0]])
    s = normalise_curves(c, "sum")
    np.testing.assert_allclose(s[0], [0.125, 0.375, 0.5])
    assert np.all(s[1] == 0)  # an all-zero curve stays zero, no NaN
    np.testing.assert_allclose(normalise_curves(c, "minmax")[0], [0, 2 / 3, 1])
    assert normalise_curves(c, "none") is c
    t = normalise_curves(torch.tensor(c, dtype=torch.float32), "sum")
    np.testing.assert_allclose(t.numpy(), s, rtol=1e-6)
    np.testing.assert_allclose(normalise_curves(torch.tensor(c), "minmax").numpy()[0], [0, 2 / 3, 1])
    with pytest.raises(ConfigError, match="sum"):
        normalise_curves(c, "l2")


def test_curve_scalars_known_answers():
    f = np.arange(17) / 32
    flat = np.ones_like(f)
    sc = curve_scalars(flat, f, bands=(0.1, 0.25))
    assert sc["centroid_cpp"] == pytest.approx(f.mean())
    assert sc["frac_low"] == pytest.approx(4 / 17)  # centres 0, 1/32, 2/32, 3/32 are below 0.1
    assert sc["frac_mid"] == pytest.approx(4 / 17)  # 4/32 .. 7/32
    assert sc["frac_high"] == pytest.approx(9 / 17)  # 8/32 .. 16/32
    assert sc["loglog_slope"] == pytest.approx(0.0, abs=1e-12)
    power_law = np.where(f > 0, f, 1.0) ** -2.0
    assert curve_scalars(power_law, f)["loglog_slope"] == pytest.approx(-2.0)
    assert np.isnan(curve_scalars(np.zeros_like(f), f)["centroid_cpp"])
    with pytest.raises(ConfigError):
        curve_scalars(flat, f, bands=(0.3, 0.1))


def test_accumulator_streams_exact_statistics():
    rng = np.random.default_rng(4)
    curves = rng.random((103, 9))
    freqs = np.arange(9) / 16
    acc = PSDAccumulator(freqs, bands=(0.1, 0.25))
    for s in range(0, 103, 10):
        acc.update(torch.as_tensor(curves[s : s + 10]))
    r = acc.result()
    assert r.n == 103
    np.testing.assert_allclose(r.mean, curves.mean(0), rtol=1e-12)
    np.testing.assert_allclose(r.std, curves.std(0, ddof=1), rtol=1e-9)
    half = 1.959963984540054 * curves.std(0, ddof=1) / np.sqrt(103)
    np.testing.assert_allclose(r.ci_hi - r.mean, half, rtol=1e-9)
    np.testing.assert_allclose(r.mean - r.ci_lo, half, rtol=1e-9)
    assert r.scalars == curve_scalars(r.mean, freqs, (0.1, 0.25))
    with pytest.raises(DataError):
        PSDAccumulator(freqs).result()


def _result(seed: int, **opts) -> PSDResult:
    rs = RadialSpectrum(16, 16)
    acc = rs.accumulator(options={"normalise": "sum", "channels": "mean", **opts})
    p, s = rs(torch.randn(20, 16, 16, generator=torch.Generator().manual_seed(seed)))
    acc.update(normalise_curves(p, "sum"), s)
    return acc.result()


def test_result_save_load_roundtrip(tmp_path):
    r = _result(0)
    assert r.spectrum_2d.shape == (16, 16)
    r.save(tmp_path / "psd.npz")
    assert (tmp_path / "psd.json").exists()
    back = PSDResult.load(tmp_path / "psd.npz")
    for key in ("freqs", "mean", "std", "ci_lo", "ci_hi", "spectrum_2d"):
        np.testing.assert_array_equal(getattr(back, key), getattr(r, key))
    assert back.n == r.n and back.scalars == r.scalars and back.options == r.options
    js = PSDResult.load(tmp_path / "psd.json")
    np.testing.assert_allclose(js.mean, r.mean)
    with pytest.raises(DataError, match="does not exist"):
        PSDResult.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="damaged"):
        PSDResult.load(tmp_path / "bad.npz")


def test_combine_is_mean_of_means_with_member_spread():
    rs = [_result(s) for s in range(3)]
    c = PSDResult.combine(rs)
    means = np.stack([r.mean for r in rs])
    np.testing.assert_allclose(c.mean, means.mean(0))
    np.testing.assert_allclose(c.std, means.std(0, ddof=1))
    assert c.n == 60 and c.n_members == 3 and c.spread_over == "members"
    assert np.all(c.ci_lo <= c.mean) and np.all(c.ci_hi >= c.mean)
    assert PSDResult.combine(rs[:1]) is rs[0]
    with pytest.raises(DataError, match="window"):
        PSDResult.combine([rs[0], _result(1, window="none")])


def test_alignment():
    p = np.array([1.0, 2.0, 3.0])
    assert alignment(p, 10 * p) == pytest.approx({"cosine": 1.0, "overlap": 1.0})
    assert alignment([1, 0, 0], [0, 0, 5]) == pytest.approx({"cosine": 0.0, "overlap": 0.0})
    a = alignment([1, 1, 0], [0, 1, 1])
    assert a["overlap"] == pytest.approx(0.5) and a["cosine"] == pytest.approx(0.5)
    r = _result(0)
    assert alignment(r, r)["cosine"] == pytest.approx(1.0)
    with pytest.raises(DataError):
        alignment([1, 2], [1, 2, 3])


def test_bad_inputs_name_the_problem():
    with pytest.raises(ConfigError, match=r"\['hann', 'tukey', 'none'\]"):
        RadialSpectrum(8, 8, window="hamming")
    with pytest.raises(ConfigError, match="power"):
        RadialSpectrum(8, 8, spectrum="log")
    rs = RadialSpectrum(8, 8)
    with pytest.raises(DataError, match=r"\(8, 8\)"):
        rs(torch.zeros(2, 8, 9))
    with pytest.raises(DataError):
        rs(torch.zeros(8, 8))


# ------------------------------------------------------------------------------------------------
# Tukey window
# ------------------------------------------------------------------------------------------------
def _tukey_reference(n: int, alpha: float) -> np.ndarray:
    """Periodic Tukey window written out: the symmetric window of length n + 1 without its last point,
    cosine tapers of alpha * n / 2 samples at each end, 1 in between."""
    k = np.arange(n, dtype=np.float64)
    w = np.ones(n)
    taper = alpha * n / 2
    lo, hi = k < taper, k > n - taper
    w[lo] = 0.5 * (1 - np.cos(np.pi * k[lo] / taper))
    w[hi] = 0.5 * (1 - np.cos(np.pi * (n - k[hi]) / taper))
    return w


@pytest.mark.parametrize("n", [16, 31, 32, 64])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.8])
def test_tukey_window_is_the_periodic_tapered_cosine(n, alpha):
    w = window_1d("tukey", n, tukey_alpha=alpha)
    np.testing.assert_allclose(w, _tukey_reference(n, alpha), atol=1e-12)
    assert w[0] == 0 and w.max() == 1
    np.testing.assert_allclose(w[1:], w[1:][::-1], atol=1e-12)  # periodic: symmetric about n / 2
    rs = RadialSpectrum(n, n + 3, window="tukey", tukey_alpha=alpha)
    np.testing.assert_allclose(rs.window_2d, np.outer(w, window_1d("tukey", n + 3, tukey_alpha=alpha)))
    # the window the spectrum actually multiplies the maps with
    np.testing.assert_allclose(rs._window.numpy(), rs.window_2d, rtol=1e-6)
    assert rs.options["window"] == "tukey" and rs.options["tukey_alpha"] == alpha


@pytest.mark.parametrize("size", [(32, 32), (33, 33), (24, 40), (31, 20)])
@pytest.mark.parametrize("spectrum", ["power", "amplitude"])
def test_tukey_alpha_0_is_no_window_and_alpha_1_is_hann(size, spectrum):
    x = torch.randn(5, *size, generator=torch.Generator().manual_seed(7))

    def curve(window, **kw):
        return RadialSpectrum(*size, window=window, spectrum=spectrum, **kw)(x)[0].numpy()

    np.testing.assert_array_equal(curve("tukey", tukey_alpha=0.0), curve("none"))
    np.testing.assert_array_equal(curve("tukey", tukey_alpha=1.0), curve("hann"))
    mid = curve("tukey", tukey_alpha=0.5)
    assert not np.array_equal(mid, curve("none")) and not np.array_equal(mid, curve("hann"))


def test_tukey_white_noise_reads_its_variance():
    x = torch.randn(2000, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    prof, _ = RadialSpectrum(32, 32, window="tukey", tukey_alpha=0.5)(x)
    np.testing.assert_allclose(prof.mean(0).numpy(), 0.25, rtol=0.10)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_bad_tukey_alpha_is_refused_naming_it(bad):
    with pytest.raises(ConfigError, match="tukey_alpha"):
        RadialSpectrum(8, 8, window="tukey", tukey_alpha=bad)
    with pytest.raises(ConfigError, match="tukey_alpha"):
        window_1d("tukey", 8, tukey_alpha=bad)


# ------------------------------------------------------------------------------------------------
# Spread over groups (cluster bootstrap) and curves under several windows
# ------------------------------------------------------------------------------------------------
def _grouped(curves, groups, *, batch=7, **kw):
    names = sorted(set(groups))
    gi = np.searchsorted(names, groups)
    acc = PSDAccumulator(np.arange(curves.shape[1]) / 16, group_names=names, **kw)
    for s in range(0, len(curves), batch):
        acc.update(torch.as_tensor(curves[s : s + batch]), group_index=gi[s : s + batch])
    return acc.result()


def test_group_spread_known_answers():
    rng = np.random.default_rng(5)
    groups = np.array(["p3", "p1", "p2", "p1", "p3", "p3", "p2", "p1", "p1", "p4"] * 3)
    curves = rng.random((len(groups), 9)) + (np.searchsorted(sorted(set(groups)), groups) / 2)[:, None]
    r = _grouped(curves, groups)
    assert r.spread_over == "groups" and r.n == 30
    assert r.group_names == ["p1", "p2", "p3", "p4"]
    np.testing.assert_array_equal(r.group_n, [12, 6, 9, 3])
    means = np.stack([curves[groups == g].mean(0) for g in r.group_names])
    np.testing.assert_allclose(r.group_curves, means, rtol=1e-12)
    np.testing.assert_allclose(r.mean, curves.mean(0), rtol=1e-12)  # the mean is still over images
    np.testing.assert_allclose(r.std, means.std(0, ddof=1), rtol=1e-9)
    # every replicate is a weighted average of group means: the CI stays within their range
    assert np.all(r.ci_lo >= means.min(0) - 1e-12) and np.all(r.ci_hi <= means.max(0) + 1e-12)
    assert np.all(r.ci_lo < r.ci_hi)
    assert r.options["ci"]["n_boot"] == 2000 and r.options["ci"]["seed"] == 0
    # deterministic for a seed, independent of batching and image order
    perm = rng.permutation(len(groups))
    again = _grouped(curves[perm], groups[perm], batch=4)
    np.testing.assert_allclose(again.ci_lo, r.ci_lo, rtol=1e-12)
    np.testing.assert_allclose(again.group_curves, r.group_curves, rtol=1e-12)


def test_cluster_bootstrap_matches_the_normal_interval_over_many_groups():
    # 400 groups of 3 images each: the bootstrap CI of the mean approaches mean +- 1.96 sd(group means)/sqrt(G)
    rng = np.random.default_rng(6)
    n_groups, per = 400, 3
    group_level = rng.normal(1.0, 0.2, (n_groups, 1, 5))
    curves = (group_level + rng.normal(0, 0.05, (n_groups, per, 5))).reshape(-1, 5)
    groups = np.repeat([f"g{i:03d}" for i in range(n_groups)], per)
    r = _grouped(curves, groups, batch=64)
    half = 1.959963984540054 * r.std / np.sqrt(n_groups)
    np.testing.assert_allclose(r.ci_hi - r.ci_lo, 2 * half, rtol=0.12)
    np.testing.assert_allclose((r.ci_hi + r.ci_lo) / 2, r.mean, atol=0.2 * half.max())
    # treating the 1200 overlapping images as independent would make the interval too narrow
    flat = _accumulate(curves)
    assert np.all(flat.ci_hi - flat.ci_lo < 0.75 * (r.ci_hi - r.ci_lo))
    # the seed is the only source of randomness: another one moves the bounds a little
    other = _grouped(curves, groups, batch=64, ci_seed=1)
    assert not np.array_equal(other.ci_lo, r.ci_lo)
    np.testing.assert_allclose(other.ci_lo, r.ci_lo, atol=0.1 * half.max())


def _accumulate(curves):
    acc = PSDAccumulator(np.arange(curves.shape[1]) / 16)
    acc.update(torch.as_tensor(curves))
    return acc.result()


def test_group_ci_of_a_skewed_power_curve_stays_non_negative():
    # Few groups, one with a large power: the normal interval goes below zero, the bootstrap cannot.
    curves = np.array([[0.0, 1e-4], [0.0, 2e-4], [0.0, 1e-4], [0.0, 1e-3], [1.0, 1.0]])
    groups = np.array(["a", "b", "c", "d", "e"])
    flat = _accumulate(curves)
    assert flat.ci_lo.min() < 0
    r = _grouped(curves, groups)
    assert r.ci_lo.min() >= 0 and np.all(r.ci_hi <= 1.0)


def test_one_group_gives_nan_spread_and_cluster_bootstrap_checks():
    curves = np.random.default_rng(0).random((6, 4))
    r = _grouped(curves, np.array(["slab"] * 6))
    assert r.group_names == ["slab"] and r.group_n.tolist() == [6]
    np.testing.assert_allclose(r.group_curves[0], curves.mean(0))
    assert np.all(np.isnan(r.ci_lo)) and np.all(np.isnan(r.ci_hi)) and np.all(np.isnan(r.std))
    lo, hi = cluster_bootstrap_ci(curves[:1], [1])
    assert np.all(np.isnan(lo)) and np.all(np.isnan(hi))
    with pytest.raises(DataError):
        cluster_bootstrap_ci(curves, [1, 2])


def test_group_index_is_required_and_checked():
    acc = PSDAccumulator(np.arange(4) / 8, group_names=["a", "b"])
    with pytest.raises(DataError, match="group_index"):
        acc.update(torch.ones(3, 4))
    with pytest.raises(DataError, match="group_index"):
        acc.update(torch.ones(3, 4), group_index=[0, 1, 2])
    with pytest.raises(DataError, match="group_index"):
        acc.update(torch.ones(3, 4), group_index=[0, 1])
    with pytest.raises(DataError, match="group_names"):
        PSDAccumulator(np.arange(4) / 8).update(torch.ones(2, 4), group_index=[0, 0])
    # a group that received no image is left out
    acc.update(torch.ones(2, 4), group_index=[1, 1])
    r = acc.result()
    assert r.group_names == ["b"] and r.group_n.tolist() == [2]


def test_window_curves_in_the_accumulator():
    rs = RadialSpectrum(16, 16, window="none")
    others = {w: rs.with_window(w) for w in ("hann", "tukey")}
    acc = rs.accumulator(extra_windows=("tukey", "hann", "none", "hann"))
    assert acc.extra_windows == ("tukey", "hann")  # deduplicated, main window dropped
    x = torch.randn(10, 16, 16, generator=torch.Generator().manual_seed(3))
    acc.update(
        normalise_curves(rs(x)[0], "sum"),
        window_curves={w: normalise_curves(o(x)[0], "sum") for w, o in others.items()},
    )
    r = acc.result()
    assert list(r.window_curves) == ["hann", "tukey", "none"]
    np.testing.assert_array_equal(r.window_curves["none"], r.mean)
    sep = RadialSpectrum(16, 16, window="hann")
    np.testing.assert_allclose(
        r.window_curves["hann"], normalise_curves(sep(x)[0], "sum").double().mean(0), rtol=1e-6
    )
    with pytest.raises(DataError, match="window_curves"):
        acc.update(rs(x)[0])
    with pytest.raises(ConfigError, match="also_windows"):
        rs.accumulator(extra_windows=("hamming",))


def _full_result() -> PSDResult:
    rs = RadialSpectrum(16, 16, window="hann")
    acc = rs.accumulator(
        options={"normalise": "sum", "channels": "mean"},
        group_names=["a", "b", "c"],
        extra_windows=("tukey", "none"),
    )
    x = torch.randn(12, 16, 16, generator=torch.Generator().manual_seed(9))
    acc.update(
        normalise_curves(rs(x)[0], "sum"),
        rs(x)[1],
        group_index=np.arange(12) % 3,
        window_curves={w: normalise_curves(rs.with_window(w)(x)[0], "sum") for w in ("tukey", "none")},
    )
    return acc.result()


def test_groups_and_window_curves_save_and_load(tmp_path):
    r = _full_result()
    r.save(tmp_path / "psd.npz")
    js = json.loads((tmp_path / "psd.json").read_text())
    assert js["spread_over"] == "groups"
    assert js["groups"]["names"] == ["a", "b", "c"] and js["groups"]["n"] == [4, 4, 4]
    assert np.asarray(js["groups"]["curves"]).shape == (3, 9)
    assert list(js["window_curves"]) == ["hann", "tukey", "none"] and len(js["window_curves"]["tukey"]) == 9
    assert js["options"]["tukey_alpha"] == 0.5
    for back in (PSDResult.load(tmp_path / "psd.npz"), PSDResult.load(tmp_path / "psd.json")):
        assert back.spread_over == "groups" and back.group_names == r.group_names
        np.testing.assert_array_equal(back.group_n, r.group_n)
        np.testing.assert_allclose(back.group_curves, r.group_curves, rtol=1e-12)
        np.testing.assert_allclose(back.ci_lo, r.ci_lo, rtol=1e-12)
        assert list(back.window_curves) == list(r.window_curves)
        for w, c in r.window_curves.items():
            np.testing.assert_allclose(back.window_curves[w], c, rtol=1e-12)
    # a result without groups or extra windows writes neither key, and files without them still load
    plain = _result(0)
    plain.save(tmp_path / "old.npz")
    old = json.loads((tmp_path / "old.json").read_text())
    assert "groups" not in old and "window_curves" not in old
    with np.load(tmp_path / "old.npz") as z:
        assert "group_curves" not in z and "window_curves" not in z
    for back in (PSDResult.load(tmp_path / "old.npz"), PSDResult.load(tmp_path / "old.json")):
        assert back.group_curves is None and back.window_curves == {} and back.spread_over == "images"


def test_one_group_json_has_null_ci_and_loads_as_nan(tmp_path):
    rs = RadialSpectrum(8, 8)
    acc = rs.accumulator(group_names=["only"])
    acc.update(rs(torch.randn(3, 8, 8))[0], group_index=[0, 0, 0])
    r = acc.result()
    r.save(tmp_path / "psd.npz")
    js = json.loads((tmp_path / "psd.json").read_text())
    assert all(v is None for v in js["curve"]["ci_lo"])
    assert np.all(np.isnan(PSDResult.load(tmp_path / "psd.json").ci_hi))


def test_combine_averages_window_curves_and_checks_tukey_alpha():
    a, b = _full_result(), _full_result()
    b.window_curves = {k: v * 0 for k, v in b.window_curves.items()}
    c = PSDResult.combine([a, b])
    assert c.spread_over == "members" and c.group_curves is None
    np.testing.assert_allclose(c.window_curves["tukey"], a.window_curves["tukey"] / 2)
    b.options = dict(b.options, tukey_alpha=0.25)
    with pytest.raises(DataError, match="tukey_alpha"):
        PSDResult.combine([a, b])
