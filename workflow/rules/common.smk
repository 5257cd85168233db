# Shared helpers: result paths, the study grid, input functions and target builders.
# The grid itself is computed by shortcut_psd.config so tests can reuse it without Snakemake. Every path is
# a pattern of shortcut_psd.layout (the results layout, written once; L below); the report's tables and
# figures, with their captions and the inputs they read, come from its registry (layout.outputs).

import re

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
from shortcut_psd.layout import Layout, needs, output_files, outputs, p0_models

R = config["results"]
L = Layout(R)
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
# per artifact, the artifact folder of its p = 0 model (CLEAN or its own; empty without p = 0)
P0_MODELS = p0_models(config)
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
        return L.pattern(
            "pretrain_model",
            source=spec["source"],
            edit=spec["edit"],
            seed=wildcards.seed,
        )
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


def artifact_file(kind, target, artifact, seed):
    """An artifact file (artifact_images, artifact_psd) that training seed ``seed`` uses."""
    return L.pattern(
        kind, target=target, artifact=artifact, aseed=artifact_seed_for(config, seed)
    )


def artifact_images(wildcards):
    """Input of a shortcut job: its artifact's images drawn with the artifact seed of its training seed."""
    return artifact_file(
        "artifact_images", wildcards.target, wildcards.artifact, wildcards.seed
    )


def clean_model_eval_images(wildcards):
    """Input of evaluate_clean_model: the images of every artifact sharing the clean model, in
    CLEAN_MODEL_ARTIFACTS order, at the artifact seed of the training seed."""
    return [
        artifact_file("artifact_images", wildcards.target, a, wildcards.seed)
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
        L.pattern(
            "finetune_model",
            init=wildcards.init,
            target=wildcards.target,
            artifact=a,
            p=p,
            seed=wildcards.seed,
        )
        for a, p in _finetuned_of(wildcards)
    ]


def finetuned_labels(wildcards):
    return [f"{a}/p{p}" for a, p in _finetuned_of(wildcards)]


def finetuned_psd_outputs(kind):
    """Outputs of psd_finetuned (kind psd_finetuned or psd_finetuned_json): one per fine-tuned model."""
    conds = sorted({(a, p) for (i, t, a, p, s) in CONDITIONS})
    return [L.pattern(kind, artifact=a, p=p) for a, p in conds]


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
                            L.pattern(
                                "eval_metrics",
                                init=init,
                                target=t,
                                artifact=a,
                                p=p,
                                seed=seed,
                            )
                        )
    return out


def pretrained_psd_files():
    return [
        L.pattern("psd_pretrained", init=i, target=t, seed=s)
        for i in INITS
        for t in TARGETS
        for s in SEEDS
    ]


def finetuned_psd_files():
    return [
        L.pattern("psd_finetuned", init=i, target=t, artifact=a, p=p, seed=s)
        for (i, t, a, p, s) in CONDITIONS
    ]


def artifact_psd_files():
    """Every artifact PSD: per target, artifact and artifact seed (ASEEDS)."""
    return [
        L.pattern("artifact_psd", target=t, artifact=a, aseed=s)
        for t in TARGETS
        for a in ARTIFACTS
        for s in ASEEDS
    ]


def artifact_image_files():
    """One set of artifact images per target and artifact (for example figures): those of the first
    training seed's artifact seed."""
    return [
        artifact_file("artifact_images", t, a, SEEDS[0])
        for t in TARGETS
        for a in ARTIFACTS
    ]


def source_data_files():
    return [L.pattern("source_data", source=s, edit=e) for s, e in source_pairs(config)]


def source_spectrum_files():
    return [
        L.pattern("source_spectrum", source=s, edit=e) for s, e in source_pairs(config)
    ]


def dataset_cards():
    names = sorted(set(TARGETS) | {s for s, _ in source_pairs(config)})
    return [L.pattern("card", dataset=d) for d in names]


def probe_files():
    return [
        L.pattern("probes", init=i, target=t, seed=s)
        for i in INITS
        for t in TARGETS
        for s in SEEDS
    ]


# The files of each kind (shortcut_psd.layout.FILES) that the report's tables and figures read, over the
# whole study: a registered table or figure names the kinds it needs (layout.outputs(...).needs).
STUDY_FILES = {
    "eval_metrics": eval_files,
    "psd_pretrained": pretrained_psd_files,
    "psd_finetuned": finetuned_psd_files,
    "artifact_psd": artifact_psd_files,
    "artifact_images": artifact_image_files,
    "source_data": source_data_files,
    "source_spectrum": source_spectrum_files,
    "card": dataset_cards,
    "probes": probe_files,
}


def report_inputs(rule):
    """The inputs of a rule writing registered tables and figures, named by kind (the scripts look them
    up by kind and wildcards: shortcut_psd.layout.Inputs): what its outputs need."""
    return {
        kind: (
            [L.pattern("table", name=n) for n in names]
            if kind == "table"
            else STUDY_FILES[kind]()
        )
        for kind, names in needs(rule).items()
    }


REPORT_CATEGORY = {"table": "3. Tables", "figure": "2. Figures"}


def report_outputs(rule):
    """The registered tables and figures of ``rule`` as its named outputs; each table and each figure's
    PNG in the report, with its caption (workflow/report/)."""
    out = {}
    for o in outputs(rule):
        for key, rel in o.keys.items():
            out[key] = L.under(rel)
            if key == o.report_key:
                out[key] = report(
                    out[key],
                    caption=f"../report/{o.caption}",
                    category=REPORT_CATEGORY[o.kind],
                    labels={o.kind: o.name},
                )
    return out


def report_files(*rules):
    """Every table and figure file that ``rules`` write."""
    return [L.under(f) for f in output_files(rules)]


def all_outputs():
    return (
        report_files("aggregate", "figures", "dynamics")
        + dataset_cards()
        + [L.pattern("run_config")]
    )


# Learning order (docs/DEFINITIONS.md, "Learning order"; workflow/rules/dynamics.smk): what a training
# job's snapshots depend on, kept as stored when the saved snapshots already cover a new schedule.
from shortcut_psd.dynamics import snapshot_params, snapshot_settings  # noqa: E402

SNAPSHOTS = snapshot_settings(config)


def pretrain_snapshots(wildcards):
    return snapshot_params(
        SNAPSHOTS,
        [
            L.pattern(
                "pretrain_dynamics",
                source=wildcards.source,
                edit=wildcards.edit,
                seed=wildcards.seed,
            )
        ],
    )


def finetune_snapshots(prevalences, artifact=None):
    def params(wildcards):
        art = artifact or wildcards.artifact
        return snapshot_params(
            SNAPSHOTS,
            [
                L.pattern(
                    "finetune_dynamics",
                    init=wildcards.init,
                    target=wildcards.target,
                    artifact=art,
                    p=p,
                    seed=wildcards.seed,
                )
                for p in prevalences
            ],
        )

    return params


# Behavioural probes (workflow/rules/probes.smk; docs/DEFINITIONS.md, "Probes").
def probe_outputs():
    """The probes' tables and figures (none with probes.enabled: false)."""
    if not config["probes"]["enabled"]:
        return []
    return report_files("probes_report")


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
                        "path": L.pattern(
                            "pretrain_dynamics",
                            source=spec["source"],
                            edit=spec.get("edit", "none"),
                            seed=seed,
                        ),
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
                "path": L.pattern(
                    "finetune_dynamics",
                    init=init,
                    target=target,
                    artifact=artifact,
                    p=p,
                    seed=seed,
                ),
            }
        )
    return out


DYNAMICS_ENTRIES = dynamics_entries()
