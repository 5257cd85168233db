"""Draw the report's figures from the tables and the saved spectra."""

import _common

log = _common.start(snakemake, "figures")  # noqa: F821

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from shortcut_psd import plots  # noqa: E402
from shortcut_psd.aggregate import read_curve  # noqa: E402
from shortcut_psd.clustered import seed_group_curves  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
P = sm.params
R = Path(P.results)
multi_target = len(P.targets) > 1
ASEEDS = sorted({int(v) for v in P.artifact_seeds.values()})


def out(name):
    return str(Path(sm.output[f"{name}_png"]).with_suffix(""))


def curve_rows(curve, **labels):
    return pd.DataFrame(
        {"freq": curve["freqs"], "power": curve["mean"], "lo": curve["lo"], "hi": curve["hi"], **labels}
    )


def seed_mean(paths, **labels):
    """Mean curve over seeds (each normalised to sum 1) with a band that resamples seeds and test groups."""
    curves = [read_curve(p) for p in paths]
    mean, lo, hi, _ = seed_group_curves(curves, n_boot=1000, seed=0)
    return pd.DataFrame({"freq": curves[0]["freqs"], "power": mean, "lo": lo, "hi": hi, **labels})


def artifact_curve(t, a):
    """An artifact's PSD, averaged over the artifact seeds the training seeds used."""
    curves = [read_curve(R / "artifacts" / t / a / f"seed{s}" / "psd.json") for s in ASEEDS]
    mean = np.mean([c["mean"] / c["mean"].sum() for c in curves], axis=0)
    return pd.DataFrame({"freq": curves[0]["freqs"], "power": mean})


def tlabel(init, target):
    return f"{init} ({target})" if multi_target else init


# 1. source data spectra
frames = [
    curve_rows(read_curve(R / "sources" / s / e / "spectrum.json"), label=f"{s} / {e}")
    for s, e in P.source_pairs
]
if frames:
    plots.save(plots.plot_spectra(pd.concat(frames)), out("source_spectra"))
else:
    plots.save(
        plots.plot_spectra(pd.DataFrame({"label": [], "freq": [], "power": []})), out("source_spectra")
    )

# 2. gradient PSD per init before fine-tuning, with artifact PSDs
grad = pd.concat(
    [
        seed_mean(
            [R / "psd" / "pretrained" / i / t / f"seed{s}" / "psd.json" for s in P.seeds], init=tlabel(i, t)
        )
        for i in P.inits
        for t in P.targets
    ]
)
art = pd.concat(
    [
        artifact_curve(t, a).assign(artifact=a if not multi_target else f"{a} ({t})")
        for t in P.targets
        for a in P.artifacts
    ]
)[["artifact", "freq", "power"]]
plots.save(plots.plot_gradient_psd(grad, art), out("gradient_psd"))

# 3. before vs after fine-tuning (clean p = 0 models; else the lowest prevalence present)
conds = pd.DataFrame(P.conditions, columns=["init", "target", "artifact", "p", "seed"])
p_min = conds["p"].astype(float).min()
ba = []
for i in P.inits:
    for t in P.targets:
        ba.append(
            seed_mean(
                [R / "psd" / "pretrained" / i / t / f"seed{s}" / "psd.json" for s in P.seeds],
                init=tlabel(i, t),
                stage="pre-trained",
            )
        )
        sub = conds[(conds.init == i) & (conds.target == t) & (conds.p.astype(float) == p_min)]
        # the shared clean model when there is one (an artifact's own p = 0 model sees its clean images)
        a0 = "none" if (sub["artifact"] == "none").any() else sub["artifact"].iloc[0]
        paths = [
            R / "psd" / "finetuned" / i / t / a0 / f"p{pp}" / f"seed{s}" / "psd.json"
            for pp, s in zip(sub[sub.artifact == a0].p, sub[sub.artifact == a0].seed, strict=True)
        ]
        ba.append(seed_mean(paths, init=tlabel(i, t), stage="fine-tuned"))
plots.save(plots.plot_before_after(pd.concat(ba)), out("before_after"))

# 4. AUC vs prevalence
summ = pd.read_csv(sm.input.auc_summary)
long = []
for s in ("clean", "iid", "ood"):
    d = summ[
        ["init", "target", "artifact", "prevalence", f"auc_{s}_mean", f"auc_{s}_lo", f"auc_{s}_hi"]
    ].copy()
    d.columns = ["init", "target", "artifact", "prevalence", "auc_mean", "auc_lo", "auc_hi"]
    d["test_set"] = s
    long.append(d)
long = pd.concat(long)
if multi_target:
    long["init"] = long["init"] + " (" + long["target"] + ")"
plots.save(plots.plot_auc_vs_prevalence(long.drop(columns="target")), out("auc_vs_prevalence"))

# 5. alignment vs gap at the largest prevalence; 6. gap heat map
al = pd.read_csv(sm.input.alignment)
assoc = pd.read_csv(sm.input.association)
p_max = al["prevalence"].max() if not al.empty else 1.0
al_max = al[al["prevalence"] == p_max].rename(columns={"cosine": "alignment"})
if multi_target:
    al_max = al_max.assign(init=al_max["init"] + " (" + al_max["target"] + ")")
stat = None
c = assoc[
    (assoc["prevalence"] == p_max)
    & (assoc["measure"] == "cosine")
    & assoc["primary"].astype(bool)
    & (assoc["statistic"] == "within_artifact")
]
if len(c) == 1 and not multi_target:
    r = c.iloc[0]
    stat = f"within-artifact ρ = {r['estimate']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
    stat += f", p = {r['p_value']:.2g}" if pd.notna(r["p_value"]) else " (no p-value: see table)"
plots.save(
    plots.plot_alignment_vs_gap(
        al_max[["init", "artifact", "alignment", "gap_mean", "gap_lo", "gap_hi"]],
        stat,
        title=f"Alignment vs shortcut gap (p = {p_max:g})",
        xlabel="alignment (cosine, gradient PSD vs artifact PSD)",
    ),
    out("alignment_vs_gap"),
)
plots.save(
    plots.plot_heatmap(
        al_max,
        "init",
        "artifact",
        "gap_mean",
        f"Shortcut gap AUC(clean) - AUC(ood) at p = {p_max:g}",
        cbar_label="gap",
    ),
    out("gap_heatmap"),
)

# 7. example images of each edit and artifact
rows = {}
for (s, e), path in zip(P.source_pairs, sm.input.source_data, strict=True):
    with np.load(path, allow_pickle=False) as z:
        rows[f"{s} / {e}"] = z["images"][:8, 0]
plots.save(plots.plot_examples(rows, "Source images under each edit"), out("examples_edits"))
rows = {}
for path, (t, a) in zip(
    sm.input.artifact_images, [(t, a) for t in P.targets for a in P.artifacts], strict=True
):
    with np.load(path, allow_pickle=False) as z:
        pos = np.flatnonzero(z["labels"] == 1)[:6]
        clean, arte = z["clean"][pos, 0], z["artifacted"][pos, 0]
    if not rows:
        rows[f"{t}: clean"] = clean
    rows[f"{a}"] = arte
    rows[f"{a}: difference (x4, grey = 0)"] = np.clip(0.5 + 4 * (arte - clean), 0, 1)
plots.save(plots.plot_examples(rows, "Target images with each artifact"), out("examples_artifacts"))
log.info("figures written to %s", R / "figures")
