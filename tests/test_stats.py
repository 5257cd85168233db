"""Statistics with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from shortcut_psd import stats as S
from shortcut_psd.errors import DataError


def test_mean_ci_matches_hand_t_formula():
    x = np.array([0.71, 0.74, 0.69, 0.80, 0.77])
    r = S.mean_ci(x, ci=0.95)
    n = x.size
    half = sps.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
    assert r["n"] == 5 and not r["single"]
    assert r["mean"] == pytest.approx(x.mean())
    assert r["std"] == pytest.approx(x.std(ddof=1))
    assert (r["lo"], r["hi"]) == pytest.approx((x.mean() - half, x.mean() + half))
    # n = 2: t quantile with 1 degree of freedom is 12.706
    r2 = S.mean_ci([0.0, 1.0])
    assert r2["hi"] - r2["mean"] == pytest.approx(12.7062 * math.sqrt(0.5) / math.sqrt(2), rel=1e-4)


def test_mean_ci_single_and_empty_and_nan():
    r = S.mean_ci([0.8])
    assert r["lo"] == r["hi"] == r["mean"] == 0.8 and r["single"] and math.isnan(r["std"])
    assert math.isnan(S.mean_ci([])["mean"]) and S.mean_ci([]).get("n") == 0
    assert S.mean_ci([1.0, np.nan, 3.0])["n"] == 2
    with pytest.raises(ValueError):
        S.mean_ci([1, 2], ci=95)


def test_summarise_tidy_columns():
    df = pd.DataFrame(
        {"init": ["a"] * 3 + ["b"] * 2, "seed": [0, 1, 2, 0, 1], "auc": [0.7, 0.8, 0.9, 0.5, 0.6]}
    )
    out = S.summarise(df, by=["init"], cols=["auc"])
    assert list(out.columns[:4]) == ["init", "auc_mean", "auc_lo", "auc_hi"] and "n" in out.columns
    a = out.set_index("init").loc["a"]
    ref = S.mean_ci([0.7, 0.8, 0.9])
    assert a["auc_mean"] == pytest.approx(0.8) and a["n"] == 3
    assert (a["auc_lo"], a["auc_hi"]) == pytest.approx((ref["lo"], ref["hi"]))
    with pytest.raises(ValueError, match="gap"):
        S.summarise(df, by=["init"], cols=["gap"])


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


def test_pairwise_init_tests_rows_and_holm():
    rows = []
    for art in ("noise", "blur"):
        for init, level in (("imagenet", 0.1), ("radimagenet", 0.5), ("scratch", 0.9)):
            for seed in range(4):
                rows.append(
                    {
                        "target": "brain",
                        "artifact": art,
                        "prevalence": 0.5,
                        "init": init,
                        "seed": seed,
                        "gap": level + 0.01 * seed,
                    }
                )
    out = S.pairwise_init_tests(pd.DataFrame(rows))
    assert len(out) == 6  # 2 artifacts x C(3, 2) pairs
    assert {"mean_a", "mean_b", "diff", "p_value", "p_holm", "n_a", "n_b", "init_a", "init_b"} <= set(
        out.columns
    )
    first = out[(out.artifact == "noise") & (out.init_a == "imagenet") & (out.init_b == "radimagenet")].iloc[
        0
    ]
    assert first["diff"] == pytest.approx(-0.4) and first["n_a"] == 4
    assert first["p_value"] == pytest.approx(2 / 70)  # exact: C(8, 4) = 70
    for _, g in out.groupby("artifact"):
        np.testing.assert_allclose(g["p_holm"], S.holm(g["p_value"]))
    with pytest.raises(ValueError, match="gap"):
        S.pairwise_init_tests(pd.DataFrame(rows).drop(columns="gap"))


def test_rank_correlation_monotone():
    x = np.arange(8.0)
    r = S.rank_correlation(x, np.exp(x))
    assert r["rho"] == pytest.approx(1.0) and r["n"] == 8
    assert r["p_value"] < 0.01
    assert S.rank_correlation(x, -x)["rho"] == pytest.approx(-1.0)
    # exact over all 5! pairings: rho = 1 is reached by 1 ordering, rho = -1 by 1 -> p = 2/120
    assert S.rank_correlation(np.arange(5), np.arange(5))["p_value"] == pytest.approx(2 / 120)
    assert math.isnan(S.rank_correlation([1, 2], [3, 4])["rho"])
    rng = np.random.default_rng(3)
    assert S.rank_correlation(rng.normal(size=30), rng.normal(size=30))["p_value"] > 0.05


def _alignment_table(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i, init in enumerate(("imagenet", "radimagenet", "scratch")):
        for j, art in enumerate(("noise", "blur", "band")):
            align = 0.3 * i + 0.1 * j
            for s in range(4):
                rows.append({"init": init, "artifact": art, "seed": s,
                             "alignment": align + rng.normal(0, 0.02),
                             "gap": align + rng.normal(0, 0.08)})  # fmt: skip
    return pd.DataFrame(rows)


def test_bootstrap_rank_correlation_contains_point_estimate():
    t = _alignment_table()
    r = S.bootstrap_rank_correlation(t, n_boot=500)
    assert r["n_pairs"] == 9 and r["n_units_min"] == 4 and r["n_boot_valid"] == 500
    assert r["lo"] <= r["rho"] <= r["hi"]
    assert r["rho"] > 0.8 and r["lo"] > 0
    means = t.groupby(["init", "artifact"])[["alignment", "gap"]].mean()
    assert r["rho"] == pytest.approx(sps.spearmanr(means["alignment"], means["gap"]).statistic)
    assert S.bootstrap_rank_correlation(t, n_boot=200, seed=1) == S.bootstrap_rank_correlation(
        t, n_boot=200, seed=1
    )
    with pytest.raises(ValueError, match="alignment"):
        S.bootstrap_rank_correlation(t.drop(columns="alignment"))


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
    with pytest.raises(S.ColumnError) as info:
        S.summarise(pd.DataFrame({"a": [1]}), by=["init"], cols=["a"])
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataError)
