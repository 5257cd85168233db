"""Grid figures: example images per condition (optionally with their difference) and annotated heat maps
of a long table (e.g. the shortcut gap per init and artifact).

Each returns a :class:`matplotlib.figure.Figure` (styling and checks: :mod:`shortcut_psd.plots_style`).
Re-exported by :mod:`shortcut_psd.plots`.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from shortcut_psd.plots_style import _nonempty, _require, _styled  # noqa: E402


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
