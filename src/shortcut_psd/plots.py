"""Seaborn figures for the report: the figures of rule ``figures``, and every ``plot_*`` function.

Every ``plot_*`` function takes a long (tidy) pandas frame with the columns named in its docstring,
returns a :class:`matplotlib.figure.Figure` and never shows it; :func:`save` writes ``{stem}.png`` and
``{stem}.pdf`` atomically and closes the figure. A missing column raises :class:`ColumnError` (a
``ValueError``) that names it.

Conventions: seaborn ``whitegrid`` style and ``colorblind`` palette applied per figure (global
matplotlib settings are left alone); power axes are log-scaled; the frequency axis is "spatial frequency
(cycles/pixel)"; each init keeps the same colour in every figure (colours follow the sorted init names);
every figure has a title.

The report's figures of rule ``figures`` are registered here: each is one function, decorated with
:func:`shortcut_psd.layout.figure` (name, rule, the inputs it reads; caption
``workflow/report/fig_{name}.rst``), that draws it from the rule's study object (:class:`FigureData`).
Adding a figure is adding such a function, its caption and its test: the rule's outputs, its inputs and the
report follow from the registry. The figures of rule ``dynamics`` are registered in
:mod:`shortcut_psd.aggregate_dynamics` (re-exported here).

The drawing lives in one module per topic; this module re-exports their names, so ``from shortcut_psd
import plots`` keeps working:

- :mod:`shortcut_psd.plots_style`: shared style, colours, legends, column checks and :func:`save`;
- :mod:`shortcut_psd.plots_psd`: spectra (``plot_spectra``, ``plot_gradient_psd``, ``plot_before_after``);
- :mod:`shortcut_psd.plots_shortcut`: shortcut results (``plot_auc_vs_prevalence``,
  ``plot_alignment_vs_gap``);
- :mod:`shortcut_psd.plots_images`: grids (``plot_examples``, ``plot_heatmap``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from shortcut_psd import layout
from shortcut_psd.aggregate_dynamics import figure_dynamics_centroid as figure_dynamics_centroid
from shortcut_psd.aggregate_dynamics import figure_dynamics_heatmap as figure_dynamics_heatmap
from shortcut_psd.aggregate_dynamics import figure_dynamics_shortcut as figure_dynamics_shortcut
from shortcut_psd.clustered import seed_group_curves
from shortcut_psd.layout import Inputs, figure
from shortcut_psd.plots_images import _as_stack as _as_stack
from shortcut_psd.plots_images import plot_examples, plot_heatmap
from shortcut_psd.plots_psd import STAGES as STAGES
from shortcut_psd.plots_psd import plot_before_after, plot_gradient_psd, plot_spectra
from shortcut_psd.plots_shortcut import _MARKERS as _MARKERS
from shortcut_psd.plots_shortcut import _TEST_STYLE as _TEST_STYLE
from shortcut_psd.plots_shortcut import TEST_SETS, plot_alignment_vs_gap, plot_auc_vs_prevalence
from shortcut_psd.plots_style import _BAND_ALPHA as _BAND_ALPHA
from shortcut_psd.plots_style import FREQ_LABEL, save
from shortcut_psd.plots_style import _colours as _colours
from shortcut_psd.plots_style import _curve as _curve
from shortcut_psd.plots_style import _freq_axis as _freq_axis
from shortcut_psd.plots_style import _has_band as _has_band
from shortcut_psd.plots_style import _legend_outside as _legend_outside
from shortcut_psd.plots_style import _nonempty as _nonempty
from shortcut_psd.plots_style import _require as _require
from shortcut_psd.plots_style import _styled as _styled
from shortcut_psd.plots_style import _two_legends_outside as _two_legends_outside
from shortcut_psd.plots_style import _unique as _unique
from shortcut_psd.stats import ColumnError
from shortcut_psd.tables_psd import read_curve

__all__ = [
    "ColumnError",
    "FREQ_LABEL",
    "save",
    "plot_spectra",
    "plot_gradient_psd",
    "plot_before_after",
    "plot_auc_vs_prevalence",
    "plot_alignment_vs_gap",
    "plot_examples",
    "plot_heatmap",
]


# --------------------------------------------------------------------------------------------------
# The report's figures (registered: shortcut_psd.layout.outputs). A figure is one function of the
# rule's study object that returns the Figure; the rule writes it to figures/{name}.png and .pdf.
# --------------------------------------------------------------------------------------------------


class FigureData:
    """What the figures of rule ``figures`` are drawn from: the job's input files (``files``, looked up by
    kind: shortcut_psd.layout.Inputs) and the study's settings (the rule's params: inits, targets,
    artifacts, seeds, conditions, source_pairs, artifact_seeds, p0_models)."""

    def __init__(self, files: Inputs, params: Mapping[str, Any]) -> None:
        self.files = files
        self.params = params
        self.multi_target = len(params["targets"]) > 1
        #: training seed -> the artifact seed of its artifact images
        self.artifact_seeds = {int(k): int(v) for k, v in params["artifact_seeds"].items()}
        self.aseeds = sorted(set(self.artifact_seeds.values()))
        self._tables: dict[str, pd.DataFrame] = {}

    def table(self, name: str) -> pd.DataFrame:
        """A table written by rule aggregate (read once)."""
        if name not in self._tables:
            self._tables[name] = pd.read_csv(self.files.path("table", name=name))
        return self._tables[name]

    def tlabel(self, init: str, target: str) -> str:
        return f"{init} ({target})" if self.multi_target else init

    def seed_mean(self, paths: Sequence[str | os.PathLike], /, **labels: Any) -> pd.DataFrame:
        """Mean curve over seeds (each normalised to sum 1) with a band that resamples seeds and groups."""
        curves = [read_curve(p) for p in paths]
        mean, lo, hi, _ = seed_group_curves(curves, n_boot=1000, seed=0)
        return pd.DataFrame({"freq": curves[0]["freqs"], "power": mean, "lo": lo, "hi": hi, **labels})

    def pretrained(self, init: str, target: str, /, **labels: Any) -> pd.DataFrame:
        """:meth:`seed_mean` of an init's gradient PSDs before fine-tuning, over the training seeds."""
        paths = [
            self.files.path("psd_pretrained", init=init, target=target, seed=s) for s in self.params["seeds"]
        ]
        return self.seed_mean(paths, **labels)

    def artifact_curve(self, target: str, artifact: str) -> pd.DataFrame:
        """An artifact's PSD, averaged over the artifact seeds the training seeds used."""
        curves = [
            read_curve(self.files.path("artifact_psd", target=target, artifact=artifact, aseed=s))
            for s in self.aseeds
        ]
        mean = np.mean([c["mean"] / c["mean"].sum() for c in curves], axis=0)
        return pd.DataFrame({"freq": curves[0]["freqs"], "power": mean})


def _curve_rows(curve: Mapping[str, Any], /, **labels: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {"freq": curve["freqs"], "power": curve["mean"], "lo": curve["lo"], "hi": curve["hi"], **labels}
    )


@figure("source_spectra", rule="figures", needs=("source_spectrum",))
def figure_source_spectra(data: FigureData) -> Figure:
    """Radial spectra of every (source, edit) pre-training set."""
    frames = [
        _curve_rows(read_curve(data.files.path("source_spectrum", source=s, edit=e)), label=f"{s} / {e}")
        for s, e in data.params["source_pairs"]
    ]
    if not frames:
        return plot_spectra(pd.DataFrame({"label": [], "freq": [], "power": []}))
    return plot_spectra(pd.concat(frames))


@figure("gradient_psd", rule="figures", needs=("psd_pretrained", "artifact_psd"))
def figure_gradient_psd(data: FigureData) -> Figure:
    """Gradient PSD per init before fine-tuning, with the artifact PSDs."""
    p = data.params
    grad = pd.concat(
        [data.pretrained(i, t, init=data.tlabel(i, t)) for i in p["inits"] for t in p["targets"]]
    )
    art = pd.concat(
        [
            data.artifact_curve(t, a).assign(artifact=a if not data.multi_target else f"{a} ({t})")
            for t in p["targets"]
            for a in p["artifacts"]
        ]
    )[["artifact", "freq", "power"]]
    return plot_gradient_psd(grad, art)


@figure("before_after", rule="figures", needs=("psd_pretrained", "psd_finetuned"))
def figure_before_after(data: FigureData) -> Figure:
    """Gradient PSD before vs after fine-tuning: the p = 0 model that stands for the init after fine-tuning
    (shortcut_psd.layout.after_model), else the first model at the lowest prevalence studied."""
    p = data.params
    conds = pd.DataFrame(p["conditions"], columns=["init", "target", "artifact", "p", "seed"])
    p_min = conds["p"].astype(float).min()
    after = layout.after_model(p["p0_models"])
    frames = []
    for i in p["inits"]:
        for t in p["targets"]:
            frames.append(data.pretrained(i, t, init=data.tlabel(i, t), stage="pre-trained"))
            sub = conds[(conds.init == i) & (conds.target == t) & (conds.p.astype(float) == p_min)]
            a0 = after if p_min == 0 and after is not None else sub["artifact"].iloc[0]
            mine = sub[sub.artifact == a0]
            paths = [
                data.files.path("psd_finetuned", init=i, target=t, artifact=a0, p=pp, seed=s)
                for pp, s in zip(mine.p, mine.seed, strict=True)
            ]
            frames.append(data.seed_mean(paths, init=data.tlabel(i, t), stage="fine-tuned"))
    return plot_before_after(pd.concat(frames))


@figure("auc_vs_prevalence", rule="figures", needs=("table:auc_summary",))
def figure_auc_vs_prevalence(data: FigureData) -> Figure:
    """AUC on the clean, iid and ood test sets against the prevalence p, per init and artifact."""
    summ = data.table("auc_summary")
    long = []
    for s in TEST_SETS:
        d = summ[
            ["init", "target", "artifact", "prevalence", f"auc_{s}_mean", f"auc_{s}_lo", f"auc_{s}_hi"]
        ].copy()
        d.columns = ["init", "target", "artifact", "prevalence", "auc_mean", "auc_lo", "auc_hi"]
        d["test_set"] = s
        long.append(d)
    long = pd.concat(long)
    if data.multi_target:
        long["init"] = long["init"] + " (" + long["target"] + ")"
    return plot_auc_vs_prevalence(long.drop(columns="target"))


def _alignment_at_max(data: FigureData) -> tuple[pd.DataFrame, float]:
    al = data.table("alignment")
    p_max = al["prevalence"].max() if not al.empty else 1.0
    al_max = al[al["prevalence"] == p_max].rename(columns={"cosine": "alignment"})
    if data.multi_target:
        al_max = al_max.assign(init=al_max["init"] + " (" + al_max["target"] + ")")
    return al_max, p_max


@figure("alignment_vs_gap", rule="figures", needs=("table:alignment", "table:alignment_association"))
def figure_alignment_vs_gap(data: FigureData) -> Figure:
    """Alignment of gradient and artifact PSDs against the shortcut gap, at the largest prevalence."""
    al_max, p_max = _alignment_at_max(data)
    assoc = data.table("alignment_association")
    stat = None
    c = assoc[
        (assoc["prevalence"] == p_max)
        & (assoc["measure"] == "cosine")
        & assoc["primary"].astype(bool)
        & (assoc["statistic"] == "within_artifact")
    ]
    if len(c) == 1 and not data.multi_target:
        r = c.iloc[0]
        stat = f"within-artifact ρ = {r['estimate']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
        stat += f", p = {r['p_value']:.2g}" if pd.notna(r["p_value"]) else " (no p-value: see table)"
    return plot_alignment_vs_gap(
        al_max[["init", "artifact", "alignment", "gap_mean", "gap_lo", "gap_hi"]],
        stat,
        title=f"Alignment vs shortcut gap (p = {p_max:g})",
        xlabel="alignment (cosine, gradient PSD vs artifact PSD)",
    )


@figure("gap_heatmap", rule="figures", needs=("table:alignment",))
def figure_gap_heatmap(data: FigureData) -> Figure:
    """Shortcut gap per init and artifact at the largest prevalence."""
    al_max, p_max = _alignment_at_max(data)
    return plot_heatmap(
        al_max,
        "init",
        "artifact",
        "gap_mean",
        f"Shortcut gap AUC(clean) - AUC(ood) at p = {p_max:g}",
        cbar_label="gap",
    )


@figure("examples_edits", rule="figures", needs=("source_data",))
def figure_examples_edits(data: FigureData) -> Figure:
    """Example source images under each edit."""
    rows = {}
    for s, e in data.params["source_pairs"]:
        with np.load(data.files.path("source_data", source=s, edit=e), allow_pickle=False) as z:
            rows[f"{s} / {e}"] = z["images"][:8, 0]
    return plot_examples(rows, "Source images under each edit")


@figure("examples_artifacts", rule="figures", needs=("artifact_images",))
def figure_examples_artifacts(data: FigureData) -> Figure:
    """Example target images with each artifact (those of the first training seed's artifact seed)."""
    p = data.params
    aseed = data.artifact_seeds[int(p["seeds"][0])]
    rows = {}
    for t in p["targets"]:
        for a in p["artifacts"]:
            path = data.files.path("artifact_images", target=t, artifact=a, aseed=aseed)
            with np.load(path, allow_pickle=False) as z:
                pos = np.flatnonzero(z["labels"] == 1)[:6]
                clean, arte = z["clean"][pos, 0], z["artifacted"][pos, 0]
            if not rows:
                rows[f"{t}: clean"] = clean
            rows[f"{a}"] = arte
            rows[f"{a}: difference (x4, grey = 0)"] = np.clip(0.5 + 4 * (arte - clean), 0, 1)
    return plot_examples(rows, "Target images with each artifact")
