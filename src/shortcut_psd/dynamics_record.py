"""Learning order, recording: the gradient PSD (and, when fine-tuning, the test AUCs) of a model at the
scheduled steps of its training, or of a user's sequence of checkpoints (docs/DEFINITIONS.md, "Learning
order": "Snapshot", "Shortcut timing", "File").

Re-exported by :mod:`shortcut_psd.dynamics`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from shortcut_psd.dynamics_recipes import _renormalise, recipe_options, recipe_psd
from shortcut_psd.dynamics_schedule import check_dynamics, snapshot_steps, steps_per_epoch
from shortcut_psd.errors import ConfigError, DataError


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
            if self.recipe == "default":
                res = gradient_psd(
                    model,
                    self.images,
                    self.labels,
                    self.preprocess,
                    device=self.device,
                    amp=self.amp,
                    **self.options,
                )
                freqs, spec2d = np.asarray(res.freqs), res.spectrum_2d
                curve = _renormalise(res.mean, self.options["normalise"], self.drop_dc)
            else:
                freqs, curve, spec2d = recipe_psd(
                    model,
                    self.images,
                    self.labels,
                    self.preprocess,
                    self.recipe,
                    batch_size=self.options["batch_size"],
                    device=self.device,
                    amp=self.amp,
                )
            row: dict[str, Any] = {"freqs": freqs, "curve": curve}
            if step in self.spectra2d_steps:
                row["spectrum2d"] = np.asarray(spec2d, dtype=np.float32)
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
