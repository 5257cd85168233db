"""Artifacts: determinism, clean/artifacted contract, and each one's documented spectral signature."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import camera

from shortcut_psd.artifacts import (
    ARTIFACTS,
    GLYPHS,
    apply_artifact,
    artifact_defaults,
    artifact_kinds,
    check_artifact_params,
    describe_artifact,
    immerkaer_sigma,
    tag_mask,
)
from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.gradients import artifact_psd, image_psd
from shortcut_psd.spectral import RadialSpectrum

KINDS = ["band_noise", "lowpass", "nlm_denoise", "photon_noise", "tag"]
FAST: dict[str, dict] = {}  # per-kind parameters that make a test run faster (none needed now)


def crops(n=16, size=64, seed=0, lo=0.2, hi=0.8):
    """Crops of skimage's camera photo scaled to [lo, hi] (away from the clipping limits)."""
    cam = camera().astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(0, 512 - size, (2, n))
    c = np.stack([cam[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])
    return (lo + (hi - lo) * c)[:, None].astype(np.float32)


def band_share(result, lo, hi):
    """Share of the mean curve in bins whose centre lies in [lo, hi]."""
    m, f = result.mean, result.freqs
    return m[(f >= lo) & (f <= hi)].sum() / m.sum()


def test_registry():
    assert artifact_kinds() == KINDS and sorted(ARTIFACTS) == KINDS
    assert artifact_defaults("band_noise") == {
        "f_lo_cpp": 0.1,
        "f_hi_cpp": 0.2,
        "amplitude": 0.25,
        "filter": "ideal",
        "order": 4.0,
    }
    for kind in KINDS:
        assert "Spectral signature" in describe_artifact(kind)
        assert all(f"\n  {name} (" in describe_artifact(kind) for name in artifact_defaults(kind))
        assert check_artifact_params(kind, {}) == artifact_defaults(kind)


def test_unknown_kinds_params_and_values_raise_config_errors():
    x = crops(2, 16)
    with pytest.raises(
        ConfigError, match=r"unknown artifact 'blur'; choose one of \['band_noise', 'lowpass'"
    ):
        apply_artifact("blur", x, seed=0)
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['dose'\]; allowed: \['baseline_dose'"):
        apply_artifact("photon_noise", x, seed=0, dose=1)
    bad = [
        ("photon_noise", {"dose_fraction": 0}),
        ("photon_noise", {"domain": "kspace"}),
        ("band_noise", {"f_lo_cpp": 0.3, "f_hi_cpp": 0.2}),
        ("tag", {"position": "middle"}),
        ("tag", {"glyph": "Q"}),
        ("nlm_denoise", {"h": -0.1}),
        ("nlm_denoise", {"h": 1.5}),
        ("nlm_denoise", {"sigma": -0.01}),
        ("nlm_denoise", {"fast_mode": "yes"}),
        ("nlm_denoise", {"patch_size": 0}),
        ("lowpass", {"cutoff_cpp": 0}),
    ]
    for kind, params in bad:
        with pytest.raises(ConfigError):
            check_artifact_params(kind, params)
    with pytest.raises(ConfigError, match=r"\['center'|'top-left'"):
        check_artifact_params("tag", {"position": "middle"})
    with pytest.raises(ConfigError, match=r"^nlm_denoise: h must be a number >= 0 and <= 1; got 1.5$"):
        check_artifact_params("nlm_denoise", {"h": 1.5})


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_float32_clipped(kind):
    x = crops(3, 32)
    c1, a1 = apply_artifact(kind, x, seed=1, **FAST.get(kind, {}))
    c2, a2 = apply_artifact(kind, x, seed=1, **FAST.get(kind, {}))
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(a1, a2)
    for arr in (c1, a1):
        assert arr.dtype == np.float32 and arr.shape == x.shape and arr.min() >= 0 and arr.max() <= 1
    assert not np.array_equal(c1, a1)
    if kind != "photon_noise":  # clean is the unchanged images for every other artifact
        np.testing.assert_array_equal(c1, x)
    if kind in ("photon_noise", "band_noise"):  # random: another seed gives another realisation
        _, a3 = apply_artifact(kind, x, seed=2)
        assert not np.array_equal(a1, a3)


def test_photon_noise_levels_and_white_spectrum():
    x = np.full((200, 1, 32, 32), 0.5, dtype=np.float32)
    clean, art = apply_artifact("photon_noise", x, seed=0, baseline_dose=1e4, dose_fraction=0.25)
    # Poisson: variance x / dose; binomial thinning shares the clean photons
    assert (clean - x).var() == pytest.approx(0.5 / 1e4, rel=0.03)
    assert (art - x).var() == pytest.approx(0.5 / 2.5e3, rel=0.03)
    assert (art - clean).var() == pytest.approx(0.5 / 2.5e3 - 0.5 / 1e4, rel=0.03)
    psd = artifact_psd(clean, art)
    flat = psd.mean[1:] / psd.mean[1:].mean()  # white: flat within 10 % (bin 0 holds 1 coefficient)
    np.testing.assert_allclose(flat, 1.0, atol=0.1)
    # on real images too
    img = crops(16, 32)
    psd = artifact_psd(*apply_artifact("photon_noise", img, seed=0))
    assert abs(psd.scalars["loglog_slope"]) < 0.1


def test_photon_noise_sinogram_has_ct_texture():
    x = crops(12, 32)
    clean, art = apply_artifact("photon_noise", x, seed=0, domain="sinogram")
    assert 0 < (clean - x).std() < (art - x).std()
    psd = artifact_psd(clean, art)
    curve = psd.mean
    # ramp-filtered noise: power rises from the low band to the high band
    assert psd.scalars["frac_high"] > 2 * psd.scalars["frac_low"]
    assert (
        curve[(psd.freqs > 0.25) & (psd.freqs < 0.45)].mean()
        > 2 * curve[(psd.freqs > 0) & (psd.freqs < 0.1)].mean()
    )
    # non-square images are padded to a square and cropped back
    c, a = apply_artifact("photon_noise", crops(2, 32)[..., :24], seed=0, domain="sinogram", n_angles=16)
    assert c.shape == (2, 1, 32, 24)


def test_nlm_denoise_removes_high_frequencies():
    x = crops(8, 48)
    assert artifact_defaults("nlm_denoise") == {
        "h": 0.05,
        "sigma": 0.05,
        "patch_size": 5,
        "patch_distance": 6,
        "fast_mode": True,
    }
    clean, art = apply_artifact("nlm_denoise", x, seed=0)
    before = image_psd(clean, normalise="none")
    after = image_psd(art, normalise="none")
    high = before.freqs >= 0.25
    assert after.mean[high].sum() < 0.7 * before.mean[high].sum()
    diff = artifact_psd(clean, art)
    assert diff.scalars["centroid_cpp"] > 3 * before.scalars["centroid_cpp"]


def _high_power(images):
    psd = image_psd(images, normalise="none")
    return psd.mean[psd.freqs >= 0.25].sum()


def test_nlm_denoise_strength_is_absolute_h():
    x = crops(8, 48)
    # h = 0 (and sigma = 0: no noise discounted from patch distances) leaves the images as they are
    _, same = apply_artifact("nlm_denoise", x, seed=0, h=0.0, sigma=0.0)
    np.testing.assert_allclose(same, x, atol=1e-5)
    # the larger h, the more high-frequency power is removed (sigma fixed at its default)
    outs = [apply_artifact("nlm_denoise", x, seed=0, h=h)[1] for h in (0.0, 0.05, 0.2)]
    power = [_high_power(a) for a in outs]
    assert power[0] > power[1] > power[2], power
    assert power[2] < 0.8 * power[1]
    assert [np.abs(a - x).mean() for a in outs] == sorted(np.abs(a - x).mean() for a in outs)
    # absolute: h and sigma go to skimage's filter as given, not scaled by an estimated noise level
    from skimage.restoration import denoise_nl_means

    art = apply_artifact("nlm_denoise", x[:2], seed=0, h=0.1, sigma=0.02)[1]
    for img, out in zip(x[:2, 0], art[:, 0], strict=True):
        ref = denoise_nl_means(img.astype(np.float64), h=0.1, sigma=0.02, patch_size=5, patch_distance=6)
        np.testing.assert_allclose(out, np.clip(ref, 0, 1), atol=1e-6)


@pytest.mark.parametrize("old", ["strength", "min_sigma", "sigma_estimator"])
def test_nlm_denoise_old_parameters_are_refused_naming_the_key(old):
    value = {"strength": 1.0, "min_sigma": 0.05, "sigma_estimator": "wavelet"}[old]
    with pytest.raises(ConfigError, match=rf"nlm_denoise: parameter\(s\) \['{old}'\] were removed.*give"):
        apply_artifact("nlm_denoise", crops(1, 16), seed=0, **{old: value})
    with pytest.raises(ConfigError, match=old):
        check_artifact_params("nlm_denoise", {old: value, "h": 0.05})
    assert "absolute" in describe_artifact("nlm_denoise")


def test_immerkaer_sigma_estimates_white_noise():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 128
    smooth = 0.3 + 0.3 * xx + 0.2 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.4) ** 2) / 0.05)
    for sigma in (0.02, 0.05, 0.1):
        est = immerkaer_sigma(smooth + sigma * rng.standard_normal(smooth.shape))
        assert est == pytest.approx(sigma, rel=0.15)
    rgb = np.stack([smooth + 0.05 * rng.standard_normal(smooth.shape) for _ in range(3)], -1)
    assert immerkaer_sigma(rgb) == pytest.approx(0.05, rel=0.15)


@pytest.mark.parametrize("filter", ["ideal", "butterworth"])
def test_lowpass_difference_lies_above_the_cutoff(filter):
    x = crops(16, 64)
    cut = 0.15
    clean, art = apply_artifact("lowpass", x, seed=0, cutoff_cpp=cut, filter=filter)
    exact = band_share(artifact_psd(clean, art, window="none"), cut, 1.0)
    hann = band_share(artifact_psd(clean, art), cut, 1.0)  # the window leaks about a bin downwards
    if filter == "ideal":
        assert exact > 0.995 and hann > 0.9
    else:  # Butterworth rolls in below the cutoff as (f / cutoff)**(4 order)
        assert exact > 0.75 and hann > 0.7


@pytest.mark.parametrize("size", [64, 33])
def test_band_noise_lives_in_its_annulus_with_the_requested_level(size):
    x = crops(16, size)
    lo, hi = 0.2, 0.35
    clean, art = apply_artifact("band_noise", x, seed=0, f_lo_cpp=lo, f_hi_cpp=hi, amplitude=0.3)
    diff = art - clean
    np.testing.assert_allclose(diff.std(axis=(1, 2, 3)), 0.3 * x.std(axis=(1, 2, 3)), rtol=1e-3)
    exact = artifact_psd(clean, art, window="none")
    assert band_share(exact, lo - 0.5 / size, hi + 0.5 / size) > 0.999
    hann = artifact_psd(clean, art)  # the window's main lobe spreads it by about one bin
    assert band_share(hann, lo - 1.5 / size, hi + 1.5 / size) > 0.98
    with pytest.raises(DataError, match="widen the band"):
        apply_artifact("band_noise", crops(1, 8), seed=0, f_lo_cpp=0.13, f_hi_cpp=0.17)


def test_tag_draws_the_glyph_where_asked_and_is_broadband():
    x = crops(16, 32)
    clean, art = apply_artifact("tag", x, seed=0, size=7, position="top-left", margin=2)
    changed = np.argwhere((art != clean).any(axis=(0, 1)))
    assert changed.min(0).tolist() == [2, 2] and changed.max(0).tolist() <= [8, 6]
    np.testing.assert_array_equal(
        art[:, 0][:, tag_mask(32, 32, size=7, position="top-left", margin=2, glyph="R")], 1.0
    )
    for pos, corner in [("top-right", (2, 29)), ("bottom-left", (29, 2)), ("bottom-right", (29, 29))]:
        m = tag_mask(32, 32, size=7, position=pos, margin=2, glyph="square")
        assert m[corner] and m.sum() == 7 * 5
    assert tag_mask(32, 32, size=14, position="center", margin=0, glyph="R").sum() == 4 * GLYPHS["R"].sum()
    psd = artifact_psd(clean, art)
    for band in ("frac_low", "frac_mid", "frac_high"):
        assert psd.scalars[band] > 0.1
    with pytest.raises(DataError, match="does not fit"):
        apply_artifact("tag", crops(1, 8), seed=0, size=7, margin=2)


def _mean_w2_on_tag(n: int, window: str, tukey_alpha: float = 0.5, **tag) -> tuple[float, float]:
    """Mean squared window over the tag's pixels and over the whole n x n image, with the 2-D window
    RadialSpectrum multiplies the maps with (its defaults unless given)."""
    params = {**artifact_defaults("tag"), **tag}
    mask = tag_mask(
        n, n, size=params["size"], position=params["position"], margin=params["margin"], glyph=params["glyph"]
    )
    w2 = RadialSpectrum(n, n, window=window, tukey_alpha=tukey_alpha).window_2d ** 2
    return float(w2[mask].mean()), float(w2.mean())


@pytest.mark.parametrize("n", [16, 32, 64])
def test_default_tag_sits_where_the_default_window_keeps_it(n):
    # the default window of every PSD (RadialSpectrum's and the config's) is hann
    default_window = RadialSpectrum(n, n).window
    assert default_window == "hann"
    on_tag, overall = _mean_w2_on_tag(n, default_window)
    assert on_tag >= overall  # not in the window's low region
    # the old default, 2 px from a corner, was where the window erases the mark (at 32 px: 0.002 vs 0.14)
    corner, _ = _mean_w2_on_tag(n, default_window, position="top-left", margin=2)
    assert corner < overall
    # and the default mark leaves the centre pixel, whose tissue sets a brain patch's label, untouched
    params = artifact_defaults("tag")
    mask = tag_mask(
        n, n, size=params["size"], position=params["position"], margin=None, glyph=params["glyph"]
    )
    assert not mask[n // 2, n // 2]
    # and the windowed difference keeps that share of the mark's energy (the difference is the tag's
    # pixels times their varying contrast to the image, so the share is close to the mean, not equal)
    x = crops(4, n)
    clean, art = apply_artifact("tag", x, seed=0)
    diff = (art - clean)[:, 0]
    w2 = RadialSpectrum(n, n).window_2d ** 2
    assert (diff**2 * w2).sum() / (diff**2).sum() == pytest.approx(on_tag, rel=0.05)


def test_tukey_window_keeps_more_of_a_corner_tag_than_hann():
    # A top-left tag at 32 px (rows 2..8, columns 2..6). Hann keeps 1.6 % of the image's mean squared
    # window there. Tukey with alpha 0.5 tapers the outer 8 px on each side, which still covers most of
    # the tag: it keeps about a quarter (0.246) of the image mean, 15 times Hann's share but not most of
    # the weight; alpha 0.25 (4 px tapers) keeps 0.75 of it.
    def ratio(window, alpha=0.5):
        on_tag, overall = _mean_w2_on_tag(32, window, alpha, position="top-left", margin=2)
        return on_tag / overall

    hann, tukey = ratio("hann"), ratio("tukey")
    assert hann < 0.02
    assert 0.2 < tukey < 0.3 and tukey > 10 * hann
    assert ratio("tukey", 0.25) > 0.5
    assert ratio("tukey", 0.0) == pytest.approx(1.0) == ratio("none")
