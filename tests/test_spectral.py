"""Known answers for the radial spectrum (STUDY.md: white noise flat, sinusoid peak, Parseval, odd = even)."""

from __future__ import annotations

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
    curve_scalars,
    full_plane,
    normalise_curves,
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
    with pytest.raises(ConfigError, match=r"\['hann', 'none'\]"):
        RadialSpectrum(8, 8, window="hamming")
    with pytest.raises(ConfigError, match="power"):
        RadialSpectrum(8, 8, spectrum="log")
    rs = RadialSpectrum(8, 8)
    with pytest.raises(DataError, match=r"\(8, 8\)"):
        rs(torch.zeros(2, 8, 9))
    with pytest.raises(DataError):
        rs(torch.zeros(8, 8))
