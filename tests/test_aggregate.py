"""Aggregation on hand-made job outputs: tables have the right rows, values and statistics."""

from __future__ import annotations

import numpy as np
import pytest

from shortcut_psd import aggregate as agg
from shortcut_psd import clustered, spectral
from shortcut_psd.io import write_json

FREQS = np.arange(9) / 16
INITS = ["hi", "lo", "mid"]
ARTIFACTS = ["hf", "lf", "mf"]
PEAK = {"lo": 0.05, "mid": 0.25, "hi": 0.45, "lf": 0.05, "mf": 0.25, "hf": 0.45}


def _peak(f0):
    return np.exp(-((FREQS - f0) ** 2) / 0.01) + 0.01


def _curve(path, mean, windows=False, groups=None):
    mean = np.asarray(mean, float)
    d = {
        "n": 10,
        "scalars": spectral.curve_scalars(mean, FREQS),
        "options": {"window": "hann"},
        "curve": {"freqs_cpp": FREQS, "mean": mean, "std": mean * 0, "ci_lo": mean, "ci_hi": mean},
    }
    if windows:  # under "none" every curve is flat: alignment no longer tells inits apart
        d["window_curves"] = {"hann": mean, "none": np.ones_like(mean)}
    if groups is not None:
        d["groups"] = {"names": groups, "n": [5] * len(groups), "curves": np.stack([mean] * len(groups))}
    write_json(path, d)


def _metrics(rng, y, groups, gap_effect):
    """Per-image scores whose clean AUC is high and whose ood AUC falls by ``gap_effect``."""
    clean = y + rng.normal(0, 0.6, y.size)
    ood = clean - gap_effect * 3 * y
    iid = clean + rng.normal(0, 0.1, y.size)
    sets = {}
    for name, s in {"clean": clean, "iid": iid, "ood": ood}.items():
        sets[name] = clustered.auc_interval(y, s, groups=groups, n_boot=50, seed=0)
    return {
        "sets": sets,
        "gap": sets["clean"]["auc"] - sets["ood"]["auc"],
        "best_epoch": 2,
        "test": {
            "labels": y.astype(int).tolist(),
            "groups": groups,
            "scores": {"clean": clean.tolist(), "iid": iid.tolist(), "ood": ood.tolist()},
        },
    }


def make_results(root, seeds=(0, 1, 2)):
    """3 inits x 3 artifacts x p in {0, 1}; an init's gradient PSD peaks where the same-named artifact's
    PSD does, and that (init, artifact) cell gets the larger gap: a within-artifact link."""
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2 == 1
    groups = [f"slab{i // 5}" for i in range(40)]
    conds = []
    for init in INITS:
        for s in seeds:
            _curve(
                root / "psd" / "pretrained" / init / "t" / f"seed{s}" / "psd.json",
                _peak(PEAK[init]),
                True,
                groups[::5],
            )
            for art in ARTIFACTS:
                conds.append([init, "t", art, "1", s])
                _curve(
                    root / "psd" / "finetuned" / init / "t" / art / "p1" / f"seed{s}" / "psd.json",
                    _peak(PEAK[init]),
                )
                for p in ("0", "1"):
                    aligned = init[0] == art[0]
                    effect = (0.5 if aligned else 0.1) + 0.02 * s if p == "1" else 0.0
                    write_json(
                        root / "eval" / init / "t" / art / f"p{p}" / f"seed{s}" / "metrics.json",
                        _metrics(rng, y, groups, effect),
                    )
    for art in ARTIFACTS:
        for s in seeds:
            _curve(root / "artifacts" / "t" / art / f"seed{s}" / "psd.json", _peak(PEAK[art]), True)
    return conds


def run_all(root, conds, seeds, alpha=0.05):
    records = agg.load_metrics(root, INITS, ["t"], ARTIFACTS, [0, 1], seeds)
    auc = agg.auc_table(records)
    summary, reps = agg.auc_summary(records, n_boot=300, seed=0)
    tests = agg.init_tests(auc, reps, n_resamples=1000, seed=0, alpha=alpha)
    per_seed = agg.alignment_per_seed(root, INITS, ARTIFACTS, ["t"], seeds, {s: s for s in seeds})
    table, windows, assoc = agg.alignment_tables(
        per_seed, auc, summary, ci=0.95, n_permutations=2000, n_boot=300, seed=0, alpha=alpha
    )
    return auc, summary, tests, per_seed, table, windows, assoc


def test_alignment_matches_the_spectral_module():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, q = rng.random(9), rng.random(9)
        a, b = agg.alignment(p, q), spectral.alignment(p, q)
        assert a["cosine"] == pytest.approx(b["cosine"]) and a["overlap"] == pytest.approx(b["overlap"])
    assert agg.alignment(np.ones(9), np.ones(9)) == pytest.approx({"cosine": 1.0, "overlap": 1.0})


def test_tables_from_job_outputs(tmp_path):
    conds = make_results(tmp_path)
    auc, summary, tests, per_seed, table, windows, assoc = run_all(tmp_path, conds, [0, 1, 2])
    assert len(auc) == 3 * 3 * 2 * 3
    np.testing.assert_allclose(auc["gap"], auc["auc_clean"] - auc["auc_ood"])
    # conditions: mean over seeds, intervals in range, units named
    assert len(summary) == 3 * 3 * 2 and (summary["n_seeds"] == 3).all()
    for c in ("auc_clean", "auc_iid", "auc_ood"):
        assert ((summary[f"{c}_lo"] >= 0) & (summary[f"{c}_hi"] <= 1)).all()
        assert (summary[f"{c}_lo"] <= summary[f"{c}_hi"]).all()
    assert ((summary["gap_lo"] >= -1) & (summary["gap_hi"] <= 1)).all()
    assert set(summary["resampled"]) == {
        "seeds (3) x groups (8); t with 2 (seeds) and 7 (groups) df, logit (AUC) / atanh (gap) scale"
    }
    for c in ("auc_clean", "auc_iid", "auc_ood", "gap"):
        assert (
            (summary[f"{c}_lo"] <= summary[f"{c}_mean"]) & (summary[f"{c}_mean"] <= summary[f"{c}_hi"])
        ).all()
    row = summary[(summary.init == "hi") & (summary.artifact == "hf") & (summary.prevalence == 1)].iloc[0]
    g = auc[(auc.init == "hi") & (auc.artifact == "hf") & (auc.prevalence == 1)]["gap"]
    assert row["gap_mean"] == pytest.approx(g.mean())
    # between inits: 3 vs 3 seeds cannot reach 0.05 (smallest p = 2 / C(6, 3) = 0.1): no p-value, a reason
    assert tests["p_value"].isna().all() and tests["min_p"].eq(0.1).all()
    assert tests["note"].str.contains("smallest attainable p of 0.1").all()
    assert ((tests["diff_lo"] <= tests["diff"]) & (tests["diff"] <= tests["diff_hi"])).all()
    assert set(tests["resampled"]) == {
        "seeds (3 vs 3) x groups (8); t with 2, 2 (seeds) and 7 (groups) df, raw scale"
    }
    # question 3: aligned cells have the larger gaps -> positive within-artifact statistic
    assert len(table) == 9 and len(per_seed) == 9 * 3 * 2  # two windows recorded
    prim = assoc[(assoc.primary) & (assoc.measure == "cosine") & (assoc.prevalence == 1)]
    within = prim[prim.statistic == "within_artifact"].iloc[0]
    assert within["estimate"] > 0.5 and -1 <= within["lo"] <= within["hi"] <= 1
    assert within["resampled"] == "artifacts (3) x seeds (3)"
    assert np.isnan(prim[prim.statistic == "pooled (description)"].iloc[0]["p_value"])
    # 3 inits in 3 artifacts: smallest attainable p = 2 / 6^3 < 0.05, so a p-value is given
    assert within["min_p"] == pytest.approx(2 / 216) and np.isfinite(within["p_value"])
    # window sensitivity: under the flat "none" curves the alignment is the same for every init
    none = windows[windows.window == "none"]
    assert np.allclose(none["cosine_mean"], none["cosine_mean"].iloc[0])
    assert set(assoc["window"]) == {"hann", "none"}


def test_init_tests_print_p_values_where_the_design_allows(tmp_path):
    conds = make_results(tmp_path)
    tests = run_all(tmp_path, conds, [0, 1, 2], alpha=0.2)[2]
    assert tests["p_value"].notna().all() and (tests["p_holm"] >= tests["p_value"]).all()


def test_one_seed_runs_to_tables_and_says_what_is_missing(tmp_path):
    conds = make_results(tmp_path, seeds=(0,))
    auc, summary, tests, per_seed, table, windows, assoc = run_all(tmp_path, conds, [0])
    assert (summary["n_seeds"] == 1).all()
    assert summary["resampled"].str.contains("1 seed, so seed-to-seed variation is not in the interval").all()
    assert summary["auc_clean_lo"].notna().all()  # the test-group interval is still given
    assert tests["p_value"].isna().all() and tests["note"].str.contains("1 vs 1 seeds").all()
    assert assoc[assoc.statistic == "within_artifact"]["resampled"].str.contains("1 seed").all()


def test_missing_metrics_file_is_named(tmp_path):
    make_results(tmp_path)
    (tmp_path / "eval" / "hi" / "t" / "hf" / "p1" / "seed0" / "metrics.json").unlink()
    with pytest.raises(Exception, match="seed0/metrics.json"):
        agg.load_metrics(tmp_path, INITS, ["t"], ARTIFACTS, [0, 1], [0, 1, 2])


def test_metrics_without_per_image_scores_ask_for_a_rerun(tmp_path):
    make_results(tmp_path, seeds=(0,))
    records = agg.load_metrics(tmp_path, INITS, ["t"], ARTIFACTS, [0, 1], [0])
    for r in records:
        r.pop("test")
    with pytest.raises(Exception, match="rerun the fine-tuning jobs"):
        agg.auc_summary(records, n_boot=50)
