"""Alignment tables: how the gradient PSD of each init before fine-tuning aligns with each artifact's PSD
(docs/DEFINITIONS.md, "Alignment"; under every recorded window: docs/DEFINITIONS.md, "Windows"), and
question 3, how that alignment goes with the shortcut gap, tested within artifacts
(:mod:`shortcut_psd.association`; docs/DEFINITIONS.md, "Statistics"). Tables ``alignment``,
``alignment_windows`` and ``alignment_association``.

Torch-free. Files read (:mod:`shortcut_psd.layout`): ``psd_pretrained`` and ``artifact_psd`` (the artifact
seed of each training seed), each PSD from the JSON next to the ``psd.npz``.

Re-exported by :mod:`shortcut_psd.aggregate`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shortcut_psd import association, layout
from shortcut_psd.layout import Inputs, Layout
from shortcut_psd.tables_psd import Results, _pretrained_path, read_curve

ALIGNMENT_MEASURES = ("cosine", "overlap")


def _unit(curve: np.ndarray) -> np.ndarray:
    curve = np.clip(np.asarray(curve, dtype=float), 0, None)
    s = curve.sum()
    return curve / s if s > 0 else curve


def alignment(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Cosine similarity and histogram overlap ``sum(min(p, q))`` of two curves, each normalised to sum 1.

    The same definition as :func:`shortcut_psd.spectral.alignment`, repeated here without torch so the
    analysis environment stays light; a test checks the two agree.
    """
    p, q = _unit(p), _unit(q)
    denom = np.linalg.norm(p) * np.linalg.norm(q)
    return {
        "cosine": float(p @ q / denom) if denom > 0 else np.nan,
        "overlap": float(np.minimum(p, q).sum()),
    }


def _artifact_path(files: Layout | Inputs, target: str, artifact: str, aseed: int) -> Path:
    return files.path("artifact_psd", target=target, artifact=artifact, aseed=int(aseed))


def alignment_per_seed(
    results: Results,
    inits: Sequence[str],
    artifacts: Sequence[str],
    targets: Sequence[str],
    seeds: Sequence[int],
    artifact_seeds: Mapping[int, int],
) -> pd.DataFrame:
    """Alignment of each init's pre-fine-tuning gradient PSD (seed ``s``) with each artifact's PSD (of the
    artifact seed that training seed ``s`` used), under the configured window and under every window
    recorded in the PSD files (column ``window``; ``primary`` marks the configured one)."""
    r = layout.locate(results)
    rows = []
    for t in targets:
        arts = {
            (a, int(s)): read_curve(_artifact_path(r, t, a, artifact_seeds[int(s)]))
            for a in artifacts
            for s in seeds
        }
        for init, s in itertools.product(inits, seeds):
            g = read_curve(_pretrained_path(r, init, t, s))
            for a in artifacts:
                q = arts[(a, int(s))]
                windows = {g["window"]: (g["mean"], q["mean"])}
                for w, gc in g["window_curves"].items():
                    if w in q["window_curves"] and w != g["window"]:
                        windows[w] = (gc, q["window_curves"][w])
                for w, (gc, qc) in windows.items():
                    rows.append(
                        {
                            "init": init,
                            "target": t,
                            "artifact": a,
                            "seed": int(s),
                            "window": w,
                            "primary": w == g["window"],
                            **alignment(gc, qc),
                        }
                    )
    return pd.DataFrame(rows)


def alignment_tables(
    per_seed: pd.DataFrame,
    auc: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    ci: float,
    n_permutations: int,
    n_boot: int,
    seed: int,
    alpha: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Question 3 tables: ``alignment`` (per init, target, artifact, p > 0: seed-mean alignment under the
    configured window and the gap with its seeds x groups interval), ``alignment_windows`` (seed-mean
    alignment under every window) and ``alignment_association`` (per target, p, measure and window: the
    within-artifact and within-init statistics with interval and test, and the pooled rho as a description).
    """
    key = ["init", "target", "artifact"]
    al_mean = (
        per_seed.groupby(key + ["window", "primary"], sort=True)[list(ALIGNMENT_MEASURES)]
        .mean()
        .reset_index()
    )
    windows = al_mean.rename(columns={m: f"{m}_mean" for m in ALIGNMENT_MEASURES})
    prim = al_mean[al_mean["primary"]].drop(columns="primary")
    gaps = summary[summary["prevalence"] > 0][key + ["prevalence", "gap_mean", "gap_lo", "gap_hi", "n_seeds"]]
    table = prim.merge(gaps, on=key, how="inner").sort_values(key + ["prevalence"]).reset_index(drop=True)

    assoc = []
    shortcut = auc[auc["prevalence"] > 0]
    for (t, p), g_auc in shortcut.groupby(["target", "prevalence"], sort=True):
        inits = sorted(g_auc["init"].unique())
        arts = sorted(g_auc["artifact"].unique())
        seeds = sorted(g_auc["seed"].astype(int).unique())
        gap3 = np.full((len(inits), len(arts), len(seeds)), np.nan)
        for row in g_auc.itertuples():
            gap3[inits.index(row.init), arts.index(row.artifact), seeds.index(int(row.seed))] = row.gap
        ps_t = per_seed[per_seed["target"] == t]
        for w, ps in ps_t.groupby("window", sort=True):
            primary = bool(ps["primary"].iloc[0])
            for measure in ALIGNMENT_MEASURES:
                a3 = np.full_like(gap3, np.nan)
                for row in ps.itertuples():
                    if row.init in inits and row.artifact in arts and int(row.seed) in seeds:
                        a3[inits.index(row.init), arts.index(row.artifact), seeds.index(int(row.seed))] = (
                            getattr(row, measure)
                        )
                for r in association.association_rows(
                    a3, gap3, n_permutations=n_permutations, n_boot=n_boot, seed=seed, ci=ci, alpha=alpha
                ):
                    assoc.append(
                        {
                            "target": t,
                            "prevalence": float(p),
                            "measure": measure,
                            "window": w,
                            "primary": primary,
                            **r,
                        }
                    )
    assoc_df = pd.DataFrame(assoc)
    if not assoc_df.empty:
        assoc_df = assoc_df.sort_values(
            ["target", "prevalence", "primary", "window", "measure"],
            ascending=[True, True, False, True, True],
        ).reset_index(drop=True)
    return table, windows, assoc_df
