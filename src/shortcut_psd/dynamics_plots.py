"""Figures of the learning order (docs/DEFINITIONS.md, "Learning order"); each returns a matplotlib figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shortcut_psd.config.grid import CLEAN
from shortcut_psd.dynamics import mean_trajectory


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _groups(snaps: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[tuple, list]:
    out: dict[tuple, list] = {}
    for s in snaps:
        out.setdefault(tuple(s[k] for k in keys), []).append(s)
    return dict(sorted(out.items()))


def heatmap(snaps: Sequence[Mapping[str, Any]]):
    """Band x step heat map per (phase, init): share of gradient power per radial bin (mean over seeds),
    shown as the change from step 0 (red: gained, blue: lost). Fine-tuning uses the p = 0 models."""
    plt = _plt()
    sel = [s for s in snaps if s["phase"] == "pretrain" or float(s["prevalence"]) == 0]
    groups = _groups(sel, ["phase", "init"])
    # one row per phase (pre-training, fine-tuning), one column per init: a grid stays readable
    phases = sorted({k[0] for k in groups}, key=lambda ph: ph != "pretrain") or ["finetune"]
    inits = sorted({k[1] for k in groups}) or ["-"]
    fig, axes = plt.subplots(
        len(phases), len(inits), figsize=(3.0 * len(inits) + 1, 2.8 * len(phases) + 0.4), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_visible(False)
    for (phase, init), members in groups.items():
        ax = axes[phases.index(phase)][inits.index(init)]
        ax.set_visible(True)
        steps, mean, _, _ = mean_trajectory(members, "curves", ci=0.95)
        change = mean - mean[0]
        lim = float(np.nanmax(np.abs(change))) or 1.0
        freqs = members[0]["freqs"]
        im = ax.imshow(change.T, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks(range(len(steps)), [str(s) for s in steps], rotation=90, fontsize=6)
        yt = np.linspace(0, len(freqs) - 1, 5).round().astype(int)
        ax.set_yticks(yt, [f"{freqs[i]:.2f}" for i in yt], fontsize=6)
        ax.set_title(f"{phase}: {init} (n={len(members)})", fontsize=8)
        ax.set_xlabel("step")
        fig.colorbar(im, ax=ax, fraction=0.05)
    for row in axes:
        row[0].set_ylabel("frequency (cycles/pixel)")
    if not groups:
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no snapshots (dynamics.enabled: false)", ha="center", va="center")
    fig.tight_layout()
    return fig


def centroid_curves(snaps: Sequence[Mapping[str, Any]], *, ci: float):
    """Spectral centroid over steps per init (mean over seeds, Student t band over seeds), one panel per phase;
    fine-tuning shows the shared clean model (artifact ``none``, p = 0)."""
    plt = _plt()
    phases = sorted({s["phase"] for s in snaps}) or ["finetune"]
    fig, axes = plt.subplots(1, len(phases), figsize=(4.2 * len(phases), 3.2), squeeze=False)
    for ax, phase in zip(axes[0], phases, strict=True):
        # fine-tuning: the shared clean model only; an artifact's own p = 0 model shares its seeds (the same
        # init and subsample), so counting it too would double the seeds an interval treats as independent
        sel = [
            s
            for s in snaps
            if s["phase"] == phase
            and (phase == "pretrain" or (float(s["prevalence"]) == 0 and s["artifact"] == CLEAN))
        ]
        for (init,), members in _groups(sel, ["init"]).items():
            steps, mean, lo, hi = mean_trajectory(members, "centroid", ci=ci)
            x = steps + 1
            ax.plot(x, mean, marker="o", ms=3, label=f"{init} (n={len(members)})")
            if lo is not None:
                ax.fill_between(x, lo, hi, alpha=0.2)
        ax.set_xscale("log")
        ax.set_xlabel("step + 1")
        ax.set_ylabel("centroid (cycles/pixel)")
        ax.set_title(phase, fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def shortcut_timing(snaps: Sequence[Mapping[str, Any]], *, ci: float):
    """Clean AUC and shortcut gap over steps per (init, artifact) at p > 0, mean over seeds with bands."""
    plt = _plt()
    sel = [s for s in snaps if s["phase"] == "finetune" and float(s["prevalence"]) > 0 and "auc_clean" in s]
    groups = _groups(sel, ["artifact", "init", "prevalence"])
    arts = sorted({k[0] for k in groups}) or ["-"]
    inits = sorted({k[1] for k in groups}) or ["-"]
    fig, axes = plt.subplots(
        len(arts), len(inits), figsize=(2.6 * len(inits) + 0.5, 2.2 * len(arts) + 0.5), squeeze=False
    )
    for (art, init, p), members in groups.items():
        ax = axes[arts.index(art)][inits.index(init)]
        for key, colour, name in (("auc_clean", "C0", "clean AUC - 0.5"), ("gap", "C3", "gap")):
            steps, mean, lo, hi = mean_trajectory(members, key, ci=ci)
            off = 0.5 if key == "auc_clean" else 0.0
            x = steps + 1
            ax.plot(x, mean - off, color=colour, marker="o", ms=2, label=f"{name}, p={p}")
            if lo is not None:
                ax.fill_between(x, lo - off, hi - off, color=colour, alpha=0.15)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xscale("log")
        ax.set_title(f"{init} / {art}", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("step + 1")
    axes[0][0].legend(fontsize=5)
    if not groups:
        axes[0][0].text(0.5, 0.5, "no shortcut model with snapshots", ha="center", va="center")
    fig.tight_layout()
    return fig
