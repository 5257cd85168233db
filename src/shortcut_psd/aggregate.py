"""Turn the per-job outputs (metrics.json, psd.json) into the study's tables.

Torch-free on purpose: it runs in the light analysis environment and reads the PSD curves from the JSON
siblings that :meth:`shortcut_psd.spectral.PSDResult.save` writes next to every ``psd.npz``. The
inference is defined in docs/DEFINITIONS.md, "Statistics": AUC intervals resample seeds and groups of
test images (:mod:`shortcut_psd.clustered`); question 3 is tested within artifacts
(:mod:`shortcut_psd.association`); a p-value is printed only where the design can reach ``alpha``.

Files read (:mod:`shortcut_psd.layout`): ``eval_metrics``, ``psd_pretrained``, ``psd_finetuned``,
``artifact_psd`` (artifact seed of each training seed), each PSD from the JSON next to the ``psd.npz``, and
``card``. The readers take a results folder or a job's :class:`~shortcut_psd.layout.Inputs`.

The tables of rule ``aggregate`` are registered here (:func:`shortcut_psd.layout.table`), each a function
of the rule's study object (:class:`Aggregation`); those of rule ``dynamics`` in
:mod:`shortcut_psd.aggregate_dynamics` (:class:`LearningOrder`, re-exported here). The computation lives in
one module per topic; this module re-exports their names (and the private helpers callers used before the
split), so ``from shortcut_psd import aggregate`` keeps working:

- :mod:`shortcut_psd.tables_auc`: AUC per model and per condition (seeds x groups), tests between inits;
- :mod:`shortcut_psd.tables_psd`: the PSD JSON reader (:func:`read_curve`), PSD scalars and persistence;
- :mod:`shortcut_psd.tables_alignment`: alignment of gradient and artifact PSDs, and question 3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from shortcut_psd.aggregate_dynamics import LearningOrder as LearningOrder
from shortcut_psd.aggregate_dynamics import table_dynamics_per_model as table_dynamics_per_model
from shortcut_psd.aggregate_dynamics import table_dynamics_summary as table_dynamics_summary
from shortcut_psd.aggregate_dynamics import table_dynamics_tests as table_dynamics_tests
from shortcut_psd.io import read_json
from shortcut_psd.layout import Inputs, table
from shortcut_psd.tables_alignment import ALIGNMENT_MEASURES as ALIGNMENT_MEASURES
from shortcut_psd.tables_alignment import _artifact_path as _artifact_path
from shortcut_psd.tables_alignment import _unit as _unit
from shortcut_psd.tables_alignment import alignment as alignment
from shortcut_psd.tables_alignment import alignment_per_seed, alignment_tables
from shortcut_psd.tables_auc import INIT_TEST_COLUMNS as INIT_TEST_COLUMNS
from shortcut_psd.tables_auc import TEST_SETS as TEST_SETS
from shortcut_psd.tables_auc import _replicates as _replicates
from shortcut_psd.tables_auc import _resampled as _resampled
from shortcut_psd.tables_auc import auc_summary, auc_table, init_tests, load_metrics
from shortcut_psd.tables_auc import fmt_p as fmt_p
from shortcut_psd.tables_auc import min_two_sample_p as min_two_sample_p
from shortcut_psd.tables_psd import Results as Results
from shortcut_psd.tables_psd import _pretrained_path as _pretrained_path
from shortcut_psd.tables_psd import psd_tables
from shortcut_psd.tables_psd import read_curve as read_curve


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
# The tables of rule aggregate (registered: shortcut_psd.layout.outputs)
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
