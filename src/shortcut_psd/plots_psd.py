"""Figures of spectra: radial spectra of image sets, the gradient PSD per init with the artifact PSDs
overlaid, and the gradient PSD before vs after fine-tuning (docs/DEFINITIONS.md, "Gradient PSD").

Each ``plot_*`` function takes a long (tidy) pandas frame with the columns named in its docstring and
returns a :class:`matplotlib.figure.Figure` (styling and checks: :mod:`shortcut_psd.plots_style`); power
axes are log-scaled. Re-exported by :mod:`shortcut_psd.plots`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from shortcut_psd.plots_style import (  # noqa: E402
    _colours,
    _curve,
    _freq_axis,
    _has_band,
    _known_values,
    _legend_outside,
    _nonempty,
    _panel_grid,
    _require,
    _styled,
    _tidy_grid,
    _two_legends_outside,
    _unique,
)

STAGES = ("pre-trained", "fine-tuned")


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
    _known_values(df, "stage", STAGES, "plot_before_after")
    inits = sorted(df["init"].unique(), key=str)
    fig, axes = _panel_grid(len(inits), 1.8)
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
    _tidy_grid(axes, len(inits))
    handles = [
        Line2D([], [], color=stage_colour[s], ls="-" if s == STAGES[0] else "--", lw=1.8) for s in STAGES
    ]
    fig.legend(handles, list(STAGES), loc="upper left", bbox_to_anchor=(1.0, 0.93), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
