"""Learning order, what is recorded when: the ``dynamics`` options, the snapshot schedule, and the settings
that decide whether a training job must rerun (docs/DEFINITIONS.md, "Learning order", bullets Schedule and Reruns).

Re-exported by :mod:`shortcut_psd.dynamics`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shortcut_psd.dynamics_recipes import RECIPES
from shortcut_psd.errors import ConfigError

#: config ``dynamics`` defaults (workflow/schemas/config.schema.yaml)
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "log_steps": 3,
    "max_images": 32,
    "max_eval_images": 128,
    "spectra2d_at": 3,
    "gap_threshold": 0.1,
    "auc_threshold": 0.1,
    "inits_natural": [],
    "inits_medical": [],
}
#: the dynamics keys that change what is recorded during training (the others act in the aggregation only)
TRAIN_KEYS = ("enabled", "log_steps", "max_images", "max_eval_images", "spectra2d_at")
#: the psd keys that change a snapshot
PSD_KEYS = ("batch_size", "window", "tukey_alpha", "spectrum", "channels", "normalise", "include_corners",
            "bands_cpp", "recipe", "amp")  # fmt: skip


def check_dynamics(dyn: Mapping[str, Any] | None, inits: Sequence[str] | None = None) -> dict[str, Any]:
    """``DEFAULTS`` updated by ``dyn``; an unknown key or bad value raises :class:`ConfigError` naming it.
    With ``inits`` (the config's init names), ``inits_natural`` and ``inits_medical`` must name some of them."""
    dyn = dict(dyn or {})
    unknown = sorted(set(dyn) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown key(s) dynamics.{', dynamics.'.join(unknown)}; known: {', '.join(DEFAULTS)}"
        )
    out = {**DEFAULTS, **dyn}
    for key, lo in (("log_steps", 0), ("max_images", 1), ("max_eval_images", 1), ("spectra2d_at", 0)):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ConfigError(f"dynamics.{key} must be an integer >= {lo}; got {v!r}: set it in the config")
    for key in ("gap_threshold", "auc_threshold"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < float(v) < 1:
            raise ConfigError(f"dynamics.{key} must be a number in (0, 1); got {v!r}: set it in the config")
    if not isinstance(out["enabled"], bool):
        raise ConfigError(f"dynamics.enabled must be true or false; got {out['enabled']!r}")
    both = set(out["inits_natural"]) & set(out["inits_medical"])
    if both:
        raise ConfigError(
            f"dynamics.inits_natural and dynamics.inits_medical share {sorted(both)}; list each once"
        )
    return out


def snapshot_steps(steps_per_epoch: int, epochs: int, log_steps: int) -> list[int]:
    """Step 0, ``log_steps`` log-spaced steps in ``[1, steps_per_epoch)``, and every epoch end (sorted, unique)."""
    if steps_per_epoch < 1 or epochs < 1:
        raise ConfigError(
            f"a schedule needs >= 1 step per epoch and >= 1 epoch; got {steps_per_epoch}, {epochs}"
        )
    if log_steps < 0:
        raise ConfigError(f"dynamics.log_steps must be >= 0; got {log_steps}")
    steps = {0} | {e * steps_per_epoch for e in range(1, epochs + 1)}
    if log_steps and steps_per_epoch > 1:
        grid = np.geomspace(1, steps_per_epoch - 1, num=log_steps) if steps_per_epoch > 2 else [1]
        steps |= {int(round(float(s))) for s in grid}
    return sorted(steps)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimiser steps per epoch of :func:`shortcut_psd.train.train_classifier` (a last batch of one image is dropped)."""
    return n_train // batch_size + (1 if n_train % batch_size > 1 else 0)


def snapshot_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a training job's snapshots depend on: ``{"dynamics": {TRAIN_KEYS}, "psd": {PSD_KEYS}}``.

    Under a named ``psd.recipe`` other than ``default``, ``psd`` also holds ``recipe_options`` (the recipe's
    definition, :data:`shortcut_psd.dynamics_recipes.RECIPES`), so that a changed definition reruns the
    snapshots recorded under the old one."""
    d = check_dynamics(config.get("dynamics"), inits=list(config.get("inits", {})))
    psd = config["psd"]
    out = {
        "dynamics": {k: d[k] for k in TRAIN_KEYS},
        "psd": {k: psd[k] for k in PSD_KEYS if k in psd},
    }
    spec = RECIPES.get(psd.get("recipe", "default"))
    if spec:
        out["psd"]["recipe_options"] = dict(spec)
    return out


def stored_settings(path: str | os.PathLike) -> dict[str, Any] | None:
    """The settings a snapshot file was recorded with (None when absent or unreadable)."""
    import json

    try:
        with np.load(path, allow_pickle=False) as z:
            out = json.loads(str(z["settings"])) if "settings" in z.files else None
            if out is not None:
                out["_steps"] = z["steps"].tolist()
                out["_spe"] = int(z["steps_per_epoch"]) if "steps_per_epoch" in z.files else None
                out["_epochs"] = int(z["epochs"]) if "epochs" in z.files else None
            return out
    except (OSError, KeyError, ValueError):
        return None


def snapshot_params(requested: Mapping[str, Any], paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """The ``params`` value of a training rule, chosen so that reruns stay precise.

    ``requested`` is :func:`snapshot_settings` of the config. When every file of ``paths`` already holds
    snapshots recorded with the same settings except ``dynamics.log_steps`` and ``dynamics.spectra2d_at``,
    and its steps cover the schedule now requested, the stored settings are returned: Snakemake then sees
    unchanged params and does not retrain (the aggregation keeps only the requested steps). Otherwise the
    requested settings are returned, and a changed value reruns training: snapshots can only be taken
    while the model trains.
    """
    req = {"dynamics": dict(requested["dynamics"]), "psd": dict(requested["psd"])}
    loose = ("log_steps", "spectra2d_at")
    stored_all = [stored_settings(p) for p in paths]
    if not paths or any(s is None for s in stored_all):
        return req
    st0 = stored_all[0]
    if set(st0["dynamics"]) != set(req["dynamics"]) or set(st0["psd"]) != set(req["psd"]):
        return req
    # the requested key order: Snakemake compares params by their text, so the order must not change
    first = {
        "dynamics": {k: st0["dynamics"][k] for k in req["dynamics"]},
        "psd": {k: st0["psd"][k] for k in req["psd"]},
    }
    for st in stored_all:
        same = st["psd"] == req["psd"] and {k: v for k, v in st["dynamics"].items() if k not in loose} == {
            k: v for k, v in req["dynamics"].items() if k not in loose
        }
        if not same or st["dynamics"] != first["dynamics"] or not req["dynamics"]["enabled"]:
            return req
        if st["_spe"] is None or st["_epochs"] is None:
            return req
        want = snapshot_steps(st["_spe"], st["_epochs"], int(req["dynamics"]["log_steps"]))
        if not set(want) <= set(st["_steps"]):
            return req
    return first


def covers(path: str | os.PathLike, steps: Sequence[int]) -> bool:
    """Whether the snapshot file at ``path`` holds every step of ``steps`` (for precise reruns)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return set(int(s) for s in steps) <= set(z["steps"].tolist())
    except (OSError, KeyError, ValueError):
        return False
