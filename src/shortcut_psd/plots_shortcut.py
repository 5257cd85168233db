"""Figures of the shortcut results: AUC against the artifact's prevalence per init and artifact, and the
alignment of gradient and artifact PSDs against the shortcut gap (question 3, read within an artifact;
docs/DEFINITIONS.md, "Shortcut protocol" and "Alignment").

Each ``plot_*`` function takes a long (tidy) pandas frame with the columns named in its docstring and
returns a :class:`matplotlib.figure.Figure` (styling and checks: :mod:`shortcut_psd.plots_style`).
Re-exported by :mod:`shortcut_psd.plots`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from shortcut_psd.plots_style import (  # noqa: E402
    _colours,
    _known_values,
    _nonempty,
    _panel_grid,
    _require,
    _styled,
    _tidy_grid,
    _two_legends_outside,
    _unique,
)

TEST_SETS = ("clean", "iid", "ood")
_TEST_STYLE = {"clean": "-", "iid": "--", "ood": "-."}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


@_styled
def plot_auc_vs_prevalence(
    df: pd.DataFrame, title: str = "ROC-AUC vs artifact prevalence in the positives"
) -> Figure:
    """One panel per artifact: AUC (mean and CI band over seeds) against prevalence p.

    ``df`` columns: ``init, artifact, prevalence, test_set, auc_mean, auc_lo, auc_hi`` with ``test_set``
    in {"clean", "iid", "ood"}. Colour = init, line style = test set; a dotted line marks chance (0.5).
    """
    cols = ["init", "artifact", "prevalence", "test_set", "auc_mean", "auc_lo", "auc_hi"]
    _require(df, cols, "plot_auc_vs_prevalence")
    _nonempty(df, "plot_auc_vs_prevalence")
    _unique(df, ["init", "artifact", "test_set", "prevalence"], "plot_auc_vs_prevalence")
    _known_values(df, "test_set", TEST_SETS, "plot_auc_vs_prevalence")
    arts = sorted(df["artifact"].unique(), key=str)
    fig, axes = _panel_grid(len(arts), 2.2)
    colours = _colours(df["init"])
    for ax, art in zip(axes.flat, arts, strict=False):
        sub = df[df["artifact"] == art]
        for (init, ts), g in sub.groupby(["init", "test_set"], sort=True):
            g = g.sort_values("prevalence")
            c = colours[init]
            ax.plot(g["prevalence"], g["auc_mean"], color=c, ls=_TEST_STYLE[ts], marker="o", ms=4, lw=1.6)
            ax.fill_between(g["prevalence"], g["auc_lo"], g["auc_hi"], color=c, alpha=0.12, lw=0)
        ax.axhline(0.5, color="0.3", ls=":", lw=1.2)
        ax.set_title(str(art))
        ax.set_xlabel("prevalence p (positives with artifact)")
        ax.set_ylabel("ROC-AUC")
        ax.set_ylim(-0.02, 1.02)
    _tidy_grid(axes, len(arts))
    init_h = [Line2D([], [], color=colours[i], lw=2) for i in colours]
    ts_present = [t for t in TEST_SETS if t in set(df["test_set"])]
    ts_h = [Line2D([], [], color="0.2", ls=_TEST_STYLE[t], lw=1.6) for t in ts_present]
    chance = [Line2D([], [], color="0.3", ls=":", lw=1.2)]
    fig.legend(
        init_h + ts_h + chance,
        [str(i) for i in colours] + ts_present + ["chance (0.5)"],
        loc="upper left",
        bbox_to_anchor=(1.0, 0.93),
        frameon=False,
        title="init  /  test set",
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@_styled
def plot_alignment_vs_gap(
    df: pd.DataFrame,
    stat: str | None = None,
    *,
    title: str = "Alignment of gradient PSD with artifact PSD vs shortcut gap",
    xlabel: str = "alignment (gradient PSD vs artifact PSD)",
) -> Figure:
    """Scatter of alignment against shortcut gap per (init, artifact), gap CI as error bars.

    ``df`` columns: ``init, artifact, alignment, gap_mean, gap_lo, gap_hi``. Colour = init, marker =
    artifact; a thin grey line joins the inits of one artifact (in order of alignment), because question 3
    is read within an artifact. ``stat`` (for example the within-artifact statistic with its interval and
    p-value) is written under the title.
    """
    _require(df, ["init", "artifact", "alignment", "gap_mean", "gap_lo", "gap_hi"], "plot_alignment_vs_gap")
    _nonempty(df, "plot_alignment_vs_gap")
    _unique(df, ["init", "artifact"], "plot_alignment_vs_gap")
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    colours = _colours(df["init"])
    arts = sorted(df["artifact"].unique(), key=str)
    markers = {a: _MARKERS[i % len(_MARKERS)] for i, a in enumerate(arts)}
    for a in arts:
        line = df[df["artifact"] == a].sort_values("alignment")
        ax.plot(line["alignment"], line["gap_mean"], color="0.75", lw=0.8, zorder=0)
    for _, r in df.iterrows():
        yerr = np.array([[r["gap_mean"] - r["gap_lo"]], [r["gap_hi"] - r["gap_mean"]]])
        yerr = np.nan_to_num(yerr, nan=0.0).clip(min=0)
        ax.errorbar(
            r["alignment"],
            r["gap_mean"],
            yerr=yerr,
            color=colours[r["init"]],
            marker=markers[r["artifact"]],
            ms=8,
            ls="none",
            capsize=3,
            lw=1.2,
        )
    ax.axhline(0.0, color="0.3", ls=":", lw=1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("shortcut gap\nAUC(clean) − AUC(ood)")
    ax.set_title(f"{title}\n{stat}" if stat else title, fontsize=10)
    init_h = [Line2D([], [], color=colours[i], marker="o", ls="none", ms=8) for i in colours]
    art_h = [Line2D([], [], color="0.3", marker=markers[a], ls="none", ms=8) for a in arts]
    _two_legends_outside(
        ax, (init_h, [str(i) for i in colours], "init"), (art_h, [str(a) for a in arts], "artifact")
    )
    return fig
