"""Cluster bootstrap of AUCs and the seeds x groups intervals of the AUC tables: exact pieces, and coverage
by simulation (docs/DEFINITIONS.md, "Statistics")."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as tdist
from sklearn.metrics import roc_auc_score

from shortcut_psd import clustered as C
from shortcut_psd.tables_auc import auc_summary, auc_table, init_tests


def test_weighted_auc_matches_sklearn_sample_weight():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80).astype(bool)
    s = np.round(rng.normal(size=80) + y, 1)  # ties
    w = rng.integers(0, 4, 80).astype(float)
    assert C.weighted_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w))
    assert C.weighted_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(C.weighted_auc(y, s, np.where(y, 0.0, 1.0)))


def test_cluster_weights_draw_whole_groups():
    groups = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 2)
    codes, n_groups = C.group_codes(groups, 10)
    w = C.cluster_weights(codes, n_groups, 500, np.random.default_rng(1))
    assert w.shape == (500, 10)
    for label in "abc":
        block = w[:, groups == label]
        assert (block == block[:, :1]).all()  # every image of a group gets its group's count
    per_group = np.stack([w[:, groups == g][:, 0] for g in "abc"], axis=1)
    assert (per_group.sum(1) == 2).all()  # n - 1 draws of n groups (unbiased variance of a mean)


def _clustered_study(rng, n_groups, per_group=30, tau=1.0):
    """Scores with a group effect shared by both classes and a class mix that varies by group: patches of
    one slab are alike, so the slab, not the patch, is the independent unit."""
    groups, ys, ss = [], [], []
    for g in range(n_groups):
        frac = rng.uniform(0.2, 0.8)
        y = rng.random(per_group) < frac
        s = 0.8 * y + rng.normal(0, tau) + rng.normal(0, 0.5, per_group)
        groups += [g] * per_group
        ys.append(y)
        ss.append(s)
    return np.concatenate(ys), np.concatenate(ss), np.array(groups)


@pytest.mark.parametrize(
    ("n", "n_groups", "decimals"),
    [(300, 6, 3), (300, 6, 0), (40, 3, 1), (500, 40, 2), (12, 2, 0)],
)
def test_group_count_auc_is_bit_identical_to_the_image_weight_auc(n, n_groups, decimals):
    """The per-group-pair form (few groups) gives exactly the per-image form's floats, ties, resamples
    that empty a class (NaN) and all: the counts are integers, so every sum is exact."""
    rng = np.random.default_rng(n + n_groups + decimals)
    y = rng.random(n) < 0.3
    y[:2] = [True, False]
    scores = np.round(rng.normal(size=n) + y, decimals)  # rounding makes ties
    codes = np.sort(rng.integers(0, n_groups, n))
    codes[:n_groups] = np.arange(n_groups)
    r = C.cluster_resamples(codes, n_groups, 500, np.random.default_rng(7))
    w = C.cluster_weights(codes, n_groups, 500, np.random.default_rng(7))
    assert np.array_equal(r.weights, w), "the same draws"
    assert r.by_groups()
    grouped = C.weighted_auc(y, scores, r)
    assert np.array_equal(grouped, C.weighted_auc(y, scores, w), equal_nan=True)
    assert np.isfinite(grouped).any()


def test_many_groups_fall_back_to_image_weights():
    codes = np.arange(30)
    r = C.cluster_resamples(codes, 30, 50, np.random.default_rng(0))
    assert not r.by_groups() and len(r) == 50 and r.shape == (50, 30)
    y, s = np.arange(30) % 2 == 0, np.linspace(0, 1, 30)
    assert np.array_equal(C.weighted_auc(y, s, r), C.weighted_auc(y, s, r.weights), equal_nan=True)


def test_cluster_interval_covers_the_population_auc_where_the_image_bootstrap_does_not():
    rng = np.random.default_rng(2)
    y, s, _ = _clustered_study(rng, 20000, per_group=10)
    truth = roc_auc_score(y, s)
    n, hits_group, hits_image = 200, 0, 0
    for i in range(n):
        y, s, g = _clustered_study(rng, 20)
        by_group = C.auc_interval(y, s, groups=g, n_boot=400, seed=i)
        by_image = C.auc_interval(y, s, groups=None, n_boot=400, seed=i)
        assert 0 <= by_group["lo"] <= by_group["hi"] <= 1
        hits_group += by_group["lo"] <= truth <= by_group["hi"]
        hits_image += by_image["lo"] <= truth <= by_image["hi"]
    assert hits_group / n >= 0.90, hits_group / n
    assert hits_image / n < 0.80, hits_image / n  # what the report printed before


def _percentile_seed_group(per_seed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The rejected method, kept as a reference the coverage tests show failing: replicates of a mean over
    seeds that draw ``S - 1`` seeds with replacement under each shared group resample (``per_seed`` (S, B))."""
    v = np.asarray(per_seed, dtype=np.float64)
    if v.shape[0] == 1:
        return v[0].copy()
    idx = rng.integers(0, v.shape[0], size=(v.shape[1], v.shape[0] - 1))
    return v[idx, np.arange(v.shape[1])[:, None]].mean(axis=1)


def test_seed_group_t_interval_formula():
    """The interval is ``m -/+ sqrt(t_{S-1}^2 V_S + t_{G-1}^2 V_G)`` on the chosen scale (by hand here)."""
    point = np.array([0.70, 0.80, 0.75])
    reps = np.array([[0.68, 0.72, 0.70, 0.66], [0.79, 0.83, 0.80, 0.78], [0.74, 0.76, 0.73, 0.77]])
    m, g = point.mean(), 9
    v_s, v_g = point.var(ddof=1) / 3, reps.mean(axis=0).var(ddof=1)
    h = np.sqrt(tdist.ppf(0.975, 2) ** 2 * v_s + tdist.ppf(0.975, 8) ** 2 * v_g)
    assert C.seed_group_t_interval(point, reps, g, scale="raw") == pytest.approx((m - h, m + h))
    z, d = np.log(m / (1 - m)), h / (m * (1 - m))
    expected = (1 / (1 + np.exp(d - z)), 1 / (1 + np.exp(-z - d)))
    assert C.seed_group_t_interval(point, reps, g, scale="logit") == pytest.approx(expected)
    z, d = np.arctanh(m), h / (1 - m**2)
    assert C.seed_group_t_interval(point, reps, g, scale="atanh") == pytest.approx(
        (np.tanh(z - d), np.tanh(z + d))
    )
    # one seed: the group term alone; a non-finite seed is left out; NaN replicates are skipped
    h1 = tdist.ppf(0.975, 8) * reps[0].std(ddof=1)
    assert C.seed_group_t_interval(point[:1], reps[:1], g) == pytest.approx((0.70 - h1, 0.70 + h1))
    with_nan = C.seed_group_t_interval([0.70, np.nan], np.stack([reps[0], reps[1]]), g)
    assert with_nan == pytest.approx((0.70 - h1, 0.70 + h1))
    r = np.column_stack([reps, np.full(3, np.nan)])
    assert C.seed_group_t_interval(point, r, g) == pytest.approx((m - h, m + h))
    # an AUC of 1 falls back to the raw scale, clipped; always lo <= m <= hi inside the range
    lo, hi = C.seed_group_t_interval([1.0, 1.0], np.array([[1.0, 0.9], [1.0, 0.95]]), 5, scale="logit")
    assert 0 <= lo < hi == 1.0
    assert C.seed_group_t_interval([0.99, 0.2], reps[:2], 5, scale="logit")[0] >= 0
    # nothing to estimate: one seed and one group, or no finite resample
    assert np.isnan(C.seed_group_t_interval([0.7], np.full((1, 4), 0.7), 1)).all()
    assert np.isnan(C.seed_group_t_interval(point, np.full((3, 4), np.nan), g)).all()
    # the difference: one term per side's seeds and one for the shared groups, clipped to [-2, 2]
    vd = (reps.mean(axis=0) - reps[:2].mean(axis=0)).var(ddof=1)
    hd = np.sqrt(
        tdist.ppf(0.975, 2) ** 2 * v_s
        + tdist.ppf(0.975, 1) ** 2 * point[:2].var(ddof=1) / 2
        + tdist.ppf(0.975, 8) ** 2 * vd
    )
    md = m - point[:2].mean()
    assert C.seed_group_t_difference(point, reps, point[:2], reps[:2], g) == pytest.approx((md - hd, md + hd))
    assert C.seed_group_t_difference([1.0, -1.0], reps[:2], [-1.0, 1.0], reps[1:], g) == (-2.0, 2.0)
    with pytest.raises(ValueError):
        C.seed_group_t_interval(point, reps[:2], g)


# Condition model of the AUC-table coverage tests (the simulation behind docs/DEFINITIONS.md,
# "Statistics", with fewer images and resamples). Test set: N images in G groups (slabs) of Dirichlet(4)
# sizes, group prevalence ~ Beta(2.5, 7.5). Seed s of an init scores image i of group g
#   clean: (delta + d_s + v_g + w_sg) y_i + u_g + e_i + eta_si
#   ood:   (delta + d_s - r_s + v_g + w'_sg) y_i + u_g + e_i + eta'_si    (the shortcut removed)
# with d_s ~ N(0, sd^2) (seed effect), r_s ~ N(r0, sr^2) (the seed's reliance on the shortcut), u_g, v_g,
# w_sg group effects, e_i image difficulty shared by every seed, eta_si seed noise. The truth (population
# of groups, images and seeds) is closed form: AUC = Phi(separation / sd of the score difference).
_P = dict(delta=1.6, tau=0.5, sv=0.4, sw=0.1, se=0.8, seta=0.4, sd=0.2, sr=0.35)
_R0 = {"a": 0.9, "b": 0.5}


def _truth(r0):
    """(AUC clean, AUC ood, gap) of an init with mean reliance ``r0``."""
    s2 = _P["sv"] ** 2 + _P["sw"] ** 2 + 2 * (_P["tau"] ** 2 + _P["se"] ** 2 + _P["seta"] ** 2)
    clean = norm.cdf(_P["delta"] / np.sqrt(s2 + _P["sd"] ** 2))
    ood = norm.cdf((_P["delta"] - r0) / np.sqrt(s2 + _P["sd"] ** 2 + _P["sr"] ** 2))
    return float(clean), float(ood), float(clean - ood)


def _condition_records(rng, n_groups, n_seeds, inits=("a",)):
    """Metrics records (the fields :func:`auc_summary` and :func:`auc_table` read) of ``n_seeds`` models
    per init, all scored on one fresh test set."""
    n = int(rng.integers(200, 501))
    sizes = np.maximum(rng.multinomial(n, rng.dirichlet(np.full(n_groups, 4.0))), 1)
    codes = np.repeat(np.arange(n_groups), sizes)
    y = rng.random(codes.size) < rng.beta(2.5, 7.5, n_groups)[codes]
    y[:2] = [True, False]
    groups = [f"g{c:02d}" for c in codes]
    u, v = rng.normal(0, _P["tau"], n_groups)[codes], rng.normal(0, _P["sv"], n_groups)[codes]
    base = u + rng.normal(0, _P["se"], y.size)
    records = []
    for init in inits:
        for s in range(n_seeds):
            d, r = rng.normal(0, _P["sd"]), rng.normal(_R0[init], _P["sr"])
            sep = _P["delta"] + d + v
            scores = {}
            for name, shift in (("clean", 0.0), ("ood", r)):
                w = rng.normal(0, _P["sw"], n_groups)[codes]
                scores[name] = (sep - shift + w) * y + base + rng.normal(0, _P["seta"], y.size)
            scores["iid"] = scores["clean"]
            sets = {k: {"auc": C.weighted_auc(y, x), "lo": np.nan, "hi": np.nan} for k, x in scores.items()}
            records.append(
                {
                    "_key": {"init": init, "target": "t", "artifact": "x", "prevalence": 1.0, "seed": s},
                    "test": {"labels": y, "groups": groups, "scores": scores},
                    "sets": sets,
                    "gap": sets["clean"]["auc"] - sets["ood"]["auc"],
                }
            )
    return records


@pytest.mark.parametrize(("n_seeds", "n_groups"), [(2, 5), (2, 20), (5, 5), (5, 20)])
def test_auc_summary_interval_covers_a_conditions_mean_auc_and_gap(n_seeds, n_groups):
    """The real :func:`auc_summary` (300 group resamples) on 300 simulated conditions per cell: its
    intervals of the mean clean AUC, ood AUC and gap cover the truth at least 0.92 of the time (nominal
    0.95) and lie in [0, 1] (gap: [-1, 1]) around the mean. Observed (clean / ood / gap): S=2 G=5
    0.99 / 0.99 / 0.99; S=2 G=20 1.00 / 0.97 / 0.96; S=5 G=5 0.97 / 0.98 / 0.99; S=5 G=20 0.96 / 0.97 /
    0.96. The percentile bootstrap it replaced (``_percentile_seed_group`` on the same resamples)
    fails with 2 seeds, asserted below 0.90 for at least one statistic: 0.84 / 0.85 / 0.82 (G=5),
    0.91 / 0.84 / 0.76 (G=20); with 5 seeds it gave 0.86 / 0.88 / 0.93 (G=5) and 0.93 / 0.95 / 0.92
    (G=20)."""
    truth = dict(zip(("auc_clean", "auc_ood", "gap"), _truth(_R0["a"]), strict=True))
    stat = {"auc_clean": "clean", "auc_ood": "ood", "gap": "gap"}
    rng = np.random.default_rng(100 * n_seeds + n_groups)
    n_rep = 300
    hits = {k: 0 for k in truth}
    old_hits = {k: 0 for k in truth}
    for i in range(n_rep):
        summary, reps = auc_summary(_condition_records(rng, n_groups, n_seeds), n_boot=300, seed=i)
        row = summary.iloc[0]
        for k, tr in truth.items():
            lo, mean, hi = row[f"{k}_lo"], row[f"{k}_mean"], row[f"{k}_hi"]
            low_bound = -1 if k == "gap" else 0
            assert low_bound <= lo <= mean <= hi <= 1, (k, lo, mean, hi)
            hits[k] += lo <= tr <= hi
            per_seed = reps["conditions"][("a", "t", "x", 1.0)][stat[k]]
            old = C.percentile_interval(_percentile_seed_group(per_seed, np.random.default_rng(i)))
            old_hits[k] += old[0] <= tr <= old[1]
    cover = {k: h / n_rep for k, h in hits.items()}
    old_cover = {k: h / n_rep for k, h in old_hits.items()}
    assert min(cover.values()) >= 0.92, cover
    if n_seeds == 2:  # the test can fail: the old interval does
        assert min(old_cover.values()) < 0.90, old_cover


@pytest.mark.parametrize(("n_seeds", "n_groups"), [(2, 9), (5, 9)])
def test_init_tests_interval_covers_the_difference_of_mean_gaps(n_seeds, n_groups):
    """The real :func:`init_tests` on 300 simulated pairs of inits (a: mean reliance 0.9, b: 0.5; S seeds
    each, one shared test set of G groups): its interval of the difference of mean gaps covers the truth at
    least 0.92 of the time and lies in [-2, 2] around the difference. Observed: 1.00 (S=2), 0.99 (S=5);
    the percentile bootstrap it replaced (same resamples): 0.84 (S=2, asserted below 0.90), 0.91 (S=5)."""
    truth = _truth(_R0["a"])[2] - _truth(_R0["b"])[2]
    rng = np.random.default_rng(7 + n_seeds)
    n_rep, hits, old_hits = 300, 0, 0
    for i in range(n_rep):
        records = _condition_records(rng, n_groups, n_seeds, inits=("a", "b"))
        _, reps = auc_summary(records, n_boot=300, seed=i)
        row = init_tests(auc_table(records), reps, n_resamples=1, seed=i, alpha=0.0).iloc[0]
        assert (row["init_a"], row["init_b"]) == ("a", "b")
        assert -2 <= row["diff_lo"] <= row["diff"] <= row["diff_hi"] <= 2
        hits += row["diff_lo"] <= truth <= row["diff_hi"]
        per_model, old_rng = reps["per_model"], np.random.default_rng(i)
        ra, rb = ([per_model[(x, "t", "x", 1.0, s)]["reps"]["gap"] for s in range(n_seeds)] for x in "ab")
        old = C.percentile_interval(
            _percentile_seed_group(np.stack(ra), old_rng) - _percentile_seed_group(np.stack(rb), old_rng)
        )
        old_hits += old[0] <= truth <= old[1]
    assert hits / n_rep >= 0.92, hits / n_rep
    if n_seeds == 2:  # the test can fail: the old interval does
        assert old_hits / n_rep < 0.90, old_hits / n_rep


@pytest.mark.parametrize(("n_seeds", "n_groups"), [(2, 5), (5, 20)])
def test_probe_reliance_interval_covers_the_mean_reliance(n_seeds, n_groups):
    """The probe tables' path (:func:`shortcut_psd.probe_summary.reliance_summary`, fed the arrays a probe
    job writes): reliance = AUC(clean) - AUC(band removed) and the keep-only AUC, per seed on the same
    probe images and the same group resamples. Here the removed band is the shortcut of the model above
    (its ``ood`` scores), so the truth is the gap and the ood AUC. Coverage at least 0.92 at nominal 0.95,
    intervals in range around the mean. Observed (reliance / keep-only AUC): S=2 G=5 0.97 / 0.99; S=5 G=20
    0.955 / 0.965."""
    from shortcut_psd.probe_summary import reliance_summary

    _, ood_truth, gap_truth = _truth(_R0["a"])
    rng = np.random.default_rng(300 + n_seeds + n_groups)
    n_rep, hits_rel, hits_keep = 200, 0, 0
    for i in range(n_rep):
        runs = []
        for rec in _condition_records(rng, n_groups, n_seeds):
            y, sc = rec["test"]["labels"], rec["test"]["scores"]
            codes, g = C.group_codes(rec["test"]["groups"], len(y))
            r = C.cluster_resamples(codes, g, 300, np.random.default_rng(i))  # shared by every seed
            removed = C.weighted_auc(y, sc["ood"])
            runs.append({
                "labels": np.asarray(["m"]), "bands": np.asarray([[0.0, 0.5]]), "n_groups": np.asarray(g),
                "auc_clean": np.asarray([rec["sets"]["clean"]["auc"]]), "acc_clean": np.zeros(1),
                "auc_remove": np.asarray([[removed]]), "auc_keep": np.asarray([[removed]]),
                "acc_remove": np.zeros((1, 1)), "acc_keep": np.zeros((1, 1)),
                "rep_clean": C.weighted_auc(y, sc["clean"], r)[None, :],
                "rep_remove": C.weighted_auc(y, sc["ood"], r)[None, :, None],
                "rep_keep": C.weighted_auc(y, sc["ood"], r)[None, :, None],
            })  # fmt: skip
        s = reliance_summary(runs, "m", ci=0.95)
        lo, mean, hi = s["reliance_lo"][0], s["reliance"][0], s["reliance_hi"][0]
        assert -1 <= lo <= mean <= hi <= 1, (lo, mean, hi)
        klo, kmean, khi = s["auc_keep_lo"][0], s["auc_keep"][0], s["auc_keep_hi"][0]
        assert 0 <= klo <= kmean <= khi <= 1, (klo, kmean, khi)
        hits_rel += lo <= gap_truth <= hi
        hits_keep += klo <= ood_truth <= khi
    assert hits_rel / n_rep >= 0.92 and hits_keep / n_rep >= 0.92, (hits_rel / n_rep, hits_keep / n_rep)
