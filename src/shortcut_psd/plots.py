"""Seaborn figures for the report.

Every ``plot_*`` function takes a long (tidy) pandas frame with the columns named in its docstring,
returns a :class:`matplotlib.figure.Figure` and never shows it; :func:`save` writes ``{stem}.png`` and
``{stem}.pdf`` atomically and closes the figure. A missing column raises :class:`ColumnError` (a
``ValueError``) that names it.

Conventions: seaborn ``whitegrid`` style and ``colorblind`` palette applied per figure (global
matplotlib settings are left alone); power axes are log-scaled; the frequency axis is "spatial frequency
(cycles/pixel)"; each init keeps the same colour in every figure (colours follow the sorted init names);
every figure has a title.

The report's figures (rules ``figures`` and ``dynamics``) are registered at the end of this module: each is
one function, decorated with :func:`shortcut_psd.layout.figure` (name, rule, the inputs it reads; caption
``workflow/report/fig_{name}.rst``), that draws it from the rule's study object (:class:`FigureData`).
Adding a figure is adding such a function, its caption and its test: the rule's outputs, its inputs and the
report follow from the registry.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from shortcut_psd import layout  # noqa: E402
from shortcut_psd.aggregate import read_curve  # noqa: E402
from shortcut_psd.clustered import seed_group_curves  # noqa: E402
from shortcut_psd.io import save_figure  # noqa: E402
from shortcut_psd.layout import Inputs, figure  # noqa: E402
from shortcut_psd.stats import ColumnError  # noqa: E402

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

FREQ_LABEL = "spatial frequency (cycles/pixel)"
STAGES = ("pre-trained", "fine-tuned")
TEST_SETS = ("clean", "iid", "ood")
_TEST_STYLE = {"clean": "-", "iid": "--", "ood": "-."}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_BAND_ALPHA = 0.2


def _styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run ``fn`` under seaborn's whitegrid style / colorblind palette without touching global rcParams."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=1.0)}
        rc["axes.prop_cycle"] = matplotlib.cycler(color=sns.color_palette("colorblind"))
        rc["legend.frameon"] = False
        with plt.rc_context(rc):
            fig = fn(*args, **kwargs)
        return fig

    return wrapper


def _colours(levels: Sequence[Any], offset: int = 0) -> dict[Any, Any]:
    """A fixed colour per level (sorted), from the colorblind palette."""
    levels = sorted(pd.unique(pd.Series(list(levels))), key=str)
    pal = sns.color_palette("colorblind", max(10, len(levels) + offset))
    return {lev: pal[(i + offset) % len(pal)] for i, lev in enumerate(levels)}


def _require(df: pd.DataFrame, cols: Sequence[str], what: str = "plot") -> None:
    """Raise :class:`ColumnError` (a ``ValueError``) naming every column of ``cols`` that ``df`` lacks."""
    if not isinstance(df, pd.DataFrame):
        raise ColumnError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ColumnError(f"{what}: missing column(s) {missing}; the frame has {list(df.columns)}")


def _unique(df: pd.DataFrame, keys: list[str], what: str) -> None:
    """One row per ``keys``: several would be drawn as one zig-zag line, so ask for aggregated input."""
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        example = df.loc[dup, keys].iloc[0].to_dict()
        raise ValueError(
            f"{what}: {int(dup.sum())} rows share the same ({', '.join(keys)}), e.g. {example}; "
            "pass one row per point (aggregate seeds first, e.g. with stats.summarise)"
        )


def _nonempty(df: pd.DataFrame, what: str) -> None:
    if len(df) == 0:
        raise ValueError(f"{what}: the frame is empty; nothing to plot")


def _has_band(df: pd.DataFrame) -> bool:
    return "lo" in df.columns and "hi" in df.columns


def _freq_axis(ax: plt.Axes) -> None:
    ax.set_xlabel(FREQ_LABEL)
    ax.set_xlim(left=0)


def _legend_outside(ax_or_fig: Any, handles=None, labels=None, title=None, **kw: Any):
    kwargs = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0, "title": title}
    kwargs.update(kw)
    if handles is None:
        return ax_or_fig.legend(**kwargs)
    return ax_or_fig.legend(handles, labels, **kwargs)


def _two_legends_outside(ax, first: tuple, second: tuple) -> None:
    """Two legends right of the axes: ``first`` (handles, labels, title) at the top, ``second`` at the bottom."""
    h1, l1, t1 = first
    h2, l2, t2 = second
    ax.add_artist(_legend_outside(ax, h1, l1, title=t1))
    _legend_outside(ax, h2, l2, title=t2, loc="lower left", bbox_to_anchor=(1.01, 0.0))


def _curve(ax, g: pd.DataFrame, colour, label: str, *, band: bool, ls: str = "-", scale: float = 1.0):
    g = g.sort_values("freq")
    ax.plot(g["freq"], g["power"] / scale, color=colour, ls=ls, lw=1.8, label=label)
    if band:
        ax.fill_between(g["freq"], g["lo"] / scale, g["hi"] / scale, color=colour, alpha=_BAND_ALPHA, lw=0)


def save(fig: Figure, stem: str | os.PathLike) -> list[Path]:
    """Write ``{stem}.png`` (150 dpi) and ``{stem}.pdf`` atomically, close ``fig``; return both paths."""
    paths = [Path(f"{stem}.png"), Path(f"{stem}.pdf")]
    try:
        save_figure(fig, paths, dpi=150)
    finally:
        plt.close(fig)
    return paths


# --------------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------------


@_styled
def plot_spectra(df: pd.DataFrame, title: str = "Radial power spectra of the data") -> Figure:
    """Radial spectra of image sets (e.g. photos vs clinical vs edited sources).

    ``df`` columns: ``label, freq, power`` and optionally ``lo, hi`` (drawn as a band). One line per label.
    """
    _require(df, ["label", "freq", "power"], "plot_spectra")
    _nonempty(df, "plot_spectra")
    _unique(df, ["label", "freq"], "plot_spectra")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = _colours(df["label"])
    for label, g in df.groupby("label", sort=True):
        _curve(ax, g, colours[label], str(label), band=_has_band(df))
    ax.set_yscale("log")
    _freq_axis(ax)
    ax.set_ylabel("power (log scale)")
    ax.set_title(title)
    _legend_outside(ax, title="image set")
    return fig


@_styled
def plot_gradient_psd(
    grad_df: pd.DataFrame,
    art_df: pd.DataFrame | None = None,
    title: str = "Gradient PSD (learning priority) per init",
) -> Figure:
    """Gradient PSD per init (mean curve with CI band), with artifact PSDs overlaid.

    ``grad_df`` columns: ``init, freq, power, lo, hi``. ``art_df`` (optional) columns:
    ``artifact, freq, power``, drawn as dashed lines. Every curve is divided by the sum of its ``power``
    (band scaled alike) so gradient and artifact spectra sum to 1 and share one log axis.
    """
    _require(grad_df, ["init", "freq", "power", "lo", "hi"], "plot_gradient_psd (grad_df)")
    _nonempty(grad_df, "plot_gradient_psd")
    _unique(grad_df, ["init", "freq"], "plot_gradient_psd (grad_df)")
    if art_df is not None:
        _require(art_df, ["artifact", "freq", "power"], "plot_gradient_psd (art_df)")
        _unique(art_df, ["artifact", "freq"], "plot_gradient_psd (art_df)")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = _colours(grad_df["init"])
    for init, g in grad_df.groupby("init", sort=True):
        _curve(ax, g, colours[init], f"{init}", band=True, scale=float(g["power"].sum()))
    handles, labels = ax.get_legend_handles_labels()
    if art_df is not None and len(art_df):
        art_colours = _colours(art_df["artifact"], offset=len(colours))
        dashes = ["--", ":", "-.", (0, (5, 1, 1, 1))]
        for k, (art, g) in enumerate(art_df.groupby("artifact", sort=True)):
            _curve(
                ax,
                g,
                art_colours[art],
                f"{art}",
                band=False,
                ls=dashes[k % len(dashes)],
                scale=float(g["power"].sum()),
            )
        all_h, all_l = ax.get_legend_handles_labels()
        art_h, art_l = all_h[len(handles) :], all_l[len(labels) :]
        _two_legends_outside(
            ax, (handles, labels, "init (gradient)"), (art_h, art_l, "artifact PSD (dashed)")
        )
    else:
        _legend_outside(ax, title="init")
    ax.set_yscale("log")
    _freq_axis(ax)
    ax.set_ylabel("normalised power (sum = 1, log)")
    ax.set_title(title)
    return fig


@_styled
def plot_before_after(df: pd.DataFrame, title: str = "Gradient PSD before and after fine-tuning") -> Figure:
    """One panel per init: the pre-trained and the fine-tuned gradient PSD, each with a CI band.

    ``df`` columns: ``init, stage, freq, power, lo, hi`` with ``stage`` in {"pre-trained", "fine-tuned"}.
    """
    _require(df, ["init", "stage", "freq", "power", "lo", "hi"], "plot_before_after")
    _nonempty(df, "plot_before_after")
    _unique(df, ["init", "stage", "freq"], "plot_before_after")
    bad = sorted(set(df["stage"].astype(str)) - set(STAGES))
    if bad:
        raise ValueError(f"plot_before_after: unknown stage value(s) {bad}; use {list(STAGES)}")
    inits = sorted(df["init"].unique(), key=str)
    ncol = min(len(inits), 3)
    nrow = -(-len(inits) // ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.2 * ncol + 1.8, 3.6 * nrow), sharex=True, sharey=True, squeeze=False
    )
    stage_colour = dict(zip(STAGES, sns.color_palette("colorblind", 2), strict=True))
    for ax, init in zip(axes.flat, inits, strict=False):
        sub = df[df["init"] == init]
        for stage in STAGES:
            g = sub[sub["stage"] == stage]
            if len(g):
                _curve(ax, g, stage_colour[stage], stage, band=True, ls="-" if stage == STAGES[0] else "--")
        ax.set_yscale("log")
        ax.set_title(str(init))
        _freq_axis(ax)
        ax.set_ylabel("power (log)")
    for ax in axes.flat[len(inits) :]:
        ax.set_visible(False)
    for ax in axes[:-1].flat:
        ax.set_xlabel("")
    for ax in axes[:, 1:].flat:
        ax.set_ylabel("")
    handles = [
        Line2D([], [], color=stage_colour[s], ls="-" if s == STAGES[0] else "--", lw=1.8) for s in STAGES
    ]
    fig.legend(handles, list(STAGES), loc="upper left", bbox_to_anchor=(1.0, 0.93), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# Shortcut results
# --------------------------------------------------------------------------------------------------


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
    bad = sorted(set(df["test_set"].astype(str)) - set(TEST_SETS))
    if bad:
        raise ValueError(f"plot_auc_vs_prevalence: unknown test_set value(s) {bad}; use {list(TEST_SETS)}")
    arts = sorted(df["artifact"].unique(), key=str)
    ncol = min(len(arts), 3)
    nrow = -(-len(arts) // ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.2 * ncol + 2.2, 3.6 * nrow), sharex=True, sharey=True, squeeze=False
    )
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
    for ax in axes.flat[len(arts) :]:
        ax.set_visible(False)
    for ax in axes[:-1].flat:
        ax.set_xlabel("")
    for ax in axes[:, 1:].flat:
        ax.set_ylabel("")
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


# --------------------------------------------------------------------------------------------------
# Images and tables
# --------------------------------------------------------------------------------------------------


def _as_stack(name: str, arr: Any) -> np.ndarray:
    a = np.asarray(arr, dtype=float)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(
            f"plot_examples: images[{name!r}] has shape {a.shape}; expected (n, H, W) or (n, 1, H, W)"
        )
    return a


@_styled
def plot_examples(
    images: dict[str, np.ndarray],
    title: str,
    *,
    difference: tuple[str, str] | None = None,
    max_cols: int = 8,
) -> Figure:
    """Grid of example images: one row per condition (dict key, in order), one column per example.

    ``images`` maps a condition name to an array ``(n, H, W)`` (or ``(n, 1, H, W)``) with values in
    [0, 1], drawn in grey with vmin 0, vmax 1. ``difference=(a, b)`` adds a last row ``b − a`` (same
    shapes needed) in a diverging map centred on 0, scaled to its largest absolute value.
    """
    if not images:
        raise ValueError("plot_examples: `images` is empty; pass {condition name: (n, H, W) array}")
    stacks = {str(k): _as_stack(str(k), v) for k, v in images.items()}
    rows: list[tuple[str, np.ndarray, dict[str, Any]]] = [
        (k, v, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}) for k, v in stacks.items()
    ]
    if difference is not None:
        a, b = (str(d) for d in difference)
        for k in (a, b):
            if k not in stacks:
                raise ValueError(f"plot_examples: difference names {k!r}, not one of {list(stacks)}")
        n = min(len(stacks[a]), len(stacks[b]))
        if stacks[a].shape[1:] != stacks[b].shape[1:]:
            raise ValueError(
                f"plot_examples: cannot subtract {a!r} {stacks[a].shape} from {b!r} {stacks[b].shape}"
            )
        diff = stacks[b][:n] - stacks[a][:n]
        m = float(np.nanmax(np.abs(diff))) or 1.0
        rows.append((f"{b} − {a}\n(±{m:.2g})", diff, {"cmap": "RdBu_r", "vmin": -m, "vmax": m}))
    ncol = max(1, min(max_cols, max(len(v) for _, v, _ in rows)))
    nrow = len(rows)
    size = 1.6
    fig, axes = plt.subplots(nrow, ncol, figsize=(size * ncol + 1.4, size * nrow + 0.6), squeeze=False)
    for r, (name, stack, kw) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(stack):
                ax.imshow(stack[c], interpolation="nearest", **kw)
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@_styled
def plot_heatmap(
    df: pd.DataFrame,
    index: str,
    columns: str,
    values: str,
    title: str,
    *,
    fmt: str = ".2f",
    cmap: str | None = None,
    cbar_label: str | None = None,
) -> Figure:
    """Annotated heat map of ``values`` with rows ``index`` and columns ``columns`` (e.g. gap, init × artifact).

    ``df`` is long with at most one row per (index, columns) cell; aggregate first (e.g. with
    :func:`shortcut_psd.stats.summarise`). Values of both signs get a diverging map centred on 0.
    """
    _require(df, [index, columns, values], "plot_heatmap")
    _nonempty(df, "plot_heatmap")
    if df.duplicated([index, columns]).any():
        raise ValueError(
            f"plot_heatmap: several rows per ({index}, {columns}) cell; aggregate first "
            "(for example stats.summarise over seeds) and pass one value per cell"
        )
    table = df.pivot(index=index, columns=columns, values=values).astype(float)
    vals = table.to_numpy()
    vals = vals[np.isfinite(vals)]
    signed = bool(vals.size) and vals.min() < 0 < vals.max()
    kw: dict[str, Any] = {"cmap": cmap or ("vlag" if signed else "viridis")}
    if signed:
        kw["center"] = 0.0
    w = 1.0 * table.shape[1] + 3.0
    h = 0.6 * table.shape[0] + 2.0
    fig, ax = plt.subplots(figsize=(max(w, 5.0), max(h, 3.0)))
    sns.heatmap(
        table, annot=True, fmt=fmt, linewidths=0.5, ax=ax, cbar_kws={"label": cbar_label or values}, **kw
    )
    ax.set_title(title)
    ax.set_xlabel(columns)
    ax.set_ylabel(index)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    ax.tick_params(axis="y", rotation=0)
    return fig


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


# learning order (rule dynamics; study: shortcut_psd.aggregate.LearningOrder)
@figure("dynamics_heatmap", rule="dynamics")
def figure_dynamics_heatmap(study: Any) -> Figure:
    from shortcut_psd import dynamics_plots

    return dynamics_plots.heatmap(study.snaps)


@figure("dynamics_centroid", rule="dynamics")
def figure_dynamics_centroid(study: Any) -> Figure:
    from shortcut_psd import dynamics_plots

    return dynamics_plots.centroid_curves(study.snaps, n_boot=study.n_boot, seed=study.seed, ci=study.ci)


@figure("dynamics_shortcut", rule="dynamics")
def figure_dynamics_shortcut(study: Any) -> Figure:
    from shortcut_psd import dynamics_plots

    return dynamics_plots.shortcut_timing(study.snaps, n_boot=study.n_boot, seed=study.seed, ci=study.ci)
