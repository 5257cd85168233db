"""The workflow plans, lints and is formatted; config validation refuses bad configs before any job."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO, load_config, snakemake, write_config

from shortcut_psd.config import finetune_conditions, prepare


def test_snakemake_lint_is_clean():
    res = snakemake("--lint")
    assert res.returncode == 0, res.stdout
    assert "Congratulations" in res.stdout


def test_snakefmt_check_is_clean():
    files = [
        "Snakefile",
        *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk")),
    ]
    res = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *files], cwd=REPO, text=True, capture_output=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _job_counts(out: str) -> dict[str, int]:
    table = out.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("configfile", ["config.yaml", "configs/smoke.yaml"])
def test_dry_run_plans_every_stage(configfile, tmp_path):
    res = snakemake("-n", "--nolock", "--configfile", configfile, "--config", f"results={tmp_path}/r")
    assert res.returncode == 0, res.stdout[-3000:]
    counts = _job_counts(res.stdout)
    stages = [
        "prepare_dataset",
        "edit_source",
        "pretrain",
        "inject_artifact",
        "finetune",
        "evaluate_clean_model",
        "psd_pretrained",
        "psd_finetuned",
        "aggregate",
        "figures",
    ]
    for stage in stages:
        assert counts.get(stage, 0) >= 1, f"{stage} not planned for {configfile}: {counts}"
    cfg = load_config(configfile)
    prepare(cfg, check_model=False)
    conds = finetune_conditions(cfg)
    clean = [c for c in conds if c[2] == "none"]
    # one clean model per (init, target, seed); the p > 0 models of an (init, target, artifact, seed) share a job
    assert counts["finetune"] == len(clean)
    assert counts["finetune_shortcut"] == len({(i, t, a, s) for i, t, a, p, s in conds if a != "none"})
    assert not (tmp_path / "r").exists(), "a dry run must not create outputs"


def test_default_study_grid_answers_all_four_questions():
    cfg = load_config()
    prepare(cfg, check_model=False)
    kinds = {s["kind"] for s in cfg["inits"].values()}
    assert {"scratch", "source"} <= kinds
    sources = {(s.get("source"), s.get("edit")) for s in cfg["inits"].values() if s["kind"] == "source"}
    assert {("photos", "none"), ("clinical", "none"), ("photos", "whiten")} <= sources
    art_kinds = [a["kind"] for a in cfg["artifacts"].values()]
    assert {"photon_noise", "nlm_denoise", "tag"} <= set(art_kinds) and art_kinds.count("band_noise") >= 2
    assert {0, 0.5, 1} <= set(cfg["prevalences"]) and len(cfg["seeds"]) >= 2


@pytest.mark.parametrize(
    "change, key",
    [
        ({"seeds": "zero"}, "seeds"),
        ({"prevalences": [0, 1.5]}, "prevalences.1"),
        ({"artifacts": {"x": {"kind": "sparkle"}}}, "artifacts.x.kind"),
        ({"psd": {"window": "hamming"}}, "psd.window"),
        ({"image": {"size": "big"}}, "image.size"),
        ({"inits": {"a": {"kind": "source", "source": "nowhere"}}}, "inits.a.source"),
        ({"model": {"arch": "resnet_9000"}}, "model.arch"),
        ({"seeds": []}, "seeds"),
        ({"finetune": {"epocs": 3}}, "finetune"),
    ],
)
def test_bad_config_refused_by_snakemake_before_any_job(change, key, tmp_path):
    cfg = load_config()
    cfg.update(change)
    cfg["results"] = str(tmp_path / "r")
    bad = write_config(tmp_path / "bad.yaml", cfg)
    res = snakemake("-n", "--nolock", "--configfile", str(bad))
    assert res.returncode != 0
    assert key in res.stdout, res.stdout[-2000:]
    assert not (tmp_path / "r").exists()
