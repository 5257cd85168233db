"""Aggregation on hand-made job outputs: tables have the right rows, values and statistics."""

from __future__ import annotations

import numpy as np
import pytest

from shortcut_psd import aggregate as agg
from shortcut_psd import spectral
from shortcut_psd.io import write_json

FREQS = np.arange(9) / 16


def _curve(path, mean):
    mean = np.asarray(mean, float)
    write_json(
        path,
        {
            "n": 10,
            "scalars": spectral.curve_scalars(mean, FREQS),
            "curve": {"freqs_cpp": FREQS, "mean": mean, "std": mean * 0, "ci_lo": mean, "ci_hi": mean},
        },
    )


def test_alignment_matches_the_spectral_module():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, q = rng.random(9), rng.random(9)
        a, b = agg.alignment(p, q), spectral.alignment(p, q)
        assert a["cosine"] == pytest.approx(b["cosine"]) and a["overlap"] == pytest.approx(b["overlap"])
    assert agg.alignment(np.ones(9), np.ones(9)) == pytest.approx({"cosine": 1.0, "overlap": 1.0})


@pytest.fixture
def results(tmp_path):
    """Two inits x two artifacts x p in {0, 1} x three seeds; init 'hi' peaks where artifact 'hf' lives."""
    low = np.exp(-FREQS / 0.05)
    high = np.exp(-(0.5 - FREQS) / 0.05)
    conds = []
    for init, curve in {"lo": low, "hi": high}.items():
        for s in range(3):
            _curve(tmp_path / "psd" / "pretrained" / init / "t" / f"seed{s}" / "psd.json", curve)
            conds.append([init, "t", "none", "0", s])
            _curve(
                tmp_path / "psd" / "finetuned" / init / "t" / "none" / "p0" / f"seed{s}" / "psd.json", curve
            )
            for art in ("lf", "hf"):
                conds.append([init, "t", art, "1", s])
                _curve(
                    tmp_path / "psd" / "finetuned" / init / "t" / art / "p1" / f"seed{s}" / "psd.json", curve
                )
                for p in ("0", "1"):
                    aligned = (init == "hi") == (art == "hf")
                    gap = (0.6 if aligned else 0.1) + 0.01 * s if p == "1" else 0.0
                    sets = {
                        k: {"auc": v, "lo": v - 0.05, "hi": v + 0.05, "n": 50}
                        for k, v in {"clean": 0.9, "iid": 0.95, "ood": 0.9 - gap}.items()
                    }
                    write_json(
                        tmp_path / "eval" / init / "t" / art / f"p{p}" / f"seed{s}" / "metrics.json",
                        {"sets": sets, "gap": gap, "best_epoch": 2},
                    )
    _curve(tmp_path / "artifacts" / "t" / "lf" / "psd.json", low)
    _curve(tmp_path / "artifacts" / "t" / "hf" / "psd.json", high)
    return tmp_path, conds


def test_tables_from_job_outputs(results):
    root, conds = results
    auc = agg.auc_table(root, conds, ["hf", "lf"])
    assert len(auc) == 2 * 2 * 2 * 3
    np.testing.assert_allclose(auc["gap"], auc["auc_clean"] - auc["auc_ood"])
    summ = agg.auc_summary(auc)
    row = summ[(summ.init == "hi") & (summ.artifact == "hf") & (summ.prevalence == 1)].iloc[0]
    assert row["gap_mean"] == pytest.approx(0.61) and row["n"] == 3
    tests = agg.init_tests(auc, n_resamples=1000, seed=0)
    assert set(tests["artifact"]) == {"hf", "lf"} and (tests["p_value"] <= 1).all()
    scalars, persistence = agg.psd_tables(root, conds, ["hi", "lo"], ["t"], [0, 1, 2])
    assert set(scalars["stage"]) == {"pre-trained", "fine-tuned"}
    np.testing.assert_allclose(persistence["l1"], 0, atol=1e-12)  # unchanged curves persist exactly
    per_seed, alignment, corr = agg.alignment_tables(
        root,
        auc,
        ["hi", "lo"],
        ["hf", "lf"],
        ["t"],
        [0, 1, 2],
        ci=0.95,
        n_permutations=1000,
        n_boot=200,
        seed=0,
    )
    assert len(alignment) == 4 and len(per_seed) == 12
    cos = corr[corr.measure == "cosine"].iloc[0]
    assert cos["rho"] > 0.5 and cos["n_pairs"] == 4  # aligned pairs have the larger gaps


def test_missing_metrics_file_is_named(results):
    root, conds = results
    (root / "eval" / "hi" / "t" / "hf" / "p1" / "seed0" / "metrics.json").unlink()
    with pytest.raises(Exception, match="seed0/metrics.json"):
        agg.auc_table(root, conds, ["hf", "lf"])
