"""Learning order: the gradient PSD (and, when fine-tuning, the test AUCs) at a schedule of steps.

Definitions: docs/DEFINITIONS.md, "Learning order".

- **Schedule** (:func:`snapshot_steps`): step 0 (before any update), ``log_steps`` log-spaced steps inside
  the first epoch, then the end of every epoch. A step ``k`` means "after ``k`` optimiser updates".
- **Snapshot** (:class:`SnapshotRecorder`): at each scheduled step the model's gradient PSD on a fixed,
  seeded subset of held-out images, with the config's ``psd`` options (``psd.recipe`` applied), in
  ``eval()`` mode; the torch RNG state and the model's train/eval mode are restored afterwards, and no
  parameter gradient is touched, so training is not disturbed. Fine-tuning also scores the clean, iid and
  ood test sets (AUC; never used for model selection).
- **Scalars** (:func:`model_scalars`): band shares of the gradient power per step; the band onset (first
  step at which a band's share has made half of its total change from step 0 to the last step); the
  spectral centroid per step; and the first step at which the shortcut gap, or the clean AUC minus 0.5,
  exceeds a threshold.
- **Aggregation** (:func:`summarise`, :func:`source_tests`): mean over seeds with percentile intervals
  that resample seeds (``S - 1`` of ``S`` per replicate), and a permutation test between the natural and
  the medical inits over seeds, printed only where the design can reach ``stats.alpha``.

The code lives in one module per job; this module re-exports every public name (and the private helpers
that callers used before the split), so ``from shortcut_psd import dynamics`` keeps working:

- :mod:`shortcut_psd.dynamics_schedule`: ``dynamics`` options, schedule, settings and reruns;
- :mod:`shortcut_psd.dynamics_recipes`: ``psd.recipe`` (the spectrum of a snapshot);
- :mod:`shortcut_psd.dynamics_record`: recording during training and from checkpoints;
- :mod:`shortcut_psd.dynamics_scalars`: per-model scalars and the per-model table;
- :mod:`shortcut_psd.dynamics_summary`: aggregation over seeds and mean trajectories;
- :mod:`shortcut_psd.dynamics_plots`: figures.
"""

from __future__ import annotations

from shortcut_psd.dynamics_recipes import RECIPES, RecipeSpectrum, recipe_options, recipe_psd
from shortcut_psd.dynamics_recipes import _renormalise as _renormalise
from shortcut_psd.dynamics_record import (
    SnapshotRecorder,
    SourceSnapshots,
    checkpoint_sequence,
    eval_subset,
    recorder_for,
    write,
)
from shortcut_psd.dynamics_record import _auc_of as _auc_of
from shortcut_psd.dynamics_record import _distinct_images as _distinct_images
from shortcut_psd.dynamics_record import _probabilities as _probabilities
from shortcut_psd.dynamics_scalars import (
    BANDS,
    ID_COLUMNS,
    band_shares,
    centroids,
    collect,
    first_exceeding,
    half_change_step,
    load_snapshots,
    model_scalars,
    requested_view,
)
from shortcut_psd.dynamics_schedule import (
    DEFAULTS,
    PSD_KEYS,
    TRAIN_KEYS,
    check_dynamics,
    covers,
    snapshot_params,
    snapshot_settings,
    snapshot_steps,
    steps_per_epoch,
    stored_settings,
)
from shortcut_psd.dynamics_summary import (
    SUMMARY_COLUMNS,
    TEST_COLUMNS,
    mean_trajectory,
    seed_interval,
    source_tests,
    summarise,
)

__all__ = [
    "BANDS",
    "DEFAULTS",
    "ID_COLUMNS",
    "PSD_KEYS",
    "RECIPES",
    "SUMMARY_COLUMNS",
    "TEST_COLUMNS",
    "TRAIN_KEYS",
    "RecipeSpectrum",
    "SnapshotRecorder",
    "SourceSnapshots",
    "band_shares",
    "centroids",
    "check_dynamics",
    "checkpoint_sequence",
    "collect",
    "covers",
    "eval_subset",
    "first_exceeding",
    "half_change_step",
    "load_snapshots",
    "mean_trajectory",
    "model_scalars",
    "recipe_options",
    "recipe_psd",
    "recorder_for",
    "requested_view",
    "seed_interval",
    "snapshot_params",
    "snapshot_settings",
    "snapshot_steps",
    "source_tests",
    "steps_per_epoch",
    "stored_settings",
    "summarise",
    "write",
]
