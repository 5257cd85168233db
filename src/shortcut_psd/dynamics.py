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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd.errors import ConfigError, DataError

#: ``psd.recipe``: spectrum options of this study and of two neighbouring tools (docs/DEFINITIONS.md,
#: "Learning order"). ``drop_dc``: the zero-frequency bin is set to 0 before the per-curve normalisation.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "freqbias": {"spectrum": "amplitude", "channels": "sum_power", "normalise": "minmax", "drop_dc": False},
    "fsr": {"spectrum": "power", "normalise": "sum", "drop_dc": True},
}
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
BANDS = ("low", "mid", "high")


# -- schedule -------------------------------------------------------------------------------------------
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


def recorder_for(
    train_images: int,
    recipe: Mapping[str, Any],
    held_out: tuple[np.ndarray, np.ndarray],
    preprocess: Callable,
    psd: Mapping[str, Any],
    dyn: Mapping[str, Any],
    *,
    seed: int,
    device: Any,
    eval_sets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> SnapshotRecorder | None:
    """The recorder of one training run (None when ``dynamics.enabled`` is false).

    ``held_out``: the images and labels the gradient PSD is taken on; a seeded, class-stratified subset of
    ``dynamics.max_images`` is used (seed = the model's seed). ``eval_sets`` (clean / iid / ood test sets,
    the same images in the same order) are cut to one shared subset of ``dynamics.max_eval_images``.
    """
    d = check_dynamics(dyn)
    if not d["enabled"]:
        return None
    x, y = held_out
    keep = eval_subset(len(y), y, int(d["max_images"]), seed)
    if eval_sets:
        first = next(iter(eval_sets.values()))[1]
        ek = eval_subset(len(first), first, int(d["max_eval_images"]), seed + 1)
        eval_sets = {k: (v[0][ek], np.asarray(v[1])[ek]) for k, v in eval_sets.items()}
    spe = steps_per_epoch(int(train_images), int(recipe.get("batch_size", 128)))
    steps = snapshot_steps(spe, int(recipe.get("epochs", 5)), int(d["log_steps"]))
    rec = SnapshotRecorder(
        steps,
        x[keep],
        np.asarray(y)[keep],
        preprocess,
        psd,
        device=device,
        eval_sets=eval_sets,
        spectra2d_at=int(d["spectra2d_at"]),
    )
    rec.meta = {
        "steps_per_epoch": spe,
        "epochs": int(recipe.get("epochs", 5)),
        "log_steps": int(d["log_steps"]),
    }
    return rec


class SourceSnapshots:
    """Factory for pre-training (``study.pretrain_source(on_step=...)``): the recorder is built once the
    training images (after subsampling) and the preprocessing are known; held-out images = the source's
    ``test`` split (``val`` when it has none). ``recorder`` is None when ``dynamics.enabled`` is false."""

    factory = True

    def __init__(self, ds, recipe, psd, dyn, *, seed: int, device: Any) -> None:
        self.ds, self.recipe, self.psd, self.dyn, self.seed, self.device = ds, recipe, psd, dyn, seed, device
        self.recorder: SnapshotRecorder | None = None
        check_dynamics(dyn)

    def __call__(self, n_train: int, preprocess: Callable):
        split = "test" if len(self.ds.indices("test")) else "val"
        held = self.ds.subset(split)
        self.recorder = recorder_for(
            n_train, self.recipe, held, preprocess, self.psd, self.dyn, seed=self.seed, device=self.device
        )
        return self.recorder


def write(
    path: str | os.PathLike,
    recorder: SnapshotRecorder | None,
    identity: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Write one trained model's snapshots (an empty file with ``enabled = False`` when disabled), with the
    ``settings`` (:func:`snapshot_settings`) they were recorded under, for :func:`snapshot_params`."""
    import json

    from shortcut_psd.io import save_npz

    ident = np.asarray(json.dumps(dict(identity), sort_keys=True, default=str))
    sett = np.asarray(json.dumps(dict(settings or {}), sort_keys=True, default=str))
    if recorder is None:
        save_npz(
            path, enabled=np.asarray(False), steps=np.zeros(0, dtype=np.int64), identity=ident, settings=sett
        )
    else:
        recorder.save(path, enabled=np.asarray(True), identity=ident, settings=sett)


#: the dynamics keys that change what is recorded during training (the others act in the aggregation only)
TRAIN_KEYS = ("enabled", "log_steps", "max_images", "max_eval_images", "spectra2d_at")
#: the psd keys that change a snapshot
PSD_KEYS = ("batch_size", "window", "tukey_alpha", "spectrum", "channels", "normalise", "include_corners",
            "bands_cpp", "recipe", "amp")  # fmt: skip


def snapshot_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a training job's snapshots depend on: ``{"dynamics": {TRAIN_KEYS}, "psd": {PSD_KEYS}}``."""
    d = check_dynamics(config.get("dynamics"), inits=list(config.get("inits", {})))
    psd = config["psd"]
    return {
        "dynamics": {k: d[k] for k in TRAIN_KEYS},
        "psd": {k: psd[k] for k in PSD_KEYS if k in psd},
    }


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


def recipe_options(psd: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``(psd options with psd.recipe applied, drop_dc)``; an unknown recipe raises naming ``psd.recipe``."""
    from shortcut_psd.config import psd_options

    name = psd.get("recipe", "default")
    if name not in RECIPES:
        raise ConfigError(f"psd.recipe '{name}' is not one of {', '.join(RECIPES)}")
    over = dict(RECIPES[name])
    drop_dc = bool(over.pop("drop_dc", False))
    return {**psd_options(psd), **over}, drop_dc


def _renormalise(curve: np.ndarray, how: str, drop_dc: bool) -> np.ndarray:
    c = np.asarray(curve, dtype=np.float64).copy()
    if drop_dc:
        c[0] = 0.0
        if how == "sum" and c.sum() > 0:
            c = c / c.sum()
    return c


# -- recording ------------------------------------------------------------------------------------------
class SnapshotRecorder:
    """Callable ``(step, model)`` for :func:`shortcut_psd.train.train_classifier`'s ``on_step``.

    At each step of ``steps`` it records the gradient PSD of ``model`` on ``images`` (with ``psd`` options,
    ``psd.recipe`` applied) and, when ``eval_sets`` (name -> (images, labels)) are given, their AUCs. The
    torch RNG (CPU and CUDA) and the model's mode are restored, so training is unchanged.
    """

    def __init__(
        self,
        steps: Sequence[int],
        images: np.ndarray,
        labels: np.ndarray,
        preprocess: Callable,
        psd: Mapping[str, Any],
        *,
        device: Any = "cpu",
        eval_sets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
        spectra2d_at: int = 3,
    ) -> None:
        self.steps = sorted({int(s) for s in steps})
        self.images, self.labels = images, np.asarray(labels)
        self.preprocess, self.device = preprocess, device
        self.options, self.drop_dc = recipe_options(psd)
        self.options["bands"] = tuple(self.options["bands"])
        self.recipe = psd.get("recipe", "default")
        self.amp = bool(psd.get("amp", False))
        self.eval_sets = dict(eval_sets or {})
        self._eval_images, self._eval_index = _distinct_images(self.eval_sets)
        n2 = min(int(spectra2d_at), len(self.steps))
        pick = np.unique(np.round(np.linspace(0, len(self.steps) - 1, n2)).astype(int)) if n2 else []
        self.spectra2d_steps = [self.steps[i] for i in pick]
        self.rows: dict[int, dict[str, Any]] = {}
        self.seconds = 0.0
        self.meta: dict[str, int] = {}

    def __call__(self, step: int, model) -> None:
        if step not in self.steps or step in self.rows:
            return
        import time

        import torch

        from shortcut_psd.gradients import gradient_psd

        t0 = time.perf_counter()
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            res = gradient_psd(
                model,
                self.images,
                self.labels,
                self.preprocess,
                device=self.device,
                amp=self.amp,
                **self.options,
            )
            row: dict[str, Any] = {
                "freqs": np.asarray(res.freqs),
                "curve": _renormalise(res.mean, self.options["normalise"], self.drop_dc),
            }
            if step in self.spectra2d_steps:
                row["spectrum2d"] = np.asarray(res.spectrum_2d, dtype=np.float32)
            if self.eval_sets:
                prob = _probabilities(model, self.preprocess, self._eval_images, self.device)
                for name, (_, y) in self.eval_sets.items():
                    row[f"auc_{name}"] = _auc_of(np.asarray(y), prob[self._eval_index[name]])
        self.rows[step] = row
        self.seconds += time.perf_counter() - t0

    def arrays(self) -> dict[str, np.ndarray]:
        """What :func:`save` writes: ``steps``, ``freqs``, ``curves`` (steps x bins), 2-D spectra, AUCs."""
        steps = sorted(self.rows)
        if not steps:
            raise DataError("no snapshot was recorded: the schedule holds no step that training reached")
        out = {
            "steps": np.asarray(steps, dtype=np.int64),
            "freqs": self.rows[steps[0]]["freqs"],
            "curves": np.stack([self.rows[s]["curve"] for s in steps]),
            "spectra2d_steps": np.asarray([s for s in steps if "spectrum2d" in self.rows[s]], dtype=np.int64),
            "bands_cpp": np.asarray(self.options["bands"], dtype=np.float64),
            "recipe": np.asarray(self.recipe),
            "seconds": np.asarray(self.seconds),
            **{k: np.asarray(v) for k, v in self.meta.items()},
        }
        sp = [self.rows[s]["spectrum2d"] for s in steps if "spectrum2d" in self.rows[s]]
        if sp:
            out["spectra2d"] = np.stack(sp)
        for name in self.eval_sets:
            out[f"auc_{name}"] = np.asarray([self.rows[s][f"auc_{name}"] for s in steps], dtype=np.float64)
        return out

    def save(self, path: str | os.PathLike, **extra: Any) -> None:
        """Write :meth:`arrays` (and ``extra`` arrays) atomically to ``path`` (.npz)."""
        from shortcut_psd.io import save_npz

        save_npz(path, **self.arrays(), **{k: np.asarray(v) for k, v in extra.items()})


def _distinct_images(sets: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray | None, dict]:
    """One stack of the distinct images of test sets that share most images (clean, iid and ood differ only
    where the artifact is), and each set's rows in it, so each image is scored once per snapshot."""
    if not sets:
        return None, {}
    names = list(sets)
    base = np.asarray(sets[names[0]][0])
    stack, index = [base], {names[0]: np.arange(len(base))}
    offset = len(base)
    for name in names[1:]:
        x = np.asarray(sets[name][0])
        if x.shape != base.shape:
            index[name] = np.arange(offset, offset + len(x))
            stack.append(x)
            offset += len(x)
            continue
        differs = np.flatnonzero((x != base).reshape(len(x), -1).any(axis=1))
        idx = np.arange(len(x))
        idx[differs] = offset + np.arange(len(differs))
        stack.append(x[differs])
        offset += len(differs)
        index[name] = idx
    return np.concatenate(stack), index


def _auc_of(y: np.ndarray, prob: np.ndarray) -> float:
    from shortcut_psd.train import multiclass_auc

    if prob.shape[1] == 2:  # the positive-class AUC, without sklearn's per-call overhead
        from shortcut_psd.clustered import weighted_auc

        return float(weighted_auc(y == 1, prob[:, 1])) if 0 < (y == 1).sum() < len(y) else float("nan")
    return multiclass_auc(y, prob)


def _probabilities(model, preprocess, images: np.ndarray, device) -> np.ndarray:
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = []
            for i in range(0, len(images), 256):
                xb = torch.as_tensor(np.asarray(images[i : i + 256], dtype=np.float32), device=dev)
                out.append(model(preprocess(xb)).float().softmax(1).cpu().numpy())
    finally:
        model.train(was)
    return np.concatenate(out)


def eval_subset(n: int, labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """A seeded, class-stratified subset of at most ``cap`` of ``n`` indices (sorted)."""
    if n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, round(cap * len(idx) / n))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def covers(path: str | os.PathLike, steps: Sequence[int]) -> bool:
    """Whether the snapshot file at ``path`` holds every step of ``steps`` (for precise reruns)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return set(int(s) for s in steps) <= set(z["steps"].tolist())
    except (OSError, KeyError, ValueError):
        return False


# -- per-model scalars ----------------------------------------------------------------------------------
def band_shares(curves: np.ndarray, freqs: np.ndarray, bands: Sequence[float]) -> np.ndarray:
    """(steps, 3): shares of each curve's (clipped at 0) total in the low, mid and high bands."""
    c = np.clip(np.asarray(curves, dtype=np.float64), 0, None)
    f = np.asarray(freqs)
    b0, b1 = float(bands[0]), float(bands[1])
    masks = [f < b0, (f >= b0) & (f < b1), f >= b1]
    tot = c.sum(axis=1, keepdims=True)
    tot[tot == 0] = np.nan
    return np.stack([c[:, m].sum(axis=1) for m in masks], axis=1) / tot


def half_change_step(steps: Sequence[int], values: Sequence[float]) -> float:
    """First step at which ``|v - v[0]| >= |v[-1] - v[0]| / 2`` (NaN when there is no change)."""
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(steps)
    total = v[-1] - v[0]
    if not np.isfinite(total) or total == 0:
        return float("nan")
    moved = (v - v[0]) * np.sign(total) >= abs(total) / 2
    return float(s[np.argmax(moved)])


def first_exceeding(steps: Sequence[int], values: Sequence[float], threshold: float) -> float:
    """First step whose value exceeds ``threshold`` (NaN when none does)."""
    v = np.asarray(values, dtype=np.float64)
    hit = np.flatnonzero(np.isfinite(v) & (v > threshold))
    return float(np.asarray(steps)[hit[0]]) if hit.size else float("nan")


def centroids(curves: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Spectral centroid ``sum(f p) / sum(p)`` of each curve (clipped at 0), cycles per pixel."""
    c = np.clip(np.asarray(curves, dtype=np.float64), 0, None)
    return (c * np.asarray(freqs)).sum(axis=1) / c.sum(axis=1)


def load_snapshots(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def model_scalars(
    snap: Mapping[str, np.ndarray], *, gap_threshold: float, auc_threshold: float
) -> dict[str, float]:
    """Band onsets, centroid at start and end, and shortcut / signal timing of one model's snapshots."""
    steps, curves, freqs = snap["steps"], snap["curves"], snap["freqs"]
    shares = band_shares(curves, freqs, snap["bands_cpp"])
    cen = centroids(curves, freqs)
    out: dict[str, float] = {f"onset_{b}": half_change_step(steps, shares[:, i]) for i, b in enumerate(BANDS)}
    out.update({f"share_change_{b}": float(shares[-1, i] - shares[0, i]) for i, b in enumerate(BANDS)})
    out["centroid_start"], out["centroid_end"] = float(cen[0]), float(cen[-1])
    out["onset_centroid"] = half_change_step(steps, cen)
    if "auc_clean" in snap and "auc_ood" in snap:
        gap = snap["auc_clean"] - snap["auc_ood"]
        out["step_gap"] = first_exceeding(steps, gap, gap_threshold)
        out["step_signal"] = first_exceeding(steps, snap["auc_clean"] - 0.5, auc_threshold)
        out["shortcut_first"] = (
            float(out["step_gap"] < out["step_signal"])
            if np.isfinite(out["step_gap"]) and np.isfinite(out["step_signal"])
            else float(np.isfinite(out["step_gap"]))
            if np.isfinite(out["step_gap"]) or np.isfinite(out["step_signal"])
            else float("nan")
        )
    return out


# -- aggregation ----------------------------------------------------------------------------------------
def seed_interval(
    values: Sequence[float], *, n_boot: int, seed: int, ci: float
) -> tuple[float, float, float, str]:
    """Mean over seeds and a percentile interval resampling ``S - 1`` of ``S`` seeds per replicate.

    Returns ``(mean, lo, hi, resampled)``; with fewer than two finite seeds the interval is NaN and
    ``resampled`` says that seed variation is absent. The interval lies in the values' range.
    """
    from shortcut_psd.clustered import percentile_interval, seed_group_replicates

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), "none (no finite value)"
    if v.size == 1:
        return float(v[0]), float("nan"), float("nan"), "none (one seed: seed variation absent)"
    rng = np.random.default_rng(seed)
    reps = seed_group_replicates(np.repeat(v[:, None], n_boot, axis=1), rng)
    lo, hi = percentile_interval(reps, ci)
    return float(v.mean()), lo, hi, f"seeds ({v.size}, {v.size - 1} drawn per replicate)"


SUMMARY_COLUMNS = [
    "phase",
    "init",
    "artifact",
    "prevalence",
    "quantity",
    "mean",
    "lo",
    "hi",
    "n_seeds",
    "resampled",
]
TEST_COLUMNS = ["phase", "artifact", "prevalence", "quantity", "natural", "medical", "difference", "p", "n_natural",
                "n_medical", "min_p", "note"]  # fmt: skip


def summarise(per_model: pd.DataFrame, *, n_boot: int, seed: int, ci: float) -> pd.DataFrame:
    """Per (phase, init, artifact, prevalence) and scalar: mean over seeds with a seed-resampling interval."""
    rows = []
    keys = ["phase", "init", "artifact", "prevalence"]
    quantities = [c for c in per_model.columns if c not in (*keys, "target", "seed")]
    for key, g in per_model.groupby(keys, sort=True, dropna=False):
        for q in quantities:
            vals = pd.to_numeric(g[q], errors="coerce").to_numpy()
            m, lo, hi, how = seed_interval(vals, n_boot=n_boot, seed=seed, ci=ci)
            rows.append([*key, q, m, lo, hi, int(np.isfinite(vals).sum()), how])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def source_tests(
    per_model: pd.DataFrame,
    natural: Sequence[str],
    medical: Sequence[str],
    *,
    alpha: float,
    permutations: int,
    seed: int,
) -> pd.DataFrame:
    """Natural vs medical inits: difference of means over seeds, per phase, artifact, prevalence and scalar.

    A two-sided permutation test over seeds (:func:`shortcut_psd.stats.permutation_test`) is printed only
    where its smallest attainable p (:func:`shortcut_psd.aggregate.min_two_sample_p`) is at most ``alpha``;
    otherwise ``p`` is empty and ``note`` says why. Each seed's values are averaged over the inits of a
    group first, so a unit is one seed of one group (seeds are the independent replicates).
    """
    from shortcut_psd.aggregate import min_two_sample_p
    from shortcut_psd.stats import permutation_test

    rows = []
    keys = ["phase", "artifact", "prevalence"]
    quantities = [c for c in per_model.columns if c not in (*keys, "init", "target", "seed")]
    for key, g in per_model.groupby(keys, sort=True, dropna=False):
        for q in quantities:
            a = g[g["init"].isin(natural)].groupby("seed")[q].mean().dropna()
            b = g[g["init"].isin(medical)].groupby("seed")[q].mean().dropna()
            diff = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
            mp = min_two_sample_p(len(a), len(b))
            p, note = float("nan"), ""
            if not len(a) or not len(b):
                note = "no natural or no medical init with a value (dynamics.inits_natural / inits_medical)"
            elif not mp <= alpha:
                note = f"not tested: with {len(a)} and {len(b)} seeds the smallest attainable p is {mp:.3g} > alpha"
            else:
                p = float(
                    permutation_test(a.to_numpy(), b.to_numpy(), n_resamples=permutations, seed=seed)[
                        "p_value"
                    ]
                )
            rows.append([*key, q, ",".join(natural), ",".join(medical), diff, p, len(a), len(b), mp, note])
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


# -- the study's tables -----------------------------------------------------------------------------------
def requested_view(snap: Mapping[str, np.ndarray], log_steps: int | None) -> dict[str, np.ndarray]:
    """The snapshots at the steps of the schedule now requested (a file may hold more; see
    :func:`snapshot_params`). Without ``steps_per_epoch`` in the file, or ``log_steps`` None, all steps."""
    if log_steps is None or "steps_per_epoch" not in snap or not len(snap["steps"]):
        return dict(snap)
    want = set(snapshot_steps(int(snap["steps_per_epoch"]), int(snap["epochs"]), int(log_steps)))
    keep = np.asarray([int(s) in want for s in snap["steps"]])
    out = dict(snap)
    for k in ("steps", "curves", "auc_clean", "auc_iid", "auc_ood"):
        if k in out:
            out[k] = np.asarray(out[k])[keep]
    return out


ID_COLUMNS = ["phase", "init", "target", "artifact", "prevalence", "seed"]


def collect(
    entries: Sequence[Mapping[str, Any]], *, log_steps: int | None, gap_threshold: float, auc_threshold: float
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Per-model scalars (one row per entry with a recorded file) and the snapshots themselves.

    ``entries``: dicts with ``ID_COLUMNS`` and ``path``. Returns ``(per_model, snaps)``; each ``snaps``
    item is the entry plus the (requested-view) arrays.
    """
    rows, snaps = [], []
    for e in entries:
        snap = load_snapshots(e["path"])
        if not bool(snap.get("enabled", True)) or not len(snap["steps"]):
            continue
        snap = requested_view(snap, log_steps)
        sc = model_scalars(snap, gap_threshold=gap_threshold, auc_threshold=auc_threshold)
        rows.append({**{k: e[k] for k in ID_COLUMNS}, **sc})
        snaps.append({**{k: e[k] for k in ID_COLUMNS}, **snap})
    return pd.DataFrame(rows, columns=None if rows else ID_COLUMNS), snaps


def mean_trajectory(snaps: Sequence[Mapping[str, Any]], key: str, *, n_boot: int, seed: int, ci: float):
    """Mean over models (seeds) of ``key`` per step on the steps all of them share, with a seed band.

    ``key``: ``centroid``, ``gap``, ``auc_clean``, or ``curves`` (mean only; the band is None). Returns
    ``(steps, mean, lo, hi)``; the band resamples ``S - 1`` of ``S`` seeds (NaN with one seed).
    """
    from shortcut_psd.clustered import percentile_interval, seed_group_replicates

    common = sorted(set.intersection(*[set(np.asarray(s["steps"]).tolist()) for s in snaps]))

    def values(s):
        idx = [np.asarray(s["steps"]).tolist().index(k) for k in common]
        if key == "centroid":
            return centroids(s["curves"], s["freqs"])[idx]
        if key == "gap":
            return (np.asarray(s["auc_clean"]) - np.asarray(s["auc_ood"]))[idx]
        return np.asarray(s[key])[idx]

    v = np.stack([values(s) for s in snaps])
    mean = v.mean(axis=0)
    if key == "curves" or len(snaps) < 2:
        return np.asarray(common), mean, None, None
    rng = np.random.default_rng(seed)
    lo, hi = np.empty(len(common)), np.empty(len(common))
    for j in range(len(common)):
        reps = seed_group_replicates(np.repeat(v[:, j : j + 1], n_boot, axis=1), rng)
        lo[j], hi[j] = percentile_interval(reps, ci)
    return np.asarray(common), mean, lo, hi


# -- a user's sequence of checkpoints (CLI ``shortcut-psd dynamics``) ------------------------------------
def checkpoint_sequence(
    checkpoints: Sequence[str | os.PathLike],
    images: np.ndarray,
    labels: np.ndarray,
    psd: Mapping[str, Any],
    *,
    steps: Sequence[int] | None = None,
    device: Any = "cpu",
) -> dict[str, np.ndarray]:
    """Snapshots of a sequence of checkpoints (``shortcut_psd.models.save_checkpoint`` files), one per step.

    ``steps`` (default ``0, 1, ...``) label the checkpoints and must increase. ``psd``: the config's ``psd``
    options (``recipe`` included). Returns the arrays of :meth:`SnapshotRecorder.arrays`.
    """
    from shortcut_psd.models import Preprocessing, load_checkpoint

    steps = list(range(len(checkpoints))) if steps is None else [int(s) for s in steps]
    if len(steps) != len(checkpoints):
        raise ConfigError(
            f"--steps gives {len(steps)} steps for {len(checkpoints)} checkpoints; give one per checkpoint"
        )
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ConfigError(f"--steps must increase; got {steps}")
    rec = None
    for step, path in zip(steps, checkpoints, strict=True):
        model, meta = load_checkpoint(path, device)
        pre = (meta or {}).get("preprocessing")
        if not pre:
            raise DataError(f"checkpoint {path} has no 'preprocessing' in its meta; re-save it")
        if rec is None:
            rec = SnapshotRecorder(steps, images, labels, Preprocessing(**pre), psd, device=device)
        rec.preprocess = Preprocessing(**pre)
        rec(step, model)
    return rec.arrays()
