"""The probes' results summarised over seeds into tables (torch-free, analysis environment).

Definitions: docs/DEFINITIONS.md, "Probes" (what is measured) and "Statistics" (intervals). Reads the
per-job ``probes.npz`` files and, through :mod:`shortcut_psd.layout` (a results folder or a job's
:class:`~shortcut_psd.layout.Inputs`), ``psd_pretrained`` and ``psd_finetuned`` (gradient band power),
``artifact_psd`` (the artifact's own band) and ``eval_metrics`` (shortcut gap). The registered tables of
rule ``probes_report`` (:mod:`shortcut_psd.probe_tables`) call these functions.

Intervals have a seed term and a group term (``seed_intervals.seed_group_t_interval``, the AUC tables' interval:
every seed's job drew the same group resamples of the probe images, because the images and the bootstrap
seed are shared), on the atanh scale for a reliance (a difference of AUCs) and the logit scale for an AUC.
Rank correlations across bands are descriptions: bands of one model are neither independent nor
exchangeable, so no p-value is given (``note`` says so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd import layout
from shortcut_psd.aggregate import read_curve
from shortcut_psd.clustered import seed_group_t_interval
from shortcut_psd.errors import DataError
from shortcut_psd.io import read_json
from shortcut_psd.layout import Inputs, Layout
from shortcut_psd.probe_geometry import clean_label as after_label
from shortcut_psd.probe_geometry import heatmap_radial

RELATION_NOTE = (
    "description across bands: the bands of one model are not independent units, so no p-value "
    '(docs/DEFINITIONS.md, "Probes")'
)


def load_probes(path: str | os.PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read probe results {path}: {exc}; rerun its probes job") from exc


def _row_of(run: Mapping[str, np.ndarray], label: str) -> int | None:
    labels = [str(v) for v in run["labels"]]
    return labels.index(label) if label in labels else None


def band_power(curve: Mapping[str, Any], bands: np.ndarray) -> np.ndarray:
    """Share of a (sum-normalised) radial curve in each band (bin centres in ``[lo, hi)``)."""
    f = np.asarray(curve["freqs"], dtype=float)
    p = np.clip(np.nan_to_num(np.asarray(curve["mean"], dtype=float)), 0, None)
    p = p / p.sum() if p.sum() > 0 else p
    return np.array([p[(f >= lo) & (f < hi)].sum() for lo, hi in bands])


def _band_cols(bands: np.ndarray, j: int) -> dict[str, Any]:
    hi = bands[j, 1]
    return {
        "band": j,
        "band_lo_cpp": float(bands[j, 0]),
        "band_hi_cpp": float(hi) if np.isfinite(hi) else None,
    }


def reliance_summary(
    runs: Sequence[Mapping[str, np.ndarray]], label: str, *, ci: float
) -> dict[str, np.ndarray] | None:
    """Mean over seeds of one model's band metrics and seeds x groups intervals of its reliance and of its
    keep-only AUC; None when no run holds ``label``."""
    rows = [(r, _row_of(r, label)) for r in runs]
    rows = [(r, i) for r, i in rows if i is not None]
    if not rows:
        return None
    out: dict[str, Any] = {"n_seeds": len(rows), "bands": np.asarray(rows[0][0]["bands"])}
    per_seed = {k: np.stack([np.asarray(r[k][i]) for r, i in rows]) for k in BAND_METRICS}
    for k in BAND_METRICS:
        out[k] = per_seed[k].mean(axis=0)
    out["reliance"] = out["auc_clean"] - out["auc_remove"]
    nb = len(out["bands"])
    lo_r, hi_r, lo_k, hi_k = (np.full(nb, np.nan) for _ in range(4))
    n_groups = _n_groups(rows)
    if rows[0][0]["rep_clean"].shape[-1] > 0:
        rel = np.stack([r["rep_clean"][i][:, None] - r["rep_remove"][i] for r, i in rows])  # (S, B, nb)
        keep = np.stack([r["rep_keep"][i] for r, i in rows])
        rel_point = per_seed["auc_clean"][:, None] - per_seed["auc_remove"]  # (S, nb)
        for j in range(nb):
            lo_r[j], hi_r[j] = seed_group_t_interval(
                rel_point[:, j], rel[:, :, j], n_groups, ci, scale="atanh"
            )
            lo_k[j], hi_k[j] = seed_group_t_interval(
                per_seed["auc_keep"][:, j], keep[:, :, j], n_groups, ci, scale="logit"
            )
    out.update(reliance_lo=lo_r, reliance_hi=hi_r, auc_keep_lo=lo_k, auc_keep_hi=hi_k)
    groups = f"groups ({n_groups}, t {n_groups - 1} df)"
    out["resampled"] = (
        f"seeds ({len(rows)}, t {len(rows) - 1} df) x {groups}" if len(rows) > 1 else f"{groups}; one seed"
    )
    return out


BAND_METRICS = ("auc_clean", "acc_clean", "auc_remove", "auc_keep", "acc_remove", "acc_keep")


def _n_groups(rows: Sequence[tuple[Mapping[str, np.ndarray], int]]) -> int:
    """Groups of the probe images (the same for every seed: they share the probe images)."""
    counts = {int(r["n_groups"]) for r, _ in rows if "n_groups" in r}
    if len(counts) > 1:
        raise DataError(
            f"the seeds' probe images came in different numbers of groups {sorted(counts)}; rerun them"
        )
    if counts:
        return counts.pop()
    raise DataError("probes.npz holds no n_groups (written by an older version); rerun the probes jobs")


def band_reliance_table(
    runs: Mapping[tuple[str, str, int], Mapping[str, np.ndarray]], *, ci: float = 0.95
) -> pd.DataFrame:
    """One row per (init, target, model, band): mean over seeds and intervals (see module doc)."""
    recs = []
    for init, target in sorted({(i, t) for i, t, _ in runs}):
        these = [runs[k] for k in sorted(runs) if k[:2] == (init, target)]
        labels = list(dict.fromkeys(str(v) for r in these for v in r["labels"]))
        for label in labels:
            s = reliance_summary(these, label, ci=ci)
            if s is None:
                continue
            for j in range(len(s["bands"])):
                recs.append(
                    {
                        "init": init,
                        "target": target,
                        "model": label,
                        **_band_cols(s["bands"], j),
                        "n_seeds": s["n_seeds"],
                        "auc_clean": s["auc_clean"],
                        "auc_remove": s["auc_remove"][j],
                        "auc_keep": s["auc_keep"][j],
                        "auc_keep_lo": s["auc_keep_lo"][j],
                        "auc_keep_hi": s["auc_keep_hi"][j],
                        "reliance": s["reliance"][j],
                        "reliance_lo": s["reliance_lo"][j],
                        "reliance_hi": s["reliance_hi"][j],
                        "acc_clean": s["acc_clean"],
                        "acc_remove": s["acc_remove"][j],
                        "acc_keep": s["acc_keep"][j],
                        "resampled": s["resampled"],
                    }
                )
    return pd.DataFrame.from_records(recs)


def spearman(a: Any, b: Any) -> float:
    """Spearman's rho (average ranks for ties) over the finite pairs; NaN with fewer than 3 or no spread."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra = pd.Series(a[ok]).rank().to_numpy()
    rb = pd.Series(b[ok]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def heat_radial(run: Mapping[str, np.ndarray], label: str) -> np.ndarray | None:
    """Band means of a run's heat map for ``label`` (None when it has none)."""
    labels = [str(v) for v in run.get("heat_labels", [])]
    if label not in labels:
        return None
    hm = run["heatmap"][labels.index(label)]
    return heatmap_radial(hm, run["heatmap_full"].shape[-1], run["bands"])


VIEWS = (("reliance", "gradient_power"), ("reliance", "heatmap"), ("gradient_power", "heatmap"))


def _model_files(label: str) -> tuple[str, dict[str, str]]:
    """The PSD kind and wildcards of a probe label ("pretrained" or "{artifact}/p{p}")."""
    if label == "pretrained":
        return "psd_pretrained", {}
    artifact, p = label.split("/", 1)
    return "psd_finetuned", {"artifact": artifact, "p": p.removeprefix("p")}


def relation_views(
    results: str | os.PathLike | Layout | Inputs,
    runs: Mapping[tuple[str, str, int], Mapping[str, np.ndarray]],
    *,
    after: str | None = None,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (init, target, stage): the three views per band, each the mean over seeds. ``after``: the label
    of the model that stands for the init after fine-tuning (default :func:`after_label` of the labels)."""
    files = layout.locate(results)
    out = {}
    for init, target in sorted({(i, t) for i, t, _ in runs}):
        keys = [k for k in sorted(runs) if k[:2] == (init, target)]
        labels = [str(v) for v in runs[keys[0]]["labels"]]
        stages = [("before", "pretrained")]
        last = after if after is not None else after_label(labels)
        if last and last in labels:
            stages.append(("after", last))
        for stage, label in stages:
            rel, power, heat = [], [], []
            for k in keys:
                run = runs[k]
                i = _row_of(run, label)
                if i is None:
                    continue
                bands = np.asarray(run["bands"])
                rel.append(run["auc_clean"][i] - run["auc_remove"][i])
                kind, wc = _model_files(label)
                path = files.find(kind, init=init, target=target, seed=k[2], **wc)
                power.append(
                    band_power(read_curve(path), bands) if path is not None else np.full(len(bands), np.nan)
                )
                h = heat_radial(run, label)
                heat.append(h if h is not None else np.full(len(bands), np.nan))
            out[(init, target, stage)] = {
                "model": label,
                "bands": bands,
                "n_seeds": len(rel),
                "reliance": np.mean(rel, axis=0),
                "gradient_power": np.nanmean(power, axis=0)
                if np.isfinite(power).any()
                else np.mean(power, axis=0),
                "heatmap": np.mean(heat, axis=0),
            }
    return out


def relations_table(views: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> pd.DataFrame:
    """Spearman's rho across bands between each pair of views, per (init, target, stage)."""
    recs = []
    for (init, target, stage), v in sorted(views.items()):
        for a, b in VIEWS:
            recs.append(
                {
                    "init": init,
                    "target": target,
                    "stage": stage,
                    "model": v["model"],
                    "view_a": a,
                    "view_b": b,
                    "spearman_rho": spearman(v[a], v[b]),
                    "n_bands": int(np.isfinite(np.asarray(v[a], float) + np.asarray(v[b], float)).sum()),
                    "n_seeds": v["n_seeds"],
                    "p": None,
                    "note": RELATION_NOTE,
                }
            )
    return pd.DataFrame.from_records(recs)


def _gap(
    files: Layout | Inputs, init: str, target: str, artifact: str, p: str, seeds: Sequence[int]
) -> list[float]:
    gaps = []
    for s in seeds:
        path = files.find("eval_metrics", init=init, target=target, artifact=artifact, p=p, seed=s)
        if path is not None:
            g = read_json(path).get("gap")
            gaps.append(np.nan if g is None else float(g))
    return gaps


def artifact_band_table(
    results: str | os.PathLike | Layout | Inputs,
    runs: Mapping[tuple[str, str, int], Mapping[str, np.ndarray]],
    *,
    artifacts: Sequence[str],
    artifact_seeds: Mapping[int, int],
    p0_models: Mapping[str, str],
    ci: float = 0.95,
) -> pd.DataFrame:
    """For each artifact: its own band (the band holding the largest share of its PSD, averaged over the
    artifact seeds used), and for each model trained with it (p = 0: the model that never saw it, whose
    artifact folder ``p0_models`` gives: :func:`shortcut_psd.layout.p0_models`) the reliance on that band
    next to the shortcut gap (means over seeds)."""
    r = layout.locate(results)
    recs = []
    for init, target in sorted({(i, t) for i, t, _ in runs}):
        keys = [k for k in sorted(runs) if k[:2] == (init, target)]
        these = [runs[k] for k in keys]
        seeds = [k[2] for k in keys]
        bands = np.asarray(these[0]["bands"])
        labels = list(dict.fromkeys(str(v) for run in these for v in run["labels"]))
        for a in artifacts:
            shares = [
                band_power(
                    read_curve(r.path("artifact_psd", target=target, artifact=a, aseed=artifact_seeds[s])),
                    bands,
                )
                for s in seeds
            ]
            share = np.mean(shares, axis=0)
            own = int(np.argmax(share))
            models = [lab for lab in labels if lab.split("/")[0] == a and lab != f"{a}/p0"]
            p0 = f"{p0_models[a]}/p0" if a in p0_models else None
            if p0 in labels:
                models = [p0, *models]
            for label in models:
                s = reliance_summary(these, label, ci=ci)
                p = label.split("/p")[-1]
                gaps = _gap(r, init, target, a, p, seeds)
                recs.append(
                    {
                        "init": init,
                        "target": target,
                        "artifact": a,
                        "prevalence": float(p),
                        "model": label,
                        **_band_cols(bands, own),
                        "artifact_band_share": float(share[own]),
                        "reliance": s["reliance"][own],
                        "reliance_lo": s["reliance_lo"][own],
                        "reliance_hi": s["reliance_hi"][own],
                        "gap": float(np.nanmean(gaps)) if gaps else np.nan,
                        "n_seeds": s["n_seeds"],
                        "resampled": s["resampled"],
                    }
                )
    return pd.DataFrame.from_records(recs)
