"""End to end: configs/smoke.yaml through the whole DAG, then what an edit reruns (marked slow; CI runs it).

One session-scoped run of the smoke study (about a minute or two on 2 cores) feeds every test here:
- every table and figure exists and is well-formed (columns, finite values, PNG/PDF magic bytes);
- the HTML report is written and holds every figure;
- an unchanged rerun plans nothing;
- changing one artifact parameter plans exactly the jobs downstream of that artifact.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake, write_config

from shortcut_psd import layout

pytestmark = pytest.mark.slow

SMOKE = REPO / "configs" / "smoke.yaml"
TABLE_COLUMNS = {
    "auc": ["init", "target", "artifact", "prevalence", "seed", "auc_clean", "auc_iid", "auc_ood", "gap"],
    "auc_summary": [
        "init",
        "artifact",
        "prevalence",
        "auc_clean_mean",
        "auc_clean_lo",
        "auc_clean_hi",
        "auc_ood_mean",
        "gap_mean",
        "gap_lo",
        "gap_hi",
        "n_seeds",
        "n_groups",
        "resampled",
    ],
    "init_tests": [
        "artifact",
        "prevalence",
        "init_a",
        "init_b",
        "diff",
        "diff_lo",
        "diff_hi",
        "p_value",
        "min_p",
        "note",
    ],
    "psd_scalars": [
        "stage",
        "init",
        "seed",
        "centroid_cpp",
        "frac_low",
        "frac_mid",
        "frac_high",
        "loglog_slope",
    ],
    "psd_persistence": [
        "init",
        "artifact",
        "prevalence",
        "seed",
        "l1",
        "js",
        "cosine_similarity",
        "centroid_change",
    ],
    "alignment": ["init", "artifact", "prevalence", "cosine", "overlap", "gap_mean", "gap_lo", "gap_hi"],
    "alignment_windows": ["init", "artifact", "window", "primary", "cosine_mean", "overlap_mean"],
    "alignment_association": [
        "prevalence",
        "measure",
        "window",
        "primary",
        "statistic",
        "estimate",
        "lo",
        "hi",
        "p_value",
        "min_p",
        "n_artifacts",
        "n_seeds",
        "resampled",
        "note",
    ],
    "datasets": ["dataset", "split", "class", "images"],
    "probe_band_reliance": [
        "init",
        "model",
        "band",
        "band_lo_cpp",
        "auc_clean",
        "auc_remove",
        "auc_keep",
        "reliance",
        "reliance_lo",
        "reliance_hi",
        "acc_keep",
        "resampled",
    ],
    "probe_relations": ["init", "stage", "view_a", "view_b", "spearman_rho", "n_bands", "p", "note"],
    "probe_artifact_band": ["init", "artifact", "prevalence", "band", "reliance", "gap", "resampled"],
    "dynamics_summary": [
        "phase",
        "init",
        "artifact",
        "prevalence",
        "quantity",
        "mean",
        "lo",
        "hi",
        "n_seeds",
        "resampled",
    ],
    "dynamics_tests": [
        "phase",
        "artifact",
        "prevalence",
        "quantity",
        "natural",
        "medical",
        "difference",
        "p",
        "n_natural",
        "n_medical",
        "min_p",
        "note",
    ],  # fmt: skip
}
#: every registered figure (one registry: shortcut_psd.layout), which must include these
FIGURES = [o.name for o in layout.outputs(kind="figure")]
KNOWN_FIGURES = {
    "source_spectra",
    "gradient_psd",
    "before_after",
    "auc_vs_prevalence",
    "alignment_vs_gap",
    "gap_heatmap",
    "examples_edits",
    "examples_artifacts",
    "probe_band_reliance",
    "probe_heatmap",
    "dynamics_heatmap",
    "dynamics_centroid",
    "dynamics_shortcut",
}
TABLES = [o.name for o in layout.outputs(kind="table")]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run the smoke study once into a temporary results folder; yield (config path, results path)."""
    base = tmp_path_factory.mktemp("smoke")
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["results"] = str(base / "results")
    cfg_path = write_config(base / "smoke.yaml", cfg)
    res = snakemake("--cores", "2", "--configfile", str(cfg_path), timeout=1500)
    assert res.returncode == 0, res.stdout[-6000:]
    report = base / "results" / "report.html"
    rep = snakemake("--cores", "1", "--configfile", str(cfg_path), "--report", str(report), timeout=600)
    assert rep.returncode == 0, rep.stdout[-4000:]
    yield cfg_path, base / "results", res.stdout
    shutil.rmtree(base, ignore_errors=True)


def test_every_table_is_well_formed(smoke):
    _, results, _ = smoke
    assert set(TABLE_COLUMNS) <= set(TABLES) and KNOWN_FIGURES <= set(FIGURES)
    for name in TABLES:
        assert len(pd.read_csv(results / "tables" / f"{name}.csv")) > 0, name
    for name, cols in TABLE_COLUMNS.items():
        df = pd.read_csv(results / "tables" / f"{name}.csv")
        assert len(df) > 0, name
        missing = [c for c in cols if c not in df.columns]
        assert not missing, f"{name} lacks {missing}"
    auc = pd.read_csv(results / "tables" / "auc.csv")
    for c in ("auc_clean", "auc_iid", "auc_ood"):
        assert auc[c].between(0, 1).all(), c
    np.testing.assert_allclose(auc["gap"], auc["auc_clean"] - auc["auc_ood"], atol=1e-5)
    # 3 inits x 2 artifacts x {0, 1} x 2 seeds, p = 0 models scored on every artifact
    assert len(auc) == 3 * 2 * 2 * 2
    summ = pd.read_csv(results / "tables" / "auc_summary.csv")
    # intervals inside the AUC's range (a t interval on the logit scale)
    for c in ("auc_clean", "auc_iid", "auc_ood"):
        assert summ[f"{c}_lo"].between(0, 1).all() and summ[f"{c}_hi"].between(0, 1).all(), c
    assert summ["resampled"].str.startswith("seeds (2) x groups (").all()
    tests = pd.read_csv(results / "tables" / "init_tests.csv")
    assert tests["p_value"].isna().all() and tests["note"].str.contains("smallest attainable p").all()
    scal = pd.read_csv(results / "tables" / "psd_scalars.csv")
    fr = scal[["frac_low", "frac_mid", "frac_high"]].sum(axis=1)
    np.testing.assert_allclose(fr, 1.0, atol=1e-4)


def test_probe_tables_stay_in_range(smoke):
    """Probes (docs/DEFINITIONS.md, "Probes"): every init before and after fine-tuning, intervals in range,
    no p-value for the across-band rank correlations."""
    _, results, _ = smoke
    rel = pd.read_csv(results / "tables" / "probe_band_reliance.csv")
    assert {"pretrained", "none/p0"} <= set(rel["model"])
    assert rel[["auc_keep_lo", "auc_keep_hi"]].stack().between(0, 1).all()
    assert rel[["reliance_lo", "reliance_hi"]].stack().between(-1, 1).all()
    assert rel["resampled"].str.fullmatch(r"seeds \(2, t 1 df\) x groups \(\d+, t \d+ df\)").all()
    links = pd.read_csv(results / "tables" / "probe_relations.csv")
    assert set(links["stage"]) == {"before", "after"} and links["p"].isna().all()
    own = pd.read_csv(results / "tables" / "probe_artifact_band.csv")
    band_high = own[own.artifact == "band_high"]
    assert (band_high["band_lo_cpp"] >= 0.25).all()


def test_dynamics_tables(smoke):
    """Learning order (docs/DEFINITIONS.md, "Learning order"): every trained model has snapshots; intervals
    over seeds hold the mean; no natural vs medical test without medical inits."""
    _, results, _ = smoke
    per = pd.read_csv(results / "tables" / "dynamics_per_model.csv")
    assert set(per["phase"]) == {"pretrain", "finetune"}
    assert len(per[per.phase == "finetune"]) == 3 * 2 * 2 + 3 * 2  # p = 1 models and the clean models
    ft = per[(per.phase == "finetune")]
    assert ft["step_gap"].notna().any() and ft["centroid_end"].between(0, 0.5).all()
    summ = pd.read_csv(results / "tables" / "dynamics_summary.csv")
    ok = summ.dropna(subset=["lo"])
    assert len(ok) and ((ok["lo"] <= ok["mean"] + 1e-12) & (ok["mean"] <= ok["hi"] + 1e-12)).all()
    assert summ["resampled"].str.startswith(("seeds (2", "none")).all()
    tests = pd.read_csv(results / "tables" / "dynamics_tests.csv")
    assert tests["p"].isna().all() and tests["note"].str.len().gt(0).all()


def test_fewer_snapshot_steps_retrain_nothing(smoke, tmp_path):
    """Saved snapshots that cover a smaller schedule keep training's params unchanged: only rule dynamics reruns."""
    cfg_path, _, _ = smoke
    cfg = yaml.safe_load(Path(cfg_path).read_text())
    cfg["dynamics"]["log_steps"] = 1
    edited = write_config(tmp_path / "fewer.yaml", cfg)
    res = snakemake("-n", "--configfile", str(edited))
    assert res.returncode == 0, res.stdout[-3000:]
    rules = {r for r, _ in _planned(res.stdout)}
    training = {
        "pretrain",
        "finetune",
        "finetune_shortcut",
        "finetune_shortcut_own_p0",
        "evaluate_clean_model",
    }
    assert "dynamics" in rules and not rules & (training | {"psd_pretrained", "psd_finetuned"}), rules


def test_shortcut_effect_visible_in_smoke_output(smoke):
    """The tag artifact at p = 1 is learned: ood AUC falls far below clean AUC for every init."""
    _, results, _ = smoke
    s = pd.read_csv(results / "tables" / "auc_summary.csv")
    tag1 = s[(s.artifact == "tag") & (s.prevalence == 1)]
    tag0 = s[(s.artifact == "tag") & (s.prevalence == 0)]
    assert (tag1["gap_mean"] > 0.3).all(), tag1
    assert (tag0["gap_mean"].abs() < 0.1).all(), tag0


def test_every_figure_and_report(smoke):
    _, results, _ = smoke
    for f in FIGURES:
        png = (results / "figures" / f"{f}.png").read_bytes()
        pdf = (results / "figures" / f"{f}.pdf").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, f
        assert pdf[:5] == b"%PDF-" and len(pdf) > 1000, f
    html = (results / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for f in FIGURES:
        assert f"{f}.png" in html, f"report lacks {f}"
    for d in ("brain_tissue", "photos"):
        card = json.loads((results / "data" / d / "card.json").read_text())
        assert card["counts"], d


def _planned(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", out):
        m = re.match(r"rule (\w+):", block.strip())
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        jobs.append((m.group(1), wildcards))
    return jobs


def test_unchanged_rerun_plans_nothing(smoke):
    cfg_path, _, _ = smoke
    res = snakemake("-n", "--configfile", str(cfg_path))
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Nothing to be done" in res.stdout, res.stdout[-3000:]


def test_editing_one_artifact_plans_exactly_its_downstream_jobs(smoke, tmp_path):
    cfg_path, results, _ = smoke
    cfg = yaml.safe_load(Path(cfg_path).read_text())
    cfg["artifacts"]["band_high"]["amplitude"] = 0.7
    edited = write_config(tmp_path / "edited.yaml", cfg)
    res = snakemake("-n", "--configfile", str(edited))
    assert res.returncode == 0, res.stdout[-3000:]
    jobs = _planned(res.stdout)
    rules = {r for r, _ in jobs}
    # upstream of the artifact, or other artifacts' models: never planned
    assert not rules & {"prepare_dataset", "edit_source", "pretrain", "psd_pretrained"}, rules
    # one artifact image set per artifact seed (artifact_seed + training seed: seeds 0 and 1)
    assert sorted((w["aseed"], w["artifact"]) for r, w in jobs if r == "inject_artifact") == [
        ("0", "band_high"),
        ("1", "band_high"),
    ]
    assert "finetune" not in rules, "the clean (p = 0) models do not depend on any artifact"
    finetunes = [w for r, w in jobs if r == "finetune_shortcut"]
    assert finetunes and all(w["artifact"] == "band_high" for w in finetunes), finetunes
    assert len(finetunes) == 3 * 2  # 3 inits x 2 seeds (the p > 0 models of each share a job)
    # downstream of the artifact: the clean models' scoring on it, PSDs of the refitted models, tables
    assert {"evaluate_clean_model", "psd_finetuned", "aggregate", "figures"} <= rules


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    """A study with one seed, two inits and photon noise (its own p = 0 baseline), run to the report."""
    base = tmp_path_factory.mktemp("one_seed")
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg.update(results=str(base / "results"), seeds=[0])
    cfg["inits"] = {k: v for k, v in cfg["inits"].items() if k in ("scratch", "photos")}
    cfg["artifacts"] = {
        "tag": {"kind": "tag"},
        "photon_noise": {"kind": "photon_noise", "baseline_dose": 2000.0, "dose_fraction": 0.1},
    }
    cfg_path = write_config(base / "one_seed.yaml", cfg)
    res = snakemake("--cores", "2", "--configfile", str(cfg_path), timeout=1500)
    assert res.returncode == 0, res.stdout[-6000:]
    rep = snakemake("--cores", "1", "--configfile", str(cfg_path), "--report", str(base / "report.html"))
    assert rep.returncode == 0, rep.stdout[-4000:]
    yield base / "results", res.stdout
    shutil.rmtree(base, ignore_errors=True)


def test_one_seed_runs_to_the_report_and_says_what_is_missing(one_seed):
    results, log = one_seed
    summ = pd.read_csv(results / "tables" / "auc_summary.csv")
    assert (summ["n_seeds"] == 1).all() and summ["auc_clean_lo"].notna().all()
    assert summ["resampled"].str.contains("1 seed, so seed-to-seed variation is not in the interval").all()
    tests = pd.read_csv(results / "tables" / "init_tests.csv")
    assert tests["p_value"].isna().all() and tests["note"].str.contains("1 vs 1 seeds").all()
    assoc = pd.read_csv(results / "tables" / "alignment_association.csv")
    within = assoc[assoc.statistic == "within_artifact"]
    assert within["p_value"].isna().all() and within["note"].str.contains("at least 3 inits").all()
    dyn = pd.read_csv(results / "tables" / "dynamics_summary.csv")
    assert dyn["lo"].isna().all() and dyn["resampled"].str.contains("seed variation absent|no finite").all()
    probe = pd.read_csv(results / "tables" / "probe_band_reliance.csv")  # probes run with one seed
    assert probe["resampled"].str.fullmatch(r"groups \(\d+, t \d+ df\); one seed").all()
    assert probe["reliance_lo"].notna().all()
    # photon noise's p = 0 model is its own (trained on baseline-dose images), in its shortcut job
    own = results / "finetune" / "photos" / "brain_tissue" / "photon_noise" / "p0" / "seed0" / "model.pt"
    assert own.exists()
    assert not (results / "finetune" / "photos" / "brain_tissue" / "tag" / "p0").exists()
