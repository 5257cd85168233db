"""Source edits: whitening flattens a photo's spectrum, filters remove what they should, registry errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import camera
from skimage.filters import butterworth

from shortcut_psd.edits import EDITS, apply_edit, check_edit_params, describe_edit, edit_defaults, edit_kinds
from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.freqgrid import apply_response, highpass_response, lowpass_response, radius_cpp
from shortcut_psd.gradients import image_psd


def camera_crops(n=24, size=64, seed=0):
    """Crops of skimage's camera photo, squeezed to [0.25, 0.75] so edits rarely clip."""
    cam = camera().astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(0, 512 - size, (2, n))
    crops = np.stack([cam[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])
    return (0.25 + 0.5 * crops)[:, None].astype(np.float32)


def radial_power(x, window="none"):
    return image_psd(x, window=window, normalise="none", detrend="mean")


def test_registry_lists_kinds_and_defaults():
    assert edit_kinds() == ["bandstop", "highpass", "lowpass", "none", "whiten"]
    assert set(EDITS) == set(edit_kinds())
    assert edit_defaults("lowpass") == {"cutoff_cpp": 0.15, "filter": "butterworth", "order": 2.0}
    assert edit_defaults("none") == {}
    assert "Spectral signature" in describe_edit("whiten")
    assert "\n  strength (float in [0, 1]; default 1.0): " in describe_edit("whiten")


def test_unknown_kinds_params_and_values_raise_config_errors():
    x = camera_crops(2, 16)
    with pytest.raises(
        ConfigError, match=r"unknown edit 'blur'.*\['bandstop', 'highpass', 'lowpass', 'none', 'whiten'\]"
    ):
        apply_edit("blur", x)
    with pytest.raises(
        ConfigError, match=r"no parameter\(s\) \['cutoff'\]; allowed: \['cutoff_cpp', 'filter', 'order'\]"
    ):
        apply_edit("lowpass", x, cutoff=0.1)
    with pytest.raises(ConfigError, match="cutoff_cpp"):
        apply_edit("lowpass", x, cutoff_cpp=0.8)
    with pytest.raises(ConfigError, match=r"\['butterworth', 'ideal'\]"):
        check_edit_params("highpass", {"filter": "gaussian"})
    with pytest.raises(ConfigError, match="below f_hi_cpp"):
        check_edit_params("bandstop", {"f_lo_cpp": 0.3, "f_hi_cpp": 0.2})
    with pytest.raises(ConfigError, match="strength"):
        check_edit_params("whiten", {"strength": 2})
    with pytest.raises(ConfigError, match="highpass: keep_mean must be true or false"):
        check_edit_params("highpass", {"keep_mean": "yes"})
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        apply_edit("none", x[0])
    assert check_edit_params("whiten", {"strength": 0.5}) == {"strength": 0.5, "eps": 1e-8}


@pytest.mark.parametrize("kind", ["none", "whiten", "lowpass", "highpass", "bandstop"])
def test_edits_are_deterministic_float32_and_clipped(kind):
    x = camera_crops(3, 33)
    a, b = apply_edit(kind, x), apply_edit(kind, x)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1
    if kind == "none":
        np.testing.assert_array_equal(a, x)


def test_whiten_flattens_a_photo_spectrum():
    x = camera_crops()
    before = radial_power(x).mean[1:]
    assert np.log(before[0] / before[-1]) > 5  # a photo: power falls by orders of magnitude
    raw = EDITS["whiten"](x)  # before clipping: mean and std of every image are restored exactly
    np.testing.assert_allclose(raw.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(raw.std(axis=(2, 3)), x.std(axis=(2, 3)), rtol=1e-4)
    exact = radial_power(raw).mean[1:]  # unclipped, periodic spectrum: exactly flat
    np.testing.assert_allclose(exact / exact.mean(), 1.0, atol=1e-4)
    # Clipping to [0, 1] bends it a little (whitened photos are spiky at edges). The Hann window's main
    # lobe is 2 bins wide, so its first two bins also mix with the removed mean: they are left out.
    w = apply_edit("whiten", x)
    for window, first in (("none", 1), ("hann", 2)):
        curve = radial_power(w, window=window).mean[first:]
        np.testing.assert_allclose(curve / curve.mean(), 1.0, atol=0.25)
    slopes = [image_psd(apply_edit("whiten", x, strength=s)).scalars["loglog_slope"] for s in (0, 0.5, 1)]
    assert slopes[0] < slopes[1] < slopes[2] and abs(slopes[2]) < 0.2


@pytest.mark.parametrize("size", [64, 63])
def test_ideal_lowpass_and_highpass_remove_what_they_should(size):
    x = camera_crops(16, size)
    before = radial_power(x).mean
    freqs = image_psd(x).freqs
    cut = 0.15
    low = radial_power(apply_edit("lowpass", x, cutoff_cpp=cut, filter="ideal")).mean
    above = freqs > cut + 1 / size
    below = freqs < cut - 1 / size
    assert (low[above] / before[above]).max() < 0.02  # only clipping can leave anything
    np.testing.assert_allclose(low[below][1:], before[below][1:], rtol=0.02)  # bin 0: detrended DC
    high = radial_power(apply_edit("highpass", x, cutoff_cpp=cut, filter="ideal")).mean
    assert (high[below][1:] / before[below][1:]).max() < 0.02
    np.testing.assert_allclose(high[above], before[above], rtol=0.05)
    hp = apply_edit("highpass", x, cutoff_cpp=cut)
    np.testing.assert_allclose(hp.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=1e-3)  # keep_mean


def test_butterworth_gain_and_bandstop_notch():
    x = camera_crops(16, 64)
    before = radial_power(x).mean
    freqs = image_psd(x).freqs
    low = radial_power(apply_edit("lowpass", x, cutoff_cpp=0.2, order=3)).mean
    gain = low / before
    assert gain[freqs <= 0.1].min() > 0.95 and gain[freqs >= 0.35].max() < 0.02
    assert gain[np.argmin(abs(freqs - 0.2))] == pytest.approx(0.25, abs=0.03)  # |H|^2 = 1/4 at the cutoff
    stop = radial_power(apply_edit("bandstop", x, f_lo_cpp=0.15, f_hi_cpp=0.3, filter="ideal")).mean / before
    inside = (freqs > 0.15 + 1 / 64) & (freqs < 0.3 - 1 / 64)
    outside = (freqs < 0.15 - 1 / 64) | (freqs > 0.3 + 1 / 64)
    assert stop[inside].max() < 0.05 and stop[outside][1:].min() > 0.95


@pytest.mark.parametrize("shape", [(64, 64), (63, 63), (48, 65)])
@pytest.mark.parametrize("high_pass", [False, True])
def test_butterworth_matches_skimage(shape, high_pass):
    # skimage's cutoff_frequency_ratio is a fraction of the sampling frequency, i.e. cycles/pixel.
    img = camera()[: shape[0], 100 : 100 + shape[1]].astype(np.float64) / 255
    ref = butterworth(
        img, cutoff_frequency_ratio=0.12, high_pass=high_pass, order=2.5, squared_butterworth=True
    )
    resp = (highpass_response if high_pass else lowpass_response)(
        radius_cpp(*shape), 0.12, "butterworth", 2.5
    )
    ours = apply_response(img[None, None], resp)[0, 0]
    np.testing.assert_allclose(ours, ref, atol=1e-6)
