"""Turn the per-job outputs (metrics.json, psd.json) into the study's tables.

Torch-free on purpose: it runs in the light analysis environment and reads the PSD curves from the JSON
siblings that :meth:`shortcut_psd.spectral.PSDResult.save` writes next to every ``psd.npz``. The
inference is defined in docs/DEFINITIONS.md, "Statistics": AUC intervals resample seeds and groups of
test images (:mod:`shortcut_psd.clustered`); question 3 is tested within artifacts
(:mod:`shortcut_psd.association`); a p-value is printed only where the design can reach ``alpha``.

Files read (:mod:`shortcut_psd.layout`): ``eval_metrics``, ``psd_pretrained``, ``psd_finetuned`` and
``artifact_psd`` (artifact seed of each training seed), each PSD from the JSON next to the ``psd.npz``. The
readers take a results folder or a job's :class:`~shortcut_psd.layout.Inputs`.

The tables of rules ``aggregate`` and ``dynamics`` are registered here (:func:`shortcut_psd.layout.table`),
each a function of the rule's study object (:class:`Aggregation`, :class:`LearningOrder`).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd import association, clustered, layout, stats
from shortcut_psd.errors import DataError
from shortcut_psd.io import read_json
from shortcut_psd.layout import Inputs, Layout, table

Results = str | os.PathLike | Layout | Inputs  # a results folder, or a job's inputs (shortcut_psd.layout)

TEST_SETS = ("clean", "iid", "ood")
ALIGNMENT_MEASURES = ("cosine", "overlap")


def fmt_p(p: float) -> str:
    return f"{float(p):g}"


def read_curve(path: str | os.PathLike) -> dict[str, Any]:
    """A PSD JSON as ``{freqs, mean, lo, hi, n, scalars, group_names, group_n, group_curves,
    window_curves}`` (numpy arrays; the group and window entries None when absent); errors name the file."""
    path = Path(path).with_suffix(".json")
    try:
        d = read_json(path)
        c = d["curve"]

        def arr(v):
            return np.asarray([np.nan if x is None else x for x in v], dtype=float)

        groups = d.get("groups")
        return {
            "freqs": np.asarray(c["freqs_cpp"], dtype=float),
            "mean": arr(c["mean"]),
            "lo": arr(c["ci_lo"]),
            "hi": arr(c["ci_hi"]),
            "n": int(d["n"]),
            "scalars": {k: (np.nan if v is None else float(v)) for k, v in d["scalars"].items()},
            "group_names": groups["names"] if groups else None,
            "group_n": groups["n"] if groups else None,
            "group_curves": np.asarray(groups["curves"], dtype=float) if groups else None,
            "window_curves": {
                k: np.asarray(v, dtype=float) for k, v in (d.get("window_curves") or {}).items()
            },
            "window": d.get("options", {}).get("window"),
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
# AUC: per model, per condition (seeds x groups), between inits
# ------------------------------------------------------------------------------------------------
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
        w = clustered.cluster_weights(codes, n_groups, n_boot, np.random.default_rng([seed, t_index]))
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


def _resampled(n_seeds: int, n_groups: int, grouped: bool) -> str:
    unit = f"groups ({n_groups})" if grouped else f"images ({n_groups})"
    if n_seeds > 1:
        return f"seeds ({n_seeds}) x {unit}"
    return f"{unit}; 1 seed, so seed-to-seed variation is not in the interval"


def auc_summary(
    records: Sequence[Mapping[str, Any]], *, n_boot: int = 2000, seed: int = 0, ci: float = 0.95
) -> tuple[pd.DataFrame, dict]:
    """Per condition (init, target, artifact, p): the mean over seeds of each AUC and of the gap, with a
    percentile interval that resamples seeds and test groups (:func:`clustered.seed_group_replicates`).

    Returns the table and the replicates per condition (used by :func:`init_tests`).
    """
    reps = _replicates(records, n_boot=n_boot, seed=seed)
    conds: dict[tuple, list] = {}
    for key in sorted(reps):
        conds.setdefault(key[:4], []).append(key)
    rows, cond_reps = [], {}
    for c_index, (cond, keys) in enumerate(sorted(conds.items())):
        rng = np.random.default_rng([seed, 1, c_index])
        row: dict[str, Any] = dict(zip(("init", "target", "artifact", "prevalence"), cond, strict=True))
        cond_reps[cond] = {}
        for s in (*TEST_SETS, "gap"):
            name = f"auc_{s}" if s != "gap" else "gap"
            per_seed = np.stack([reps[k]["reps"][s] for k in keys])
            r = clustered.seed_group_replicates(per_seed, rng)
            cond_reps[cond][s] = r
            lo, hi = clustered.percentile_interval(r, ci)
            row[f"{name}_mean"] = float(np.nanmean([reps[k]["point"][s] for k in keys]))
            row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
        first = reps[keys[0]]
        row["n_seeds"] = len(keys)
        row["n_groups"] = first["n_groups"]
        row["resampled"] = _resampled(len(keys), first["n_groups"], first["grouped"])
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

    ``diff`` = mean gap of ``init_a`` minus that of ``init_b``; its interval resamples each init's seeds
    independently and the test groups once for both (they share the test images). The permutation test
    between the two sets of seeds (:func:`stats.permutation_test`, Holm within each (target, artifact, p))
    is printed only where its smallest attainable p, ``2 / C(n_a + n_b, n_a)``, is at most ``alpha``.
    """
    sub = auc[auc["prevalence"] > 0]
    if sub.empty or sub["init"].nunique() < 2:
        return pd.DataFrame(columns=INIT_TEST_COLUMNS)
    per_model = replicates["per_model"]
    rows = []
    for f_index, ((t, a, p), group) in enumerate(
        sub.groupby(["target", "artifact", "prevalence"], sort=True)
    ):
        family = []
        rng = np.random.default_rng([seed, 2, f_index])
        seeds_of = {i: sorted(g["seed"].astype(int)) for i, g in group.groupby("init", sort=True)}
        for ia, ib in itertools.combinations(sorted(seeds_of), 2):
            ga = group[group["init"] == ia]["gap"].to_numpy(float)
            gb = group[group["init"] == ib]["gap"].to_numpy(float)
            ra = np.stack([per_model[(ia, t, a, float(p), s)]["reps"]["gap"] for s in seeds_of[ia]])
            rb = np.stack([per_model[(ib, t, a, float(p), s)]["reps"]["gap"] for s in seeds_of[ib]])
            diff_reps = clustered.seed_group_replicates(ra, rng) - clustered.seed_group_replicates(rb, rng)
            lo, hi = clustered.percentile_interval(diff_reps, ci)
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
                "resampled": _resampled(
                    min(len(ga), len(gb)),
                    per_model[(ia, t, a, float(p), seeds_of[ia][0])]["n_groups"],
                    per_model[(ia, t, a, float(p), seeds_of[ia][0])]["grouped"],
                ),
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


# ------------------------------------------------------------------------------------------------
# Spectra: scalars, persistence, alignment and question 3
# ------------------------------------------------------------------------------------------------
def _pretrained_path(files: Layout | Inputs, init: str, target: str, seed: int) -> Path:
    return files.path("psd_pretrained", init=init, target=target, seed=int(seed))


def _artifact_path(files: Layout | Inputs, target: str, artifact: str, aseed: int) -> Path:
    return files.path("artifact_psd", target=target, artifact=artifact, aseed=int(aseed))


def psd_tables(
    results: Results,
    conditions: Sequence[Sequence[Any]],
    inits: Sequence[str],
    targets: Sequence[str],
    seeds: Sequence[int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PSD scalars of every curve, and the before-vs-after distance of every fine-tuned model."""
    r = layout.locate(results)
    scal_rows, pers_rows = [], []
    pre: dict[tuple[str, str, int], dict] = {}
    for init, t, s in itertools.product(inits, targets, seeds):
        c = read_curve(_pretrained_path(r, init, t, s))
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
        c = read_curve(r.path("psd_finetuned", init=init, target=t, artifact=a, p=p, seed=s))
        ident = {"init": init, "target": t, "artifact": a, "prevalence": float(p), "seed": int(s)}
        scal_rows.append({"stage": "fine-tuned", **ident, "n_images": c["n"], **c["scalars"]})
        before = pre[(init, t, int(s))]
        dist = stats.curve_distance(before["mean"], c["mean"])
        pers_rows.append(
            {
                **ident,
                "l1": dist["l1"],
                "js": dist["js"],
                "cosine_similarity": 1.0 - dist["cosine"],
                "centroid_before": before["scalars"]["centroid_cpp"],
                "centroid_after": c["scalars"]["centroid_cpp"],
                "centroid_change": c["scalars"]["centroid_cpp"] - before["scalars"]["centroid_cpp"],
            }
        )
    return pd.DataFrame(scal_rows), pd.DataFrame(pers_rows)


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


def dataset_table(card_paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    rows = []
    for path in card_paths:
        card = read_json(path)
        counts = card.get("counts", {})
        groups = card.get("groups", {}) or {}
        for split, per_class in counts.items():
            for cls, n in per_class.items():
                rows.append(
                    {
                        "dataset": card.get("name", Path(path).parent.name),
                        "split": split,
                        "class": cls,
                        "images": n,
                        "groups_in_split": groups.get(split),
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


# ------------------------------------------------------------------------------------------------
# The tables of rules aggregate and dynamics (registered: shortcut_psd.layout.outputs)
# ------------------------------------------------------------------------------------------------
class Aggregation:
    """What the tables of rule ``aggregate`` are computed from: the job's input files (``files``, looked up
    by kind: eval_metrics, psd_pretrained, psd_finetuned, artifact_psd, card) and the study's settings (the
    rule's params: inits, targets, artifacts, prevalences, seeds, conditions, artifact_seeds, stats). What
    several tables share is computed once, on first use."""

    def __init__(self, files: Inputs, params: Mapping[str, Any]) -> None:
        self.files = files
        self.params = params
        self.stats = params["stats"]

    @cached_property
    def records(self) -> list[dict[str, Any]]:
        p = self.params
        return load_metrics(
            self.files, p["inits"], p["targets"], p["artifacts"], p["prevalences"], p["seeds"]
        )

    @cached_property
    def auc(self) -> pd.DataFrame:
        return auc_table(self.records)

    @cached_property
    def summary_and_replicates(self) -> tuple[pd.DataFrame, dict]:
        st = self.stats
        return auc_summary(self.records, n_boot=st["bootstrap"], seed=st["seed"], ci=st["ci"])

    @property
    def summary(self) -> pd.DataFrame:
        return self.summary_and_replicates[0]

    @cached_property
    def psd(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(psd_scalars, psd_persistence)"""
        p = self.params
        return psd_tables(self.files, p["conditions"], p["inits"], p["targets"], p["seeds"])

    @cached_property
    def alignment(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(alignment, alignment_windows, alignment_association)"""
        p, st = self.params, self.stats
        aseeds = {int(k): int(v) for k, v in p["artifact_seeds"].items()}
        per_seed = alignment_per_seed(
            self.files, p["inits"], p["artifacts"], p["targets"], p["seeds"], aseeds
        )
        return alignment_tables(
            per_seed,
            self.auc,
            self.summary,
            ci=st["ci"],
            n_permutations=st["permutations"],
            n_boot=st["bootstrap"],
            seed=st["seed"],
            alpha=st["alpha"],
        )


@table("auc", rule="aggregate", needs=("eval_metrics",))
def table_auc(study: Aggregation) -> pd.DataFrame:
    return study.auc


@table("auc_summary", rule="aggregate", needs=("eval_metrics",))
def table_auc_summary(study: Aggregation) -> pd.DataFrame:
    return study.summary


@table("init_tests", rule="aggregate", needs=("eval_metrics",))
def table_init_tests(study: Aggregation) -> pd.DataFrame:
    st = study.stats
    return init_tests(
        study.auc,
        study.summary_and_replicates[1],
        n_resamples=st["permutations"],
        seed=st["seed"],
        ci=st["ci"],
        alpha=st["alpha"],
    )


@table("psd_scalars", rule="aggregate", needs=("psd_pretrained", "psd_finetuned"))
def table_psd_scalars(study: Aggregation) -> pd.DataFrame:
    return study.psd[0]


@table("psd_persistence", rule="aggregate", needs=("psd_pretrained", "psd_finetuned"))
def table_psd_persistence(study: Aggregation) -> pd.DataFrame:
    return study.psd[1]


@table("alignment", rule="aggregate", needs=("eval_metrics", "psd_pretrained", "artifact_psd"))
def table_alignment(study: Aggregation) -> pd.DataFrame:
    return study.alignment[0]


@table("alignment_windows", rule="aggregate", needs=("eval_metrics", "psd_pretrained", "artifact_psd"))
def table_alignment_windows(study: Aggregation) -> pd.DataFrame:
    return study.alignment[1]


@table("alignment_association", rule="aggregate", needs=("eval_metrics", "psd_pretrained", "artifact_psd"))
def table_alignment_association(study: Aggregation) -> pd.DataFrame:
    return study.alignment[2]


@table("datasets", rule="aggregate", needs=("card",))
def table_datasets(study: Aggregation) -> pd.DataFrame:
    return dataset_table(study.files.files("card"))


class LearningOrder:
    """What the tables and figures of rule ``dynamics`` come from (docs/DEFINITIONS.md, "Learning order";
    :mod:`shortcut_psd.dynamics`): ``entries``, one per trained model (phase, init, target, artifact,
    prevalence, seed and the ``path`` of its snapshots), and the rule's params (dynamics, stats)."""

    def __init__(self, entries: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> None:
        from shortcut_psd import dynamics

        self.entries = [dict(e) for e in entries]
        self.dynamics = dynamics.check_dynamics(params["dynamics"])
        st = params["stats"]
        self.stats = st
        self.n_boot, self.seed, self.ci = int(st["bootstrap"]), int(st["seed"]), float(st["ci"])

    @cached_property
    def _collected(self) -> tuple[pd.DataFrame, list]:
        from shortcut_psd import dynamics

        dyn = self.dynamics
        return dynamics.collect(
            self.entries,
            log_steps=int(dyn["log_steps"]),
            gap_threshold=float(dyn["gap_threshold"]),
            auc_threshold=float(dyn["auc_threshold"]),
        )

    @property
    def per_model(self) -> pd.DataFrame:
        return self._collected[0]

    @property
    def snaps(self) -> list:
        return self._collected[1]


@table("dynamics_per_model", rule="dynamics")
def table_dynamics_per_model(study: LearningOrder) -> pd.DataFrame:
    return study.per_model


@table("dynamics_summary", rule="dynamics")
def table_dynamics_summary(study: LearningOrder) -> pd.DataFrame:
    from shortcut_psd import dynamics

    if not len(study.per_model):
        return pd.DataFrame(columns=dynamics.SUMMARY_COLUMNS)
    return dynamics.summarise(study.per_model, n_boot=study.n_boot, seed=study.seed, ci=study.ci)


@table("dynamics_tests", rule="dynamics")
def table_dynamics_tests(study: LearningOrder) -> pd.DataFrame:
    from shortcut_psd import dynamics

    if not len(study.per_model):
        return pd.DataFrame(columns=dynamics.TEST_COLUMNS)
    dyn = study.dynamics
    return dynamics.source_tests(
        study.per_model,
        dyn["inits_natural"],
        dyn["inits_medical"],
        alpha=float(study.stats.get("alpha", 0.05)),
        permutations=int(study.stats["permutations"]),
        seed=study.seed,
    )
