"""Shared styling and checks of the report's seaborn figures (:mod:`shortcut_psd.plots`).

Conventions: seaborn ``whitegrid`` style and ``colorblind`` palette applied per figure by :func:`_styled`
(global matplotlib settings are left alone); each level (e.g. init) keeps the same colour in every figure
(:func:`_colours`: colours follow the sorted names); the frequency axis is "spatial frequency
(cycles/pixel)"; legends sit right of the axes. A missing column raises :class:`ColumnError` (a
``ValueError``) that names it (:func:`_require`). :func:`save` writes ``{stem}.png`` and ``{stem}.pdf``
atomically and closes the figure.

Re-exported by :mod:`shortcut_psd.plots`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from shortcut_psd.io import save_figure  # noqa: E402
from shortcut_psd.stats import ColumnError  # noqa: E402

FREQ_LABEL = "spatial frequency (cycles/pixel)"
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


def _known_values(df: pd.DataFrame, column: str, allowed: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the values of ``df[column]`` (as str) that are not in ``allowed``."""
    bad = sorted(set(df[column].astype(str)) - set(allowed))
    if bad:
        raise ValueError(f"{what}: unknown {column} value(s) {bad}; use {list(allowed)}")


def _panel_grid(n: int, extra_width: float) -> tuple[Figure, Any]:
    """A grid for ``n`` panels, at most 3 a row, axes shared: ``(fig, axes)`` with ``axes`` 2-D; each panel
    4.2 x 3.6 inches, plus ``extra_width`` inches for a legend right of the grid. Finish with
    :func:`_tidy_grid`."""
    ncol = min(n, 3)
    nrow = -(-n // ncol)
    return plt.subplots(
        nrow, ncol, figsize=(4.2 * ncol + extra_width, 3.6 * nrow), sharex=True, sharey=True, squeeze=False
    )


def _tidy_grid(axes: Any, n: int) -> None:
    """Hide the panels of a :func:`_panel_grid` beyond the first ``n``; x labels only on the bottom row and y
    labels only on the left column."""
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:-1].flat:
        ax.set_xlabel("")
    for ax in axes[:, 1:].flat:
        ax.set_ylabel("")


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
