"""One function per workflow job, so each job is a plain call that tests can make without Snakemake.

The workflow's scripts only read Snakemake's inputs/params, call these, and write the outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from shortcut_psd import models as M
from shortcut_psd.config import psd_options
from shortcut_psd.data.store import ImageSet
from shortcut_psd.errors import DataError
from shortcut_psd.gradients import gradient_psd
from shortcut_psd.metrics import evaluate_sets
from shortcut_psd.shortcut import artifact_mask, build_sets
from shortcut_psd.spectral import PSDResult
from shortcut_psd.train import set_seed, train_classifier
from shortcut_psd.train_recipe import STUDY_KEYS

log = logging.getLogger("shortcut_psd.study")

#: recipe keys handled here rather than by train_classifier


def split_recipe(recipe: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    r = dict(recipe)
    own = {k: r.pop(k) for k in STUDY_KEYS if k in r}
    return r, own


def channel_mean_std(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of ``(N, C, H, W)`` images (the normalisation of models trained on them)."""
    mean = images.mean(axis=(0, 2, 3)).astype(float).tolist()
    std = np.maximum(images.std(axis=(0, 2, 3)), 1e-3).astype(float).tolist()
    return mean, std


def _subsample(images: np.ndarray, labels: np.ndarray, cap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subsample of at most ``cap`` images (stratified by label); ``cap`` 0 keeps all."""
    if not cap or len(images) <= cap:
        return images, labels
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, round(cap * len(idx) / len(labels)))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    keep = np.sort(np.concatenate(keep))
    return images[keep], labels[keep]


# ------------------------------------------------------------------------------------------------
def pretrain_source(
    ds: ImageSet,
    *,
    arch: str,
    model_kwargs: Mapping[str, Any],
    recipe: Mapping[str, Any],
    seed: int,
    device: str = "auto",
    progress: bool = True,
    on_step=None,
) -> tuple[torch.nn.Module, dict[str, Any], pd.DataFrame]:
    """Supervised pre-training on a source's labels; returns ``(model, checkpoint meta, history)``.

    ``on_step(k, model)``: a snapshot callback (``shortcut_psd.dynamics``), or a factory
    ``on_step(n_train, preprocess)`` returning one when it has attribute ``factory``; see ``train_classifier``.
    """
    dev = M.pick_device(device)
    train_recipe, own = split_recipe(recipe)
    xt, yt = ds.subset("train")
    xt, yt = _subsample(xt, yt, own.get("max_train_images", 0), seed)
    xv, yv = ds.subset("val")
    mean, std = channel_mean_std(xt)
    prep = M.Preprocessing(ds.channels, mean, std)
    log.info(
        "pre-training %s on '%s' (%d classes): %d train / %d val images of %s, device %s",
        arch,
        ds.name,
        ds.num_classes,
        len(xt),
        len(xv),
        ds.image_size,
        dev,
    )
    if on_step is not None and getattr(on_step, "factory", False):
        on_step = on_step(len(xt), prep)
    set_seed(seed)
    record = M.Arch(arch, ds.channels, ds.num_classes, dict(model_kwargs))
    model = record.create()
    model, history = train_classifier(
        model,
        prep,
        (xt, yt),
        (xv, yv),
        recipe=train_recipe,
        seed=seed,
        device=dev,
        log=log,
        progress=progress,
        on_step=on_step,
    )
    meta = {
        **record.to_meta(),
        "classes": list(ds.classes),
        "preprocessing": prep.to_dict(),
        "source": ds.name,
        "edit": ds.meta.get("edit", {}),
        "seed": seed,
        "recipe": dict(recipe),
        "best_val_loss": float(history["val_loss"].min()),
    }
    return model, meta, history


def make_init(
    spec: Mapping[str, Any],
    *,
    checkpoint: str | None,
    arch: str,
    model_kwargs: Mapping[str, Any] | None = None,
    num_classes: int,
    clean_train_images: np.ndarray,
    seed: int,
    device: str = "auto",
) -> tuple[torch.nn.Module, M.Preprocessing, dict[str, Any]]:
    """The model an init gives for a target (fresh head seeded by ``seed``), with its preprocessing.

    ``clean_train_images`` (N, C, H, W) give the data's channels and, for ``scratch``, the normalisation.
    """
    spec = dict(spec)
    if spec["kind"] == "source":
        spec = {"kind": "source", "checkpoint": checkpoint}
    elif spec["kind"] == "file":
        spec["path"] = checkpoint or spec["path"]
    set_seed(seed)
    model, prep, info = M.build_init(
        spec,
        arch=spec.get("arch", arch),
        num_classes=num_classes,
        in_chans_data=int(clean_train_images.shape[1]),
        image_mean_std=channel_mean_std(clean_train_images),
        device=M.pick_device(device),
        model_kwargs=model_kwargs,
    )
    return model, prep, info


def finetune_condition(
    model: torch.nn.Module,
    prep: M.Preprocessing,
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    recipe: Mapping[str, Any],
    seed: int,
    device: str = "auto",
    progress: bool = True,
    on_step=None,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Full fine-tuning with early stopping on validation loss (best epoch kept).

    ``sets`` come from :func:`protocol_sets`, which applies ``max_train_images`` *before* choosing the
    artifacted images (so the prevalence is exact); this function trains on ``sets["train"]`` as given.
    A training set larger than the cap allows is refused: it was not built by :func:`protocol_sets`.
    """
    train_recipe, own = split_recipe(recipe)
    xt, yt = sets["train"]
    cap = int(own.get("max_train_images", 0))
    # the stratified subsample keeps at most cap + 1 images per class (rounding, and at least one per class)
    if cap and len(yt) > cap + len(np.unique(yt)):
        raise DataError(
            f"{len(yt)} training images but finetune.max_train_images = {cap}: build the sets with "
            "study.protocol_sets(..., max_train_images=cap), which subsamples before the shortcut protocol"
        )
    log.info(
        "fine-tuning: %d train (%d positive) / %d val images, recipe %s",
        len(xt),
        int((yt == 1).sum()),
        len(sets["val"][0]),
        train_recipe,
    )
    return train_classifier(
        model,
        prep,
        (xt, yt),
        sets["val"],
        recipe=train_recipe,
        seed=seed,
        device=M.pick_device(device),
        log=log,
        progress=progress,
        on_step=on_step,
    )


def load_condition_data(path: str, p: float) -> dict[str, np.ndarray]:
    """``clean``, ``artifacted``, ``labels``, ``split`` from an artifact file, or from a target's data.npz
    (a p = 0 model under artifact ``none``: no artifact exists, both arrays are the clean images)."""
    with np.load(path, allow_pickle=False) as z:
        if "artifacted" in z:
            out = {k: z[k] for k in ("clean", "artifacted", "labels", "split")}
            out["group"] = z["group"].astype(str) if "group" in z else None
            return out
    if float(p) != 0:
        raise DataError(f"{path} holds no artifact, but the model has p = {p:g} > 0")
    from shortcut_psd.data import load_imageset

    ds = load_imageset(path)
    return {
        "clean": ds.images,
        "artifacted": ds.images,
        "labels": ds.labels,
        "split": ds.split,
        "group": ds.group,
    }


def groups_of_test_images(data: Mapping[str, Any]) -> np.ndarray | None:
    """Group labels of the test images (the order of every test set), or None when the data have none."""
    group = data.get("group")
    return None if group is None else np.asarray(group).astype(str)[np.asarray(data["split"]) == "test"]


def condition_keep(labels: np.ndarray, split: np.ndarray, max_train_images: int, seed: int) -> np.ndarray:
    """Indices of the images a condition uses, in order: a seeded, class-stratified subsample of at most
    ``max_train_images`` training images (:func:`_subsample`, the rule of pre-training too; 0 keeps all)
    and every validation and test image."""
    split = np.asarray(split).astype(str)
    train = np.flatnonzero(split == "train")
    kept, _ = _subsample(train, np.asarray(labels)[train], int(max_train_images), seed)
    return np.sort(np.concatenate([kept, np.flatnonzero(split != "train")]))


def _condition_subset(data: Mapping[str, Any], max_train_images: int, seed: int) -> dict[str, Any]:
    """``data`` (per-image arrays, ``group`` possibly None) cut to :func:`condition_keep`."""
    keep = condition_keep(data["labels"], data["split"], max_train_images, seed)
    if len(keep) == len(data["labels"]):
        return dict(data)
    return {k: None if v is None else np.asarray(v)[keep] for k, v in data.items()}


def protocol_sets(
    data: Mapping[str, np.ndarray], p: float, seed: int, *, max_train_images: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The shortcut protocol's sets (see :func:`shortcut_psd.shortcut.build_sets`), after subsampling.

    The training split is first cut to its seeded, class-stratified subsample of at most
    ``max_train_images`` (:func:`condition_keep`), then the protocol is applied, so exactly
    ``round(p * n_pos)`` of the kept training positives (and of the validation positives) carry the
    artifact (docs/DEFINITIONS.md, "Shortcut protocol").
    """
    d = _condition_subset(data, max_train_images, seed)
    return build_sets(d["clean"], d["artifacted"], d["labels"], d["split"], float(p), seed)


def realised_prevalence(
    data: Mapping[str, np.ndarray], p: float, seed: int, *, max_train_images: int = 0
) -> dict[str, dict[str, Any]]:
    """Positives and artifacted positives of the sets :func:`protocol_sets` builds, per split:
    ``{"train": {"n_pos", "n_artifact", "fraction"}, "val": {...}}`` (``fraction`` None without positives).
    Written to each model's ``metrics.json`` as ``prevalence_realised``."""
    d = _condition_subset(data, max_train_images, seed)
    labels, split = np.asarray(d["labels"]), np.asarray(d["split"]).astype(str)
    mask = artifact_mask(labels, split, float(p), seed)
    out = {}
    for s in ("train", "val"):
        n_pos = int(((split == s) & (labels == 1)).sum())
        n_art = int(mask[split == s].sum())
        out[s] = {"n_pos": n_pos, "n_artifact": n_art, "fraction": n_art / n_pos if n_pos else None}
    return out


def evaluate(
    model: torch.nn.Module,
    prep: M.Preprocessing,
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    evaluation: Mapping[str, Any],
    seed: int,
    device: str = "auto",
    identity: Mapping[str, Any] | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """AUC with cluster-bootstrap CIs (over ``groups`` of test images, see :func:`groups_of_test_images`) on the test
    sets and the shortcut gap, as written to ``metrics.json``, with every test image's score, label and
    group so that the aggregation can resample seeds and groups together."""
    res = evaluate_sets(
        model,
        prep,
        sets,
        names=["test_clean", "test_iid", "test_ood"],
        batch_size=int(evaluation.get("batch_size", 512)),
        device=M.pick_device(device),
        n_boot=int(evaluation.get("bootstrap", 1000)),
        seed=seed,
        groups=groups,
    )
    names = ("test_clean", "test_iid", "test_ood")
    out = dict(identity or {})
    out["sets"] = {k[len("test_") :]: res[k] for k in names}
    out["gap"] = res["shortcut_gap"]
    out["gap_lo"] = res.get("shortcut_gap_lo")
    out["gap_hi"] = res.get("shortcut_gap_hi")
    labels = np.asarray(sets["test_clean"][1])
    out["test"] = {
        "labels": (labels == 1).astype(int).tolist(),
        "groups": None if groups is None else [str(g) for g in groups],
        "scores": {k[len("test_") :]: res["scores"][k].tolist() for k in names},
    }
    return out


def score_condition(
    model: torch.nn.Module,
    prep: M.Preprocessing,
    data: Mapping[str, Any],
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    p: float,
    *,
    seed: int,
    evaluation: Mapping[str, Any],
    device: str,
    identity: Mapping[str, Any],
    artifact_seed: int | None,
    max_train_images: int = 0,
) -> dict[str, Any]:
    """A model's ``metrics.json`` for one condition: :func:`evaluate` on the protocol's test sets (intervals
    over the test images' groups), the artifact seed and the realised prevalence of its training data."""
    metrics = evaluate(
        model,
        prep,
        sets,
        evaluation=evaluation,
        seed=seed,
        device=device,
        identity=identity,
        groups=groups_of_test_images(data),
    )
    metrics["artifact_seed"] = artifact_seed
    metrics["prevalence_realised"] = realised_prevalence(data, p, seed, max_train_images=max_train_images)
    return metrics


def psd_images(
    target: ImageSet, psd: Mapping[str, Any], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clean target images a PSD is taken on: split ``psd.split``, seeded subsample of ``max_images``.

    Returns ``(images, labels, groups)``, aligned: ``groups`` are the images' ``ImageSet.group`` labels
    (the independent units the PSD's spread is taken over). The subsample is the same as when only images
    and labels were returned (it depends on the labels and the seed only).
    """
    idx = target.indices(psd["split"])
    if len(idx) == 0:
        raise DataError(f"target '{target.name}' has no '{psd['split']}' images for the PSD (psd.split)")
    keep, _ = _subsample(idx, target.labels[idx], int(psd["max_images"]), seed)
    return target.images[keep], target.labels[keep], target.group[keep]


def model_psd(
    models: Sequence[torch.nn.Module],
    prep: M.Preprocessing,
    images: np.ndarray,
    labels: np.ndarray,
    psd: Mapping[str, Any],
    *,
    device: str = "auto",
    groups: np.ndarray | None = None,
    also_windows: Sequence[str] = (),
) -> PSDResult:
    """Gradient PSD with the config's options (``psd`` section, channels included); ``groups`` and
    ``also_windows`` as in :func:`~shortcut_psd.gradients.gradient_psd`."""
    return gradient_psd(
        list(models),
        images,
        labels,
        prep,
        device=M.pick_device(device),
        amp=bool(psd.get("amp", False)),
        groups=groups,
        also_windows=also_windows,
        **psd_options(psd),
    )


def pretrained_heads(
    model: torch.nn.Module, num_classes: int, head_seeds: Sequence[int]
) -> list[torch.nn.Module]:
    """K copies of a pre-trained backbone, each with a fresh linear head (seeded), for the PSD before fine-tuning."""
    return [M.with_fresh_head(model, num_classes, int(s)) for s in head_seeds]
