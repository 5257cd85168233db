"""Statistics with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from shortcut_psd import stats as S
from shortcut_psd.errors import DataError


def test_permutation_test_separates_clearly_different_samples():
    a = [0.10, 0.12, 0.09, 0.11, 0.13, 0.08]
    b = [0.90, 0.88, 0.93, 0.91, 0.87, 0.92]
    r = S.permutation_test(a, b)
    assert r["exact"]  # C(12, 6) = 924 <= 10000: scipy enumerates every split
    assert r["p_value"] == pytest.approx(2 / 924)
    assert r["statistic"] == pytest.approx(np.mean(a) - np.mean(b))
    assert (r["n_a"], r["n_b"]) == (6, 6)


def test_permutation_test_under_the_null():
    rng = np.random.default_rng(1)
    x = rng.normal(size=15)
    assert S.permutation_test(x, x.copy())["p_value"] > 0.9
    # Same distribution: p-values spread over [0, 1], not piled up near 0.
    ps = [
        S.permutation_test(*rng.normal(size=(2, 8)), n_resamples=2000, seed=i)["p_value"] for i in range(40)
    ]
    assert np.mean(np.array(ps) < 0.05) <= 0.15
    assert 0.3 < np.mean(ps) < 0.7
    assert S.permutation_test([1, 1], [1, 1])["p_value"] == 1.0
    with pytest.raises(ValueError, match="statistic"):
        S.permutation_test([1], [2], statistic="t")


def test_holm_known_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    np.testing.assert_allclose(S.holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(S.holm([0.2, np.nan, 0.9]), [0.4, np.nan, 0.9])  # m = 2 finite
    assert S.holm([]).size == 0


def test_curve_distance():
    p = np.array([0.5, 0.3, 0.2])
    d = S.curve_distance(p, 4 * p)  # same shape, other scale
    assert d == pytest.approx({"l1": 0.0, "js": 0.0, "cosine": 0.0}, abs=1e-7)
    far = S.curve_distance([1, 0, 0], [0, 0, 1])
    assert (
        far["l1"] == pytest.approx(2.0)
        and far["js"] == pytest.approx(1.0)
        and far["cosine"] == pytest.approx(1.0)
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = S.curve_distance(rng.random(16), rng.random(16))
        assert 0 <= d["js"] <= 1 and 0 <= d["l1"] <= 2 and 0 <= d["cosine"] <= 1
    with pytest.raises(ValueError):
        S.curve_distance([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        S.curve_distance([1, -1], [1, 1])


def test_column_error_is_value_and_data_error():
    assert issubclass(S.ColumnError, ValueError) and issubclass(S.ColumnError, DataError)


def test_between_init_permutation_test_is_calibrated_with_five_seeds():
    """400 simulated comparisons of 5 vs 5 seeds from one distribution: rejection rate at 0.05 <= 0.08."""
    rng = np.random.default_rng(12)
    rejected = sum(
        S.permutation_test(rng.normal(size=5), rng.normal(size=5), seed=i)["p_value"] < 0.05
        for i in range(400)
    )
    assert rejected / 400 <= 0.08, rejected / 400
