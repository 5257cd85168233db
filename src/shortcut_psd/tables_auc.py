"""AUC tables: every scored model's AUCs and shortcut gap, their means per condition with t intervals whose
terms are the seed-to-seed and the test-group (bootstrap) variance (:mod:`shortcut_psd.clustered`), and the
gap differences between inits (tables ``auc``, ``auc_summary`` and ``init_tests``). The inference is
defined in docs/DEFINITIONS.md, "Statistics" (the test sets and the gap: docs/DEFINITIONS.md, "Shortcut
protocol"); a p-value is printed only where the design can reach ``alpha``.

Torch-free. Files read (:mod:`shortcut_psd.layout`): ``eval_metrics``; the readers take a results folder or a
job's :class:`~shortcut_psd.layout.Inputs`.

Re-exported by :mod:`shortcut_psd.aggregate`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd import clustered, layout, stats
from shortcut_psd.errors import DataError
from shortcut_psd.io import read_json
from shortcut_psd.tables_psd import Results

TEST_SETS = ("clean", "iid", "ood")


def fmt_p(p: float) -> str:
    return f"{float(p):g}"


def load_metrics(
    results: Results,
    inits: Sequence[str],
    targets: Sequence[str],
    artifacts: Sequence[str],
    prevalences: Sequence[float],
    seeds: Sequence[int],
) -> list[dict[str, Any]]:
    """Every scored model's metrics.json (one per init, target, artifact, p, seed), with its identity."""
    files = layout.locate(results)
    out = []
    for init, t, a, p, s in itertools.product(inits, targets, artifacts, prevalences, seeds):
        path = files.path("eval_metrics", init=init, target=t, artifact=a, p=fmt_p(p), seed=int(s))
        try:
            m = read_json(path)
        except FileNotFoundError as exc:
            raise DataError(f"metrics file {path} is missing; rerun its fine-tuning job") from exc
        m["_key"] = {"init": init, "target": t, "artifact": a, "prevalence": float(p), "seed": int(s)}
        out.append(m)
    return out


def auc_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per scored model: AUC (cluster-bootstrap CI over test groups) on clean/iid/ood and the gap."""
    rows = []
    for m in records:
        row: dict[str, Any] = dict(m["_key"])
        for s in TEST_SETS:
            d = m["sets"][s]
            row[f"auc_{s}"] = d["auc"]
            row[f"auc_{s}_lo"] = d["lo"]
            row[f"auc_{s}_hi"] = d["hi"]
        row["gap"] = m["gap"]
        row["gap_lo"] = m.get("gap_lo")
        row["gap_hi"] = m.get("gap_hi")
        row["best_epoch"] = m.get("best_epoch")
        row["n_test"] = m["sets"]["clean"].get("n")
        row["n_test_groups"] = m["sets"]["clean"].get("n_groups")
        realised = (m.get("prevalence_realised") or {}).get("train") or {}
        row["train_artifact_fraction"] = realised.get("fraction")
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.astype({c: float for c in df.columns if c.startswith(("auc_", "gap"))})


def _replicates(records: Sequence[Mapping[str, Any]], *, n_boot: int, seed: int) -> dict[tuple, dict]:
    """Per model: AUC of each test set (and the gap) under ``n_boot`` group resamples shared by every model
    of a target (they are scored on the same test images), plus the point values."""
    by_target: dict[str, list] = {}
    for m in records:
        by_target.setdefault(m["_key"]["target"], []).append(m)
    out: dict[tuple, dict] = {}
    for t_index, (target, ms) in enumerate(sorted(by_target.items())):
        test = ms[0].get("test")
        if not test:
            raise DataError(
                f"metrics of target '{target}' hold no per-image test scores (written by an older version); "
                "rerun the fine-tuning jobs"
            )
        y = np.asarray(test["labels"], dtype=bool)
        groups = test.get("groups")
        codes, n_groups = clustered.group_codes(groups, y.size)
        w = clustered.cluster_resamples(codes, n_groups, n_boot, np.random.default_rng([seed, t_index]))
        for m in ms:
            if m["test"].get("groups") != groups or len(m["test"]["labels"]) != y.size:
                raise DataError(
                    f"models of target '{target}' were scored on different test images; rerun them"
                )
            k = m["_key"]
            key = (k["init"], k["target"], k["artifact"], k["prevalence"], k["seed"])
            reps = {s: clustered.weighted_auc(y, m["test"]["scores"][s], w) for s in TEST_SETS}
            reps["gap"] = reps["clean"] - reps["ood"]
            point = {s: m["sets"][s]["auc"] for s in TEST_SETS}
            point["gap"] = m["gap"]
            out[key] = {"reps": reps, "point": point, "n_groups": n_groups, "grouped": groups is not None}
    return out


# Scale of each summarised statistic's interval (clustered.seed_group_t_interval).
SCALES = {"clean": "logit", "iid": "logit", "ood": "logit", "gap": "atanh"}


def _resampled(n_seeds: int | Sequence[int], n_groups: int, grouped: bool, scale: str) -> str:
    """The ``resampled`` column: the units whose variation the interval holds, the t degrees of freedom of
    each term and the scale (``n_seeds``: one count, or one per init for a difference)."""
    ns = [int(n_seeds)] if isinstance(n_seeds, (int, np.integer)) else [int(n) for n in n_seeds]
    unit = f"groups ({n_groups})" if grouped else f"images ({n_groups})"
    seeds = " vs ".join(str(n) for n in ns)
    seed_dfs = [str(n - 1) for n in ns if n > 1]
    terms = [f"{', '.join(seed_dfs)} (seeds)"] if seed_dfs else []
    terms += [f"{n_groups - 1} ({unit.split()[0]})"] if n_groups >= 2 else []
    if not terms:
        return "none: 1 seed and 1 test group, so no interval"
    head = f"seeds ({seeds}) x {unit}" if seed_dfs else unit
    text = f"{head}; t with {' and '.join(terms)} df, {scale} scale"
    if n_groups < 2:
        text += "; 1 test group, so group-to-group variation is not in the interval"
    if not seed_dfs:
        text += "; 1 seed, so seed-to-seed variation is not in the interval"
    elif min(ns) < 2:
        text += "; 1 seed in one init, so its seed-to-seed variation is not in the interval"
    return text


def auc_summary(
    records: Sequence[Mapping[str, Any]], *, n_boot: int = 2000, seed: int = 0, ci: float = 0.95
) -> tuple[pd.DataFrame, dict]:
    """Per condition (init, target, artifact, p): the mean over seeds of each AUC and of the gap, with a
    two-term t interval for seeds and test groups (:func:`clustered.seed_group_t_interval`; logit scale
    for AUCs, atanh for the gap; docs/DEFINITIONS.md, "Statistics"). The group term's variance comes from
    ``n_boot`` group resamples shared by every seed of a target (:func:`_replicates`).

    Returns the table and the replicates: ``conditions`` maps a condition and statistic to its per-seed
    group-resample replicates ``(S, n_boot)``, ``per_model`` holds each model's (used by
    :func:`init_tests`).
    """
    reps = _replicates(records, n_boot=n_boot, seed=seed)
    conds: dict[tuple, list] = {}
    for key in sorted(reps):
        conds.setdefault(key[:4], []).append(key)
    rows, cond_reps = [], {}
    for cond, keys in sorted(conds.items()):
        row: dict[str, Any] = dict(zip(("init", "target", "artifact", "prevalence"), cond, strict=True))
        cond_reps[cond] = {}
        first = reps[keys[0]]
        for s in (*TEST_SETS, "gap"):
            name = f"auc_{s}" if s != "gap" else "gap"
            per_seed = np.stack([reps[k]["reps"][s] for k in keys])
            point = np.array([reps[k]["point"][s] for k in keys], dtype=np.float64)
            cond_reps[cond][s] = per_seed
            lo, hi = clustered.seed_group_t_interval(point, per_seed, first["n_groups"], ci, scale=SCALES[s])
            row[f"{name}_mean"] = float(np.nanmean(point))
            row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
        row["n_seeds"] = len(keys)
        row["n_groups"] = first["n_groups"]
        row["resampled"] = _resampled(
            len(keys), first["n_groups"], first["grouped"], "logit (AUC) / atanh (gap)"
        )
        rows.append(row)
    return pd.DataFrame(rows), {"conditions": cond_reps, "per_model": reps}


def min_two_sample_p(n_a: int, n_b: int) -> float:
    """Smallest two-sided p of a permutation test between samples of ``n_a`` and ``n_b`` distinct values."""
    return 2.0 / math.comb(n_a + n_b, n_a) if n_a and n_b else float("nan")


INIT_TEST_COLUMNS = [
    "target",
    "artifact",
    "prevalence",
    "init_a",
    "init_b",
    "mean_a",
    "mean_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "p_value",
    "p_holm",
    "min_p",
    "n_a",
    "n_b",
    "resampled",
    "note",
]


def init_tests(
    auc: pd.DataFrame,
    replicates: Mapping[str, Any],
    *,
    n_resamples: int,
    seed: int,
    ci: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Gap differences between inits per (target, artifact, p > 0).

    ``diff`` = mean gap of ``init_a`` minus that of ``init_b``; its interval is a t interval with one term
    per init's seeds and one for the test groups, shared by both inits (they score the same test images):
    :func:`clustered.seed_group_t_difference`, docs/DEFINITIONS.md, "Statistics". The permutation test
    between the two sets of seeds (:func:`stats.permutation_test`, Holm within each (target, artifact, p))
    is printed only where its smallest attainable p, ``2 / C(n_a + n_b, n_a)``, is at most ``alpha``.
    """
    sub = auc[auc["prevalence"] > 0]
    if sub.empty or sub["init"].nunique() < 2:
        return pd.DataFrame(columns=INIT_TEST_COLUMNS)
    per_model = replicates["per_model"]
    rows = []
    for (t, a, p), group in sub.groupby(["target", "artifact", "prevalence"], sort=True):
        family = []
        seeds_of = {i: sorted(g["seed"].astype(int)) for i, g in group.groupby("init", sort=True)}
        for ia, ib in itertools.combinations(sorted(seeds_of), 2):
            ga = group[group["init"] == ia]["gap"].to_numpy(float)
            gb = group[group["init"] == ib]["gap"].to_numpy(float)
            ma = [per_model[(ia, t, a, float(p), s)] for s in seeds_of[ia]]
            mb = [per_model[(ib, t, a, float(p), s)] for s in seeds_of[ib]]
            # the same gaps in seed order, next to their group-resample replicates
            pa, pb = (np.array([m["point"]["gap"] for m in ms], dtype=np.float64) for ms in (ma, mb))
            ra, rb = (np.stack([m["reps"]["gap"] for m in ms]) for ms in (ma, mb))
            ref = ma[0]
            lo, hi = clustered.seed_group_t_difference(pa, ra, pb, rb, ref["n_groups"], ci)
            min_p = min_two_sample_p(len(ga), len(gb))
            row = {
                "target": t,
                "artifact": a,
                "prevalence": float(p),
                "init_a": ia,
                "init_b": ib,
                "mean_a": float(np.nanmean(ga)),
                "mean_b": float(np.nanmean(gb)),
                "diff": float(np.nanmean(ga) - np.nanmean(gb)),
                "diff_lo": lo,
                "diff_hi": hi,
                "p_value": np.nan,
                "min_p": min_p,
                "n_a": len(ga),
                "n_b": len(gb),
                "resampled": _resampled((len(ga), len(gb)), ref["n_groups"], ref["grouped"], "raw"),
                "note": "",
            }
            if np.isfinite(min_p) and min_p <= alpha:
                row["p_value"] = stats.permutation_test(ga, gb, n_resamples=n_resamples, seed=seed)["p_value"]
            else:
                row["note"] = (
                    f"no p-value: {len(ga)} vs {len(gb)} seeds give a smallest attainable p of {min_p:.3g} "
                    f"> alpha {alpha:g}; add seeds (seeds:) for a test"
                )
            family.append(row)
        for r, ph in zip(family, stats.holm([r["p_value"] for r in family]), strict=True):
            r["p_holm"] = float(ph)
        rows.extend(family)
    return pd.DataFrame(rows, columns=INIT_TEST_COLUMNS)
