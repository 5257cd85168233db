"""Turn the per-job outputs (metrics.json, psd.json) into the study's tables.

Torch-free on purpose: it runs in the light analysis environment and reads the PSD curves from the JSON
siblings that :meth:`shortcut_psd.spectral.PSDResult.save` writes next to every ``psd.npz``.

Layout read (``R`` = the results folder)::

    R/eval/{init}/{target}/{artifact}/p{p}/seed{seed}/metrics.json
    R/psd/pretrained/{init}/{target}/seed{seed}/psd.json
    R/psd/finetuned/{init}/{target}/{artifact}/p{p}/seed{seed}/psd.json   (p = 0 under artifact "none")
    R/artifacts/{target}/{artifact}/psd.json
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd import stats
from shortcut_psd.errors import DataError
from shortcut_psd.io import read_json

TEST_SETS = ("clean", "iid", "ood")
ALIGNMENT_MEASURES = ("cosine", "overlap")


def fmt_p(p: float) -> str:
    return f"{float(p):g}"


def read_curve(path: str | os.PathLike) -> dict[str, Any]:
    """A PSD JSON as ``{freqs, mean, lo, hi, n, scalars}`` (numpy arrays); errors name the file."""
    path = Path(path).with_suffix(".json")
    try:
        d = read_json(path)
        c = d["curve"]
        return {
            "freqs": np.asarray(c["freqs_cpp"], dtype=float),
            "mean": np.asarray(c["mean"], dtype=float),
            "lo": np.asarray(c["ci_lo"], dtype=float),
            "hi": np.asarray(c["ci_hi"], dtype=float),
            "n": int(d["n"]),
            "scalars": {k: (np.nan if v is None else float(v)) for k, v in d["scalars"].items()},
        }
    except FileNotFoundError as exc:
        raise DataError(f"PSD file {path} is missing; rerun the PSD step that writes it") from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"PSD file {path} is malformed ({exc}); delete it and rerun") from exc


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


# ------------------------------------------------------------------------------------------------
def auc_table(
    results: str | os.PathLike, conditions: Sequence[Sequence[Any]], artifacts: Sequence[str]
) -> pd.DataFrame:
    """One row per scored model: AUC (with bootstrap CI) on clean/iid/ood and the shortcut gap."""
    rows = []
    evaluated = set()
    for init, target, art, p, seed in conditions:
        arts = artifacts if art == "none" else [art]
        for a in arts:
            evaluated.add((init, target, a, fmt_p(p), int(seed)))
    for init, target, a, p, seed in sorted(evaluated):
        path = Path(results) / "eval" / init / target / a / f"p{p}" / f"seed{seed}" / "metrics.json"
        try:
            m = read_json(path)
        except FileNotFoundError as exc:
            raise DataError(f"metrics file {path} is missing; rerun its fine-tuning job") from exc
        row: dict[str, Any] = {
            "init": init,
            "target": target,
            "artifact": a,
            "prevalence": float(p),
            "seed": seed,
        }
        for s in TEST_SETS:
            d = m["sets"][s]
            row[f"auc_{s}"] = d["auc"]
            row[f"auc_{s}_lo"] = d["lo"]
            row[f"auc_{s}_hi"] = d["hi"]
        row["gap"] = m["gap"]
        row["best_epoch"] = m.get("best_epoch")
        row["n_test"] = m["sets"]["clean"].get("n")
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.astype({c: float for c in df.columns if c.startswith("auc_") or c == "gap"})


def auc_summary(auc: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
    cols = [f"auc_{s}" for s in TEST_SETS] + ["gap"]
    return stats.summarise(auc, ["init", "target", "artifact", "prevalence"], cols, ci=ci)


def init_tests(auc: pd.DataFrame, *, n_resamples: int, seed: int) -> pd.DataFrame:
    """Permutation tests between inits on the gap, per (target, artifact, p); p = 0 rows have no artifact."""
    sub = auc[auc["prevalence"] > 0]
    if sub.empty or sub["init"].nunique() < 2:
        return pd.DataFrame(
            columns=[
                "target",
                "artifact",
                "prevalence",
                "init_a",
                "init_b",
                "mean_a",
                "mean_b",
                "diff",
                "p_value",
                "p_holm",
                "n_a",
                "n_b",
            ]
        )
    return stats.pairwise_init_tests(
        sub, metric="gap", by=("target", "artifact", "prevalence"), n_resamples=n_resamples, seed=seed
    )


def psd_tables(
    results: str | os.PathLike,
    conditions: Sequence[Sequence[Any]],
    inits: Sequence[str],
    targets: Sequence[str],
    seeds: Sequence[int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PSD scalars of every curve, and the before-vs-after distance of every fine-tuned model."""
    r = Path(results)
    scal_rows, pers_rows = [], []
    pre: dict[tuple[str, str, int], dict] = {}
    for init in inits:
        for t in targets:
            for s in seeds:
                c = read_curve(r / "psd" / "pretrained" / init / t / f"seed{s}" / "psd.json")
                pre[(init, t, int(s))] = c
                scal_rows.append(
                    {
                        "stage": "pre-trained",
                        "init": init,
                        "target": t,
                        "artifact": "",
                        "prevalence": np.nan,
                        "seed": int(s),
                        "n_images": c["n"],
                        **c["scalars"],
                    }
                )
    for init, t, a, p, s in conditions:
        c = read_curve(r / "psd" / "finetuned" / init / t / a / f"p{p}" / f"seed{s}" / "psd.json")
        scal_rows.append(
            {
                "stage": "fine-tuned",
                "init": init,
                "target": t,
                "artifact": a,
                "prevalence": float(p),
                "seed": int(s),
                "n_images": c["n"],
                **c["scalars"],
            }
        )
        before = pre[(init, t, int(s))]
        dist = stats.curve_distance(before["mean"], c["mean"])
        pers_rows.append(
            {
                "init": init,
                "target": t,
                "artifact": a,
                "prevalence": float(p),
                "seed": int(s),
                "l1": dist["l1"],
                "js": dist["js"],
                "cosine_similarity": 1.0 - dist["cosine"],
                "centroid_before": before["scalars"]["centroid_cpp"],
                "centroid_after": c["scalars"]["centroid_cpp"],
                "centroid_change": c["scalars"]["centroid_cpp"] - before["scalars"]["centroid_cpp"],
            }
        )
    return pd.DataFrame(scal_rows), pd.DataFrame(pers_rows)


def alignment_tables(
    results: str | os.PathLike,
    auc: pd.DataFrame,
    inits: Sequence[str],
    artifacts: Sequence[str],
    targets: Sequence[str],
    seeds: Sequence[int],
    *,
    ci: float,
    n_permutations: int,
    n_boot: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Alignment of each init's pre-fine-tuning gradient PSD with each artifact PSD, against the gap.

    Returns ``(per_seed, summary, correlation)``: per-seed alignment and gap rows (the bootstrap unit),
    the summary per (init, target, artifact, p) with the alignment of the seed-mean curve and the gap's
    mean and CI over seeds, and the Spearman correlation per (target, p, measure).
    """
    r = Path(results)
    per_seed = []
    summary = []
    for t in targets:
        art_curves = {a: read_curve(r / "artifacts" / t / a / "psd.json")["mean"] for a in artifacts}
        for init in inits:
            curves = {
                s: read_curve(r / "psd" / "pretrained" / init / t / f"seed{s}" / "psd.json")["mean"]
                for s in seeds
            }
            mean_curve = np.mean([_unit(c) for c in curves.values()], axis=0)
            for a in artifacts:
                al_mean = alignment(mean_curve, art_curves[a])
                sub = auc[
                    (auc["init"] == init)
                    & (auc["target"] == t)
                    & (auc["artifact"] == a)
                    & (auc["prevalence"] > 0)
                ]
                for p, g in sub.groupby("prevalence"):
                    gap = stats.mean_ci(g["gap"].to_numpy(), ci=ci)
                    summary.append(
                        {
                            "init": init,
                            "target": t,
                            "artifact": a,
                            "prevalence": float(p),
                            "cosine": al_mean["cosine"],
                            "overlap": al_mean["overlap"],
                            "gap_mean": gap["mean"],
                            "gap_lo": gap["lo"],
                            "gap_hi": gap["hi"],
                            "n_seeds": gap["n"],
                        }
                    )
                    for _, row in g.iterrows():
                        al = alignment(curves[int(row["seed"])], art_curves[a])
                        per_seed.append(
                            {
                                "init": init,
                                "target": t,
                                "artifact": a,
                                "prevalence": float(p),
                                "seed": int(row["seed"]),
                                **al,
                                "gap": row["gap"],
                            }
                        )
    per_seed_df = pd.DataFrame(per_seed)
    summary_df = pd.DataFrame(summary)
    corr_rows = []
    if not summary_df.empty:
        for (t, p), g in summary_df.groupby(["target", "prevalence"]):
            ps = per_seed_df[(per_seed_df["target"] == t) & (per_seed_df["prevalence"] == p)]
            for measure in ALIGNMENT_MEASURES:
                rc = stats.rank_correlation(
                    g[measure], g["gap_mean"], n_permutations=n_permutations, seed=seed
                )
                bs = stats.bootstrap_rank_correlation(
                    ps,
                    x=measure,
                    y="gap",
                    unit="seed",
                    pair_cols=("init", "artifact"),
                    n_boot=n_boot,
                    seed=seed,
                    ci=ci,
                )
                corr_rows.append(
                    {
                        "target": t,
                        "prevalence": float(p),
                        "measure": measure,
                        "rho": rc["rho"],
                        "p_value": rc["p_value"],
                        "rho_lo": bs["lo"],
                        "rho_hi": bs["hi"],
                        "n_pairs": rc["n"],
                        "n_boot_valid": bs["n_boot_valid"],
                    }
                )
    return per_seed_df, summary_df, pd.DataFrame(corr_rows)


def dataset_table(card_paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    rows = []
    for path in card_paths:
        card = read_json(path)
        counts = card.get("counts", {})
        for split, per_class in counts.items():
            for cls, n in per_class.items():
                rows.append(
                    {
                        "dataset": card.get("name", Path(path).parent.name),
                        "split": split,
                        "class": cls,
                        "images": n,
                        "image_size": "x".join(map(str, card.get("image_size", []))),
                        "sources": "; ".join(_source_names(card)),
                    }
                )
    return pd.DataFrame(rows)


def _source_names(card: dict) -> list[str]:
    out = []
    for s in card.get("sources", []):
        if isinstance(s, dict):
            out.append(" ".join(str(s.get(k, "")) for k in ("package", "licence", "license") if s.get(k)))
        else:
            out.append(str(s))
    return out
