"""The workflow plans, lints and is formatted; config validation refuses bad configs before any job."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
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
        "probes",
        "probes_report",
    ]
    for stage in stages:
        assert counts.get(stage, 0) >= 1, f"{stage} not planned for {configfile}: {counts}"
    cfg = load_config(configfile)
    prepare(cfg, check_model=False)
    conds = finetune_conditions(cfg)
    clean = [c for c in conds if c[2] == "none"]
    # one shared clean model per (init, target, seed); the models of an (init, target, artifact, seed)
    # share a job, which also trains the artifact's own p = 0 model when its clean images are not raw
    assert counts["finetune"] == len(clean)
    jobs = {(i, t, a, s) for i, t, a, p, s in conds if a != "none"}
    own = {(i, t, a, s) for i, t, a, p, s in conds if a != "none" and p == "0"}
    assert counts.get("finetune_shortcut", 0) + counts.get("finetune_shortcut_own_p0", 0) == len(jobs)
    assert counts.get("finetune_shortcut_own_p0", 0) == len(own)
    # probes: one job per (init, target, seed), loading all of that init's fine-tuned models
    assert counts["probes"] == len({(i, t, s) for i, t, a, p, s in conds})
    assert not (tmp_path / "r").exists(), "a dry run must not create outputs"


def _planned_jobs(configfile, results, targets, *config) -> list[dict]:
    """The jobs of a dry run for ``targets``: rule name, input and output files, wildcards."""
    res = snakemake(
        "-n", "--nolock", "--configfile", str(configfile), "--config", f"results={results}", *config, "--",
        *targets,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", res.stdout)[1:]:
        job = {"rule": re.match(r"rule (\w+):", block).group(1)}
        for key in ("input", "output", "wildcards"):
            m = re.search(rf"^    {key}: (.*)$", block, re.M)
            job[key] = m.group(1).split(", ") if m else []
        jobs.append(job)
    return jobs


def _job_making(jobs, path) -> dict:
    [job] = [j for j in jobs if str(path) in j["output"]]
    return job


def _smoke_with_photon_noise(tmp_path):
    cfg = load_config("configs/smoke.yaml")
    cfg["artifacts"]["photon_noise"] = {"kind": "photon_noise", "baseline_dose": 2000.0, "dose_fraction": 0.1}
    return write_config(tmp_path / "smoke_photon.yaml", cfg)


@pytest.mark.parametrize("which", ["config.yaml", "smoke+photon_noise"])
def test_p0_model_is_shared_only_by_artifacts_whose_clean_images_are_raw(which, tmp_path):
    """docs/DEFINITIONS.md, "Baselines": photon_noise (clean = baseline-dose images) trains its own p = 0
    model on its clean images in its shortcut job; the other artifacts' p = 0 metrics come from the one
    clean model trained on the raw images (rule finetune), scored by evaluate_clean_model."""
    from shortcut_psd.config import artifact_seed_for, clean_model_artifacts, own_p0_artifacts

    configfile = REPO / "config.yaml" if which == "config.yaml" else _smoke_with_photon_noise(tmp_path)
    cfg = yaml.safe_load(Path(configfile).read_text())
    prepare(cfg, check_model=False)
    assert own_p0_artifacts(cfg) == ["photon_noise"]
    assert "tag" in clean_model_artifacts(cfg) and "photon_noise" not in clean_model_artifacts(cfg)
    conds = finetune_conditions(cfg)
    for init in cfg["inits"]:
        for seed in cfg["seeds"]:
            assert (init, "brain_tissue", "photon_noise", "0", seed) in conds
            assert (init, "brain_tissue", "none", "0", seed) in conds
            assert (init, "brain_tissue", "tag", "0", seed) not in conds

    r = tmp_path / "r"
    base = "scratch/brain_tissue/{}/p0/seed1"
    jobs = _planned_jobs(
        configfile,
        r,
        [
            f"{r}/eval/{base.format('photon_noise')}/metrics.json",
            f"{r}/eval/{base.format('tag')}/metrics.json",
            f"{r}/psd/finetuned/{base.format('photon_noise')}/psd.npz",
        ],
    )
    aseed = artifact_seed_for(cfg, 1)
    own = _job_making(jobs, f"{r}/finetune/{base.format('photon_noise')}/model.pt")
    assert own["rule"] == "finetune_shortcut_own_p0", own
    assert f"{r}/artifacts/brain_tissue/photon_noise/seed{aseed}/images.npz" in own["input"], own
    assert f"{r}/eval/{base.format('photon_noise')}/metrics.json" in own["output"]
    assert not any(f.endswith("data.npz") for f in own["input"]), own
    shared = _job_making(jobs, f"{r}/eval/{base.format('tag')}/metrics.json")
    assert shared["rule"] == "evaluate_clean_model", shared
    assert f"{r}/finetune/{base.format('none')}/model.pt" in shared["input"]
    assert f"{r}/artifacts/brain_tissue/tag/seed{aseed}/images.npz" in shared["input"]
    assert not any("photon_noise" in f for f in shared["input"] + shared["output"]), shared
    clean = _job_making(jobs, f"{r}/finetune/{base.format('none')}/model.pt")
    assert clean["rule"] == "finetune" and clean["input"][0] == f"{r}/data/brain_tissue/data.npz", clean
    psd = _job_making(jobs, f"{r}/psd/finetuned/{base.format('photon_noise')}/psd.npz")
    assert f"{r}/finetune/{base.format('photon_noise')}/model.pt" in psd["input"], psd


@pytest.mark.parametrize("follows", [True, False])
def test_artifact_seed_follows_the_training_seed(follows, tmp_path):
    """With artifact_seed_follows_seed, training seeds 0 and 1 read artifact images drawn with different
    seeds (different noise); without it, the same images."""
    from shortcut_psd.artifacts import apply_artifact
    from shortcut_psd.config import artifact_seed_for, artifact_seeds

    cfg = load_config("configs/smoke.yaml")
    cfg["artifact_seed"] = 3
    cfg["artifact_seed_follows_seed"] = follows
    configfile = write_config(tmp_path / "c.yaml", cfg)
    prepare(cfg, check_model=False)
    aseeds = [artifact_seed_for(cfg, s) for s in (0, 1)]
    assert aseeds == ([3, 4] if follows else [3, 3]) and artifact_seeds(cfg) == sorted(set(aseeds))

    r = tmp_path / "r"
    model = "scratch/brain_tissue/band_high/p1/seed{}/model.pt"
    jobs = _planned_jobs(configfile, r, [f"{r}/finetune/{model.format(s)}" for s in (0, 1)])
    read = [
        [f for f in _job_making(jobs, f"{r}/finetune/{model.format(s)}")["input"] if "artifacts" in f]
        for s in (0, 1)
    ]
    assert read == [[f"{r}/artifacts/brain_tissue/band_high/seed{a}/images.npz"] for a in aseeds]
    injected = [j for j in jobs if j["rule"] == "inject_artifact"]
    assert sorted(j["wildcards"][-1] for j in injected) == sorted(f"aseed={a}" for a in set(aseeds))

    spec = {k: v for k, v in cfg["artifacts"]["band_high"].items() if k != "kind"}
    rng = np.random.default_rng(0)
    images = rng.random((4, 1, 16, 16)).astype(np.float32)
    drawn = [apply_artifact("band_noise", images, seed=a, **spec)[1] for a in aseeds]
    assert np.array_equal(drawn[0], drawn[1]) is not follows


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
