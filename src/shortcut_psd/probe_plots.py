"""The probes' figures: band-masking reliance per band and Fourier heat maps (torch-free).

Definitions: docs/DEFINITIONS.md, "Probes". Drawn from the tables of :mod:`shortcut_psd.probe_summary` and
the per-job probe results; registered as figures of rule ``probes_report`` in
:mod:`shortcut_psd.probe_tables`. Matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from shortcut_psd.probe_geometry import clean_label as after_label


def _band_label(lo: float, hi: float | None) -> str:
    return f"{lo:.2f}-{hi:.2f}" if hi is not None and np.isfinite(hi) else f">{lo:.2f}"


def plot_band_reliance(table: pd.DataFrame, after: str | None = None):
    """Reliance (AUC drop with the band removed) and keep-only AUC per band: before (linear probe) and
    after fine-tuning (the model labelled ``after``, default :func:`after_label` of the table's models), one
    panel per (target, init)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted({(t, i) for t, i in zip(table["target"], table["init"], strict=True)})
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.2 * len(pairs), 5.6), squeeze=False, sharey="row")
    for c, (t, i) in enumerate(pairs):
        sub = table[(table["target"] == t) & (table["init"] == i)]
        last = after if after is not None else after_label(sorted(set(sub["model"])))
        for label, stage, colour in (("pretrained", "before", "C0"), (last, "after", "C1")):
            d = sub[sub["model"] == label].sort_values("band")
            if d.empty:
                continue
            x = d["band"].to_numpy()
            for row, (y, lo, hi) in enumerate(
                (("reliance", "reliance_lo", "reliance_hi"), ("auc_keep", "auc_keep_lo", "auc_keep_hi"))
            ):
                ax = axes[row, c]
                ax.plot(x, d[y], marker="o", color=colour, label=f"{stage} ({label})")
                ax.fill_between(x, d[lo].astype(float), d[hi].astype(float), color=colour, alpha=0.2)
        names = [
            _band_label(lo, hi)
            for lo, hi in sub.drop_duplicates("band")
            .sort_values("band")[["band_lo_cpp", "band_hi_cpp"]]
            .to_numpy()
        ]
        for row in range(2):
            ax = axes[row, c]
            ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
            ax.axhline(0.0 if row == 0 else 0.5, color="grey", lw=0.8, ls="--")
        axes[0, c].set_title(f"{i} on {t}", fontsize=9)
        axes[1, c].set_xlabel("band (cycles/pixel)")
    axes[0, 0].set_ylabel("reliance (AUC drop, band removed)", fontsize=8)
    axes[1, 0].set_ylabel("AUC, band kept alone", fontsize=8)
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(
        "Band-masking reliance before and after fine-tuning (mean over seeds, seeds x groups 95% band)"
    )
    fig.tight_layout()
    return fig


def plot_heatmaps(runs: Mapping[tuple[str, str, int], Mapping[str, np.ndarray]], after: str | None = None):
    """Fourier heat maps (mean over seeds), fftshifted full plane: rows (target, init), columns before /
    after fine-tuning (the model labelled ``after``, default :func:`after_label` of the labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted({(t, i) for i, t, _ in runs})
    fig, axes = plt.subplots(len(pairs), 2, figsize=(6.4, 2.9 * len(pairs)), squeeze=False)
    for r_, (t, i) in enumerate(pairs):
        these = [runs[k] for k in sorted(runs) if k[:2] == (i, t)]
        labels = [str(v) for v in these[0]["labels"]]
        for c, label in enumerate(("pretrained", after if after is not None else after_label(labels))):
            ax = axes[r_, c]
            maps = []
            for run in these:
                hl = [str(v) for v in run.get("heat_labels", [])]
                if label in hl:
                    maps.append(run["heatmap_full"][hl.index(label)])
            if not maps:
                ax.axis("off")
                continue
            # a step > 1 leaves a regular lattice of computed frequencies: draw each over its cell
            m = pd.DataFrame(np.mean(maps, axis=0)).ffill(axis=1).ffill(axis=0).to_numpy()
            h, w = m.shape
            ext = (-(w // 2) / w, (w - w // 2) / w, (h - h // 2) / h, -(h // 2) / h)
            vmax = np.nanmax(np.abs(m)) or 1.0
            im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=ext)
            ax.set_title(f"{i} on {t}: {'before' if c == 0 else 'after'}", fontsize=8)
            ax.set_xlabel("fx (cycles/pixel)", fontsize=7)
            ax.set_ylabel("fy (cycles/pixel)", fontsize=7)
            fig.colorbar(im, ax=ax, shrink=0.8, label=str(these[0].get("heat_metric", "auc_drop")))
    fig.suptitle("Fourier heat maps (Yin et al. 2019), mean over seeds")
    fig.tight_layout()
    return fig
