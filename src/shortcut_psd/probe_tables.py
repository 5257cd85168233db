"""The probes' tables and figures of rule ``probes_report`` (torch-free, analysis environment).

Definitions: docs/DEFINITIONS.md, "Probes" (what is measured) and "Statistics" (intervals). Files read
(:mod:`shortcut_psd.layout`; the readers take a results folder or a job's
:class:`~shortcut_psd.layout.Inputs`): ``probes`` (labels: "pretrained", "{artifact}/p{p}", ...),
``psd_pretrained`` and ``psd_finetuned`` (gradient band power), ``artifact_psd`` (the artifact's own band)
and ``eval_metrics`` (shortcut gap). The tables and figures of rule ``probes_report`` are registered here
(:func:`shortcut_psd.layout.table` / :func:`~shortcut_psd.layout.figure`), each a function of
:class:`ProbeStudy`.

What they compute lives in :mod:`shortcut_psd.probe_summary` (the tables: band reliance with seeds x
groups intervals, relations between the three views, each artifact's own band vs gap) and
:mod:`shortcut_psd.probe_plots` (the figures); their names are re-exported here, so ``from
shortcut_psd import probe_tables`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd import layout
from shortcut_psd.layout import Inputs, figure, table
from shortcut_psd.probe_geometry import clean_label as after_label
from shortcut_psd.probe_geometry import heatmap_radial
from shortcut_psd.probe_plots import plot_band_reliance, plot_heatmaps
from shortcut_psd.probe_summary import (
    RELATION_NOTE,
    VIEWS,
    artifact_band_table,
    band_power,
    band_reliance_table,
    heat_radial,
    load_probes,
    relation_views,
    relations_table,
    reliance_summary,
    spearman,
)


# -- the tables and figures of rule probes_report (registered: shortcut_psd.layout.outputs) ----------------
class ProbeStudy:
    """What rule ``probes_report`` draws from: the job's input files (``files``, looked up by kind: probes,
    psd_pretrained, psd_finetuned, artifact_psd, eval_metrics) and the rule's params (artifacts,
    artifact_seeds, p0_models, stats)."""

    def __init__(self, files: Inputs, params: Mapping[str, Any]) -> None:
        self.files = files
        self.params = params
        self.ci = params["stats"]["ci"]
        model = layout.after_model(params["p0_models"])
        #: the label of the model that stands for an init after fine-tuning
        self.after = f"{model}/p0" if model is not None else None

    @cached_property
    def runs(self) -> dict[tuple[str, str, int], dict[str, np.ndarray]]:
        """Every probe job's results by (init, target, seed)."""
        return {
            (wc["init"], wc["target"], int(wc["seed"])): load_probes(path)
            for wc, path in self.files.items("probes")
        }

    @cached_property
    def reliance(self) -> pd.DataFrame:
        return band_reliance_table(self.runs, ci=self.ci)


@table("probe_band_reliance", rule="probes_report", needs=("probes",))
def table_probe_band_reliance(study: ProbeStudy) -> pd.DataFrame:
    return study.reliance


@table("probe_relations", rule="probes_report", needs=("probes", "psd_pretrained", "psd_finetuned"))
def table_probe_relations(study: ProbeStudy) -> pd.DataFrame:
    return relations_table(relation_views(study.files, study.runs, after=study.after))


@table("probe_artifact_band", rule="probes_report", needs=("probes", "artifact_psd", "eval_metrics"))
def table_probe_artifact_band(study: ProbeStudy) -> pd.DataFrame:
    p = study.params
    return artifact_band_table(
        study.files,
        study.runs,
        artifacts=p["artifacts"],
        artifact_seeds={int(k): int(v) for k, v in p["artifact_seeds"].items()},
        p0_models=p["p0_models"],
        ci=study.ci,
    )


@figure("probe_band_reliance", rule="probes_report", needs=("probes",))
def figure_probe_band_reliance(study: ProbeStudy):
    return plot_band_reliance(study.reliance, after=study.after)


@figure("probe_heatmap", rule="probes_report", needs=("probes",))
def figure_probe_heatmap(study: ProbeStudy):
    return plot_heatmaps(study.runs, after=study.after)


__all__ = [
    "RELATION_NOTE",
    "VIEWS",
    "ProbeStudy",
    "after_label",
    "artifact_band_table",
    "band_power",
    "band_reliance_table",
    "figure_probe_band_reliance",
    "figure_probe_heatmap",
    "heat_radial",
    "heatmap_radial",
    "load_probes",
    "plot_band_reliance",
    "plot_heatmaps",
    "relation_views",
    "relations_table",
    "reliance_summary",
    "spearman",
    "table_probe_artifact_band",
    "table_probe_band_reliance",
    "table_probe_relations",
]
