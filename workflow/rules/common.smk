# Shared helpers: result paths, the study grid, input functions and target builders.
# The grid itself is computed by shortcut_psd.config so tests can reuse it without Snakemake.

from pathlib import Path

from shortcut_psd.config import (
    CLEAN,
    finetune_conditions,
    fmt_p,
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
    return [f"{R}/artifacts/{t}/{a}/psd.npz" for t in TARGETS for a in ARTIFACTS]


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
    "alignment_correlation",
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


def all_outputs():
    return (
        [f"{R}/tables/{t}.csv" for t in TABLES]
        + [f"{R}/figures/{f}.{ext}" for f in FIGURES for ext in ("png", "pdf")]
        + dataset_cards()
        + [f"{R}/run_config.yaml"]
    )
