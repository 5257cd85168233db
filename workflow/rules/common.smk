# Shared helpers: result paths, the study grid, input functions and target builders.
# The grid itself is computed by shortcut_psd.config so tests can reuse it without Snakemake.

import re
from pathlib import Path

from shortcut_psd.config import (
    CLEAN,
    artifact_seed_for,
    artifact_seeds,
    clean_model_artifacts,
    finetune_conditions,
    fmt_p,
    own_p0_artifacts,
    shortcut_prevalences,
    source_pairs,
)

R = config["results"]
SEEDS = config["seeds"]
ARTIFACTS = sorted(config["artifacts"])
INITS = sorted(config["inits"])
TARGETS = config["targets"]
NONZERO_P = [fmt_p(p) for p in config["prevalences"] if float(p) > 0]
HAS_P0 = any(float(p) == 0 for p in config["prevalences"])
CONDITIONS = finetune_conditions(config)
# p = 0: the artifacts that share the one clean model (clean images = the raw data; rule finetune, scored
# by evaluate_clean_model), and those with their own p = 0 model, trained in their shortcut job
CLEAN_MODEL_ARTIFACTS = clean_model_artifacts(config)
OWN_P0_ARTIFACTS = own_p0_artifacts(config)
ASEEDS = artifact_seeds(config)
RES = config["resources"]
GPU = config["gpus_per_job"]


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    source=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    edit=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    init=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    target=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    artifact=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    p=r"[0-9]+(\.[0-9]+)?",
    seed=r"[0-9]+",
    aseed=r"[0-9]+",


def dataset_spec(name):
    spec = dict(config["datasets"][name])
    if spec["format"] == "builtin":
        spec.setdefault("builtin", name)
    return spec


def dataset_inputs(wildcards):
    """User data sets are inputs (a changed manifest or NPZ reruns preparation); built-ins have none."""
    spec = config["datasets"][wildcards.dataset]
    return [spec["path"]] if spec["format"] != "builtin" else []


def init_checkpoint(wildcards):
    """The checkpoint an init starts from: a pipeline pre-training (per seed) or a local file."""
    spec = config["inits"][wildcards.init]
    if spec["kind"] == "source":
        return f"{R}/pretrain/{spec['source']}/{spec['edit']}/seed{wildcards.seed}/model.pt"
    if spec["kind"] == "file":
        return spec["path"]
    return []


def init_params(wildcards):
    """Everything that defines an init (its spec, the architecture) goes through params: edits rerun it."""
    return {
        "name": wildcards.init,
        "spec": config["inits"][wildcards.init],
        "arch": config["model"]["arch"],
        "model_kwargs": config["model"]["kwargs"],
    }


def artifact_dir(target, artifact, seed):
    """The artifact files (images.npz, psd.npz, psd.json) that training seed ``seed`` uses."""
    return f"{R}/artifacts/{target}/{artifact}/seed{artifact_seed_for(config, seed)}"


def artifact_images(wildcards):
    """Input of a shortcut job: its artifact's images drawn with the artifact seed of its training seed."""
    return f"{artifact_dir(wildcards.target, wildcards.artifact, wildcards.seed)}/images.npz"


def clean_model_eval_images(wildcards):
    """Input of evaluate_clean_model: the images of every artifact sharing the clean model, in
    CLEAN_MODEL_ARTIFACTS order, at the artifact seed of the training seed."""
    return [
        f"{artifact_dir(wildcards.target, a, wildcards.seed)}/images.npz"
        for a in CLEAN_MODEL_ARTIFACTS
    ]


def shortcut_jobs():
    """The shortcut fine-tuning rules as (name, artifacts, prevalences), one per distinct list of
    prevalences (the outputs of a rule cannot depend on a wildcard). ``finetune_shortcut`` trains
    every p > 0 of an artifact that shares the clean model; ``finetune_shortcut_own_p0`` also trains the
    artifact's own p = 0 model first."""
    groups = {}
    for a in ARTIFACTS:
        groups.setdefault(tuple(shortcut_prevalences(config, a)), []).append(a)
    return [
        (
            "finetune_shortcut_own_p0" if "0" in ps else "finetune_shortcut",
            arts,
            list(ps),
        )
        for ps, arts in sorted(groups.items())
        if ps
    ]


def one_of(names):
    """A wildcard constraint matching exactly one of ``names``."""
    return "|".join(re.escape(n) for n in names)


def _finetuned_of(wildcards):
    return sorted(
        (a, p)
        for (i, t, a, p, s) in CONDITIONS
        if i == wildcards.init and t == wildcards.target and s == int(wildcards.seed)
    )


def finetuned_models(wildcards):
    """Every fine-tuned model of one init, target and seed (p = 0 under artifact 'none'), in a fixed order."""
    return [
        f"{R}/finetune/{wildcards.init}/{wildcards.target}/{a}/p{p}/seed{wildcards.seed}/model.pt"
        for a, p in _finetuned_of(wildcards)
    ]


def finetuned_labels(wildcards):
    return [f"{a}/p{p}" for a, p in _finetuned_of(wildcards)]


def finetuned_psd_outputs(ext):
    conds = sorted({(a, p) for (i, t, a, p, s) in CONDITIONS})
    return [
        f"{R}/psd/finetuned/{{init}}/{{target}}/{a}/p{p}/seed{{seed}}/psd.{ext}"
        for a, p in conds
    ]


def eval_files():
    """One metrics.json per (init, target, artifact, p, seed), p = 0 included for every artifact."""
    out = []
    for init in INITS:
        for t in TARGETS:
            for seed in SEEDS:
                for a in ARTIFACTS:
                    ps = ([fmt_p(0)] if HAS_P0 else []) + NONZERO_P
                    for p in ps:
                        out.append(
                            f"{R}/eval/{init}/{t}/{a}/p{p}/seed{seed}/metrics.json"
                        )
    return out


def psd_files():
    pre = [
        f"{R}/psd/pretrained/{i}/{t}/seed{s}/psd.npz"
        for i in INITS
        for t in TARGETS
        for s in SEEDS
    ]
    fin = [
        f"{R}/psd/finetuned/{i}/{t}/{a}/p{p}/seed{s}/psd.npz"
        for (i, t, a, p, s) in CONDITIONS
    ]
    return pre + fin


def artifact_psd_files():
    """Every artifact PSD: per target, artifact and artifact seed (ASEEDS)."""
    return [
        f"{R}/artifacts/{t}/{a}/seed{s}/psd.npz"
        for t in TARGETS
        for a in ARTIFACTS
        for s in ASEEDS
    ]


def artifact_image_files():
    """One set of artifact images per target and artifact (for example figures): those of the first
    training seed's artifact seed."""
    return [
        f"{artifact_dir(t, a, SEEDS[0])}/images.npz" for t in TARGETS for a in ARTIFACTS
    ]


def source_spectrum_files():
    return [f"{R}/sources/{s}/{e}/spectrum.npz" for s, e in source_pairs(config)]


def dataset_cards():
    names = sorted(set(TARGETS) | {s for s, _ in source_pairs(config)})
    return [f"{R}/data/{d}/card.json" for d in names]


TABLES = [
    "auc",
    "auc_summary",
    "init_tests",
    "psd_scalars",
    "psd_persistence",
    "alignment",
    "alignment_windows",
    "alignment_association",
    "datasets",
]
FIGURES = [
    "source_spectra",
    "gradient_psd",
    "before_after",
    "auc_vs_prevalence",
    "alignment_vs_gap",
    "gap_heatmap",
    "examples_edits",
    "examples_artifacts",
]

# learning order (workflow/rules/dynamics.smk)
DYNAMICS_TABLES = ["dynamics_per_model", "dynamics_summary", "dynamics_tests"]
DYNAMICS_FIGURES = ["dynamics_heatmap", "dynamics_centroid", "dynamics_shortcut"]


def all_outputs():
    return (
        [f"{R}/tables/{t}.csv" for t in TABLES + DYNAMICS_TABLES]
        + [
            f"{R}/figures/{f}.{ext}"
            for f in FIGURES + DYNAMICS_FIGURES
            for ext in ("png", "pdf")
        ]
        + dataset_cards()
        + [f"{R}/run_config.yaml"]
    )


# Learning order (docs/DEFINITIONS.md, "Learning order"; workflow/rules/dynamics.smk): what a training
# job's snapshots depend on, kept as stored when the saved snapshots already cover a new schedule.
from shortcut_psd.dynamics import snapshot_params, snapshot_settings  # noqa: E402

SNAPSHOTS = snapshot_settings(config)


def pretrain_snapshots(wildcards):
    return snapshot_params(
        SNAPSHOTS,
        [
            f"{R}/pretrain/{wildcards.source}/{wildcards.edit}/seed{wildcards.seed}/dynamics.npz"
        ],
    )


def finetune_snapshots(prevalences, artifact=None):
    def params(wildcards):
        art = artifact or wildcards.artifact
        return snapshot_params(
            SNAPSHOTS,
            [
                f"{R}/finetune/{wildcards.init}/{wildcards.target}/{art}/p{p}/seed{wildcards.seed}/dynamics.npz"
                for p in prevalences
            ],
        )

    return params


# Behavioural probes (workflow/rules/probes.smk; docs/DEFINITIONS.md, "Probes").
PROBE_TABLES = ["probe_band_reliance", "probe_relations", "probe_artifact_band"]
PROBE_FIGURES = ["probe_band_reliance", "probe_heatmap"]


def probe_files():
    return [
        f"{R}/probes/{i}/{t}/seed{s}/probes.npz"
        for i in INITS
        for t in TARGETS
        for s in SEEDS
    ]


def probe_outputs():
    """The probes' tables and figures (none with probes.enabled: false)."""
    if not config["probes"]["enabled"]:
        return []
    return [f"{R}/tables/{t}.csv" for t in PROBE_TABLES] + [
        f"{R}/figures/{f}.{ext}" for f in PROBE_FIGURES for ext in ("png", "pdf")
    ]


def dynamics_entries():
    out = []
    for name, spec in sorted(config["inits"].items()):
        if spec.get("kind") == "source":
            for seed in SEEDS:
                out.append(
                    {
                        "phase": "pretrain",
                        "init": name,
                        "target": "",
                        "artifact": "",
                        "prevalence": "",
                        "seed": seed,
                        "path": f"{R}/pretrain/{spec['source']}/{spec.get('edit', 'none')}/seed{seed}/dynamics.npz",
                    }
                )
    for init, target, artifact, p, seed in CONDITIONS:
        out.append(
            {
                "phase": "finetune",
                "init": init,
                "target": target,
                "artifact": artifact,
                "prevalence": p,
                "seed": seed,
                "path": f"{R}/finetune/{init}/{target}/{artifact}/p{p}/seed{seed}/dynamics.npz",
            }
        )
    return out


DYNAMICS_ENTRIES = dynamics_entries()
