"""Rule ``dynamics``: the learning order's tables and figures (docs/DEFINITIONS.md, "Learning order").

:class:`LearningOrder` is the rule's study object; each table and figure is registered here
(:func:`shortcut_psd.layout.table` / :func:`~shortcut_psd.layout.figure`) as a function of it, next to the
others of the rule, in the order the rule writes them. The computation lives in :mod:`shortcut_psd.dynamics`
(per-model scalars, summaries over seeds, the natural vs medical test) and the drawing in
:mod:`shortcut_psd.dynamics_plots`; both are imported on first use, so this module stays light (no torch, no
matplotlib at import).

Re-exported by :mod:`shortcut_psd.aggregate` (study object and tables) and :mod:`shortcut_psd.plots`
(figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from shortcut_psd.layout import figure, table

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
        self.seed, self.ci = int(st["seed"]), float(st["ci"])

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

    @property
    def step_range(self) -> dict[str, tuple[float, float]]:
        """Per phase, 0 and the last snapshot step of any model: the range of a step-valued scalar."""
        out: dict[str, tuple[float, float]] = {}
        for s in self.snaps:
            last = float(max(s["steps"]))
            out[s["phase"]] = (0.0, max(last, out.get(s["phase"], (0.0, 0.0))[1]))
        return out


@table("dynamics_per_model", rule="dynamics")
def table_dynamics_per_model(study: LearningOrder) -> pd.DataFrame:
    return study.per_model


@table("dynamics_summary", rule="dynamics")
def table_dynamics_summary(study: LearningOrder) -> pd.DataFrame:
    from shortcut_psd import dynamics

    if not len(study.per_model):
        return pd.DataFrame(columns=dynamics.SUMMARY_COLUMNS)
    return dynamics.summarise(study.per_model, ci=study.ci, steps=study.step_range)


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


@figure("dynamics_heatmap", rule="dynamics")
def figure_dynamics_heatmap(study: LearningOrder) -> Figure:
    from shortcut_psd import dynamics_plots

    return dynamics_plots.heatmap(study.snaps)


@figure("dynamics_centroid", rule="dynamics")
def figure_dynamics_centroid(study: LearningOrder) -> Figure:
    from shortcut_psd import dynamics_plots

    return dynamics_plots.centroid_curves(study.snaps, ci=study.ci)


@figure("dynamics_shortcut", rule="dynamics")
def figure_dynamics_shortcut(study: LearningOrder) -> Figure:
    from shortcut_psd import dynamics_plots

    return dynamics_plots.shortcut_timing(study.snaps, ci=study.ci)
