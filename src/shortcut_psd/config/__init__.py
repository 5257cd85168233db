"""Config validation and the study's target lists.

``prepare(config, configfiles)`` is called by the Snakefile before any rule is planned. It

1. re-reads each config file with a YAML loader that refuses duplicate keys (PyYAML silently keeps the
   last of two equal keys, which would hide a typo'd second init or artifact): :mod:`.loading`;
2. validates against the schema, ``config.schema.yaml`` in this package (``workflow/schemas/`` links to
   it), and fills in its defaults: :mod:`.schema`;
3. runs the semantic checks the schema cannot express (:func:`check_semantics`, :mod:`.semantics`), each
   section's by the module it protects: :mod:`.datasets`, :mod:`.inits`, :mod:`.kinds` (through
   :mod:`shortcut_psd.edits` and :mod:`shortcut_psd.artifacts`), :mod:`.model_fit` (passed checks cached
   by :mod:`.fit_cache`).

Every failure raises :class:`~shortcut_psd.errors.ConfigError` with the dotted key, the bad value, and
what is allowed, so the run stops before any job starts and nothing already computed is touched.
:mod:`.grid` turns a checked config into names, hashes and the study's grid.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from shortcut_psd.config.common import _check_params, _under, _unknown
from shortcut_psd.config.datasets import BINARY_BUILTINS, BUILTIN_DATASETS, check_builtin_params
from shortcut_psd.config.grid import (
    CLEAN,
    artifact_seed_for,
    artifact_seeds,
    clean_model_artifacts,
    config_hash,
    finetune_conditions,
    fmt_p,
    own_p0_artifacts,
    psd_options,
    shares_clean_model,
    shortcut_prevalences,
    source_datasets,
    source_pairs,
)
from shortcut_psd.config.loading import _check_duplicate_keys, _construct_mapping, _UniqueKeyLoader, load_yaml
from shortcut_psd.config.model_fit import _flow, _forward_zeros, _size_fix, check_model_fits, timm_is_model
from shortcut_psd.config.schema import (
    SCHEMA_PATH,
    _DefaultFillingValidator,
    _dotted,
    _extend_with_default,
    _format_error,
    _subschema_at,
    load_schema,
    validate,
)
from shortcut_psd.config.semantics import check_semantics

#: the repository root, for a source checkout (src/shortcut_psd/config/ -> ../../..)
REPO_ROOT = Path(__file__).resolve().parents[3]


def prepare(
    config: dict, configfiles: Iterable[str | os.PathLike] = (), *, workdir=".", check_model=True
) -> dict:
    """Validate ``config`` in place (defaults filled) and check it; the Snakefile calls this first."""
    for f in configfiles:
        load_yaml(f)  # duplicate keys and syntax errors, with the file named
    validate(config)
    check_semantics(config, workdir=workdir, check_model=check_model)
    return config


__all__ = [
    "BINARY_BUILTINS",
    "BUILTIN_DATASETS",
    "CLEAN",
    "REPO_ROOT",
    "SCHEMA_PATH",
    "_DefaultFillingValidator",
    "_UniqueKeyLoader",
    "_check_duplicate_keys",
    "_check_params",
    "_construct_mapping",
    "_dotted",
    "_extend_with_default",
    "_flow",
    "_format_error",
    "_forward_zeros",
    "_size_fix",
    "_subschema_at",
    "_under",
    "_unknown",
    "artifact_seed_for",
    "artifact_seeds",
    "check_builtin_params",
    "check_model_fits",
    "check_semantics",
    "clean_model_artifacts",
    "config_hash",
    "finetune_conditions",
    "fmt_p",
    "load_schema",
    "load_yaml",
    "own_p0_artifacts",
    "prepare",
    "psd_options",
    "shares_clean_model",
    "shortcut_prevalences",
    "source_datasets",
    "source_pairs",
    "timm_is_model",
    "validate",
]
