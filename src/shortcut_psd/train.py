"""Supervised training for pre-training and fine-tuning (one loop for both).

Data sit as tensors on the device; each epoch draws a seeded permutation, and augmentation runs on the
batch tensor on the device, so no DataLoader worker ever starves the model. The model is in ``train()``
for the optimisation steps and in ``eval()`` for validation. Early stopping watches the validation loss
(plain cross-entropy) and the best weights are kept in memory and restored at the end. A NaN or inf
loss stops training with :class:`TrainingError`; this module never writes files.

Recipe keys (defaults in :data:`DEFAULT_RECIPE`):

- ``epochs``, ``batch_size``, ``lr``;
- ``optimizer``: ``adamw`` or ``sgd`` (``momentum`` used by sgd, Nesterov off), ``weight_decay``;
- ``schedule``: ``cosine`` (to 0 at the last step) or ``constant``, after ``warmup_epochs`` of linear
  warm-up (per step);
- ``augment``: ``none``, ``flip`` (random horizontal flip) or ``flip_crop`` (flip plus a random crop
  from a reflect-padded image, padding = size / 8);
- ``patience``: epochs without a lower validation loss before stopping (0 = never stop early);
- ``label_smoothing`` of the training loss;
- ``amp``: bf16 autocast (CUDA only; ignored on CPU); ``channels_last`` memory format.

The config's recipes also hold ``max_train_images``; it is not a key here: :mod:`shortcut_psd.study`
applies it (one seeded, class-stratified subsample, before the shortcut protocol when fine-tuning) and
passes the rest, and :func:`resolve_recipe` refuses it so that no second subsample can happen here.
"""

from __future__ import annotations

import difflib
import logging
import math
import random
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from shortcut_psd.clustered import weighted_auc
from shortcut_psd.errors import ConfigError, TrainingError

#: the schema's defaults (workflow/schemas/config.schema.yaml), less max_train_images (see above)
DEFAULT_RECIPE: dict[str, Any] = {
    "epochs": 5,
    "batch_size": 128,
    "lr": 2e-3,
    "optimizer": "adamw",
    "weight_decay": 0.05,
    "momentum": 0.9,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "augment": "flip",
    "patience": 3,
    "label_smoothing": 0.0,
    "amp": False,
    "channels_last": False,
}
CHOICES = {
    "optimizer": ("adamw", "sgd"),
    "schedule": ("cosine", "constant"),
    "augment": ("none", "flip", "flip_crop"),
}
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_acc", "val_auc", "lr", "seconds"]


def set_seed(seed: int, deterministic: bool | None = None) -> None:
    """Seed python, numpy and torch; on CPU (default when no GPU) also ask for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global, for third-party code that uses it
    torch.manual_seed(seed)
    if deterministic is None:
        deterministic = not torch.cuda.is_available()
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)


def resolve_recipe(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """``DEFAULT_RECIPE`` updated by ``recipe``; unknown keys and bad values raise :class:`ConfigError`."""
    recipe = dict(recipe or {})
    if "max_train_images" in recipe:
        raise ConfigError(
            "recipe key 'max_train_images' is applied by shortcut_psd.study (pretrain_source, protocol_sets) "
            "before training, not by train_classifier: subsample the training images there"
        )
    unknown = sorted(set(recipe) - set(DEFAULT_RECIPE))
    if unknown:
        hints = {k: difflib.get_close_matches(k, DEFAULT_RECIPE, n=1) for k in unknown}
        said = ", ".join(f"'{k}'" + (f" (did you mean '{h[0]}'?)" if h else "") for k, h in hints.items())
        raise ConfigError(f"unknown training recipe keys {said}; known: {', '.join(DEFAULT_RECIPE)}")
    out = {**DEFAULT_RECIPE, **recipe}
    for key, allowed in CHOICES.items():
        if out[key] not in allowed:
            raise ConfigError(f"recipe {key} '{out[key]}' is not one of {', '.join(allowed)}")
    for key in ("epochs", "batch_size"):
        if int(out[key]) < 1:
            raise ConfigError(f"recipe {key} must be >= 1; got {out[key]}")
    if not float(out["lr"]) > 0:
        raise ConfigError(f"recipe lr must be > 0; got {out['lr']}")
    if min(int(out["patience"]), int(out["warmup_epochs"])) < 0:
        raise ConfigError("recipe patience and warmup_epochs must be >= 0")
    if not 0 <= float(out["label_smoothing"]) < 1:
        raise ConfigError(f"recipe label_smoothing must lie in [0, 1); got {out['label_smoothing']}")
    return out


# -- pieces ---------------------------------------------------------------------------------------------
def _as_tensor(images: Any, device: torch.device) -> Tensor:
    if isinstance(images, Tensor):
        return images.to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)


def augment_batch(x: Tensor, kind: str, gen: torch.Generator) -> Tensor:
    """Random flip / flip+crop of a batch ``(B, C, H, W)`` on its own device, one draw per image."""
    if kind == "none":
        return x
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=gen, device=x.device) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    if kind == "flip_crop":
        ph, pw = max(1, h // 8), max(1, w // 8)
        padded = F.pad(x, (pw, pw, ph, ph), mode="reflect")
        oy = torch.randint(0, 2 * ph + 1, (b,), generator=gen, device=x.device)
        ox = torch.randint(0, 2 * pw + 1, (b,), generator=gen, device=x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
        bi = torch.arange(b, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[bi, rows, cols].permute(0, 3, 1, 2).contiguous()
    return x


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _optimizer(model: nn.Module, r: Mapping[str, Any]) -> torch.optim.Optimizer:
    if r["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=r["lr"], momentum=r["momentum"], weight_decay=r["weight_decay"]
        )
    return torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])


def multiclass_auc(y: np.ndarray, prob: np.ndarray) -> float:
    """Binary ROC-AUC of class 1, or macro one-vs-rest AUC; NaN when a class is absent from ``y``.

    The rank AUC of :func:`shortcut_psd.clustered.weighted_auc` (tested equal to scikit-learn's
    ``roc_auc_score``, one-vs-rest macro included, in tests/test_train.py): importing ``sklearn.metrics``
    cost 1.7 s of every training job's start-up, more than a tenth of a default fine-tuning job.
    """
    y = np.asarray(y)
    classes = prob.shape[1]
    if len(np.unique(y)) < classes:
        return float("nan")
    if classes == 2:
        return float(weighted_auc(y == 1, prob[:, 1]))
    return float(np.mean([weighted_auc(y == c, prob[:, c]) for c in range(classes)]))


@torch.no_grad()
def _validate(model, preprocess, x: Tensor, y: Tensor, batch_size: int, autocast, channels_last: bool):
    model.eval()
    logits = []
    for i in range(0, len(x), batch_size):
        xb = preprocess(x[i : i + batch_size])
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits.append(model(xb).float())
    out = torch.cat(logits)
    loss = float(F.cross_entropy(out, y))
    prob = out.softmax(1).cpu().numpy()
    yn = y.cpu().numpy()
    acc = float((prob.argmax(1) == yn).mean())
    return loss, acc, multiclass_auc(yn, prob)


# -- the loop -------------------------------------------------------------------------------------------
def train_classifier(
    model: nn.Module,
    preprocess,
    train: tuple[Any, Any],
    val: tuple[Any, Any],
    *,
    recipe: Mapping[str, Any] | None,
    seed: int,
    device: str | torch.device = "cpu",
    log: logging.Logger | None = None,
    progress: bool = False,
    on_step=None,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train ``model`` in place on ``train = (images, labels)``; return ``(model with best weights, history)``.

    Images are ``(N, C, H, W)`` in ``[0, 1]`` (numpy or torch); ``preprocess`` maps them to network input.
    ``set_seed(seed)`` is called first, so on CPU one seed gives identical results. The returned model
    is in ``eval()`` mode and holds the weights of the epoch with the lowest validation loss. ``history``
    has one row per epoch: ``epoch, train_loss, val_loss, val_acc, val_auc, lr, seconds``.
    ``on_step(k, model)``, when given, is called before the first update (``k = 0``) and after every
    optimiser update ``k`` (``shortcut_psd.dynamics.SnapshotRecorder``; it must leave the model's weights,
    mode and the RNG as it found them; docs/DEFINITIONS.md, "Learning order").
    """
    r = resolve_recipe(recipe)
    log = log or logging.getLogger("shortcut_psd.train")
    device = torch.device(device)
    set_seed(seed)
    xt, yt = _as_tensor(train[0], device), torch.as_tensor(np.asarray(train[1]), dtype=torch.long).to(device)
    xv, yv = _as_tensor(val[0], device), torch.as_tensor(np.asarray(val[1]), dtype=torch.long).to(device)
    n, bs, epochs = len(xt), int(r["batch_size"]), int(r["epochs"])
    if n < 2 or len(xv) < 1:
        raise TrainingError(
            f"training needs at least 2 training and 1 validation image; got {n} and {len(xv)}"
        )
    if len(yt) != n or len(yv) != len(xv):
        raise TrainingError("images and labels differ in length")

    model.to(device)
    if r["channels_last"]:
        model.to(memory_format=torch.channels_last)
    opt = _optimizer(model, r)
    # the last batch is dropped only when it holds a single image (BatchNorm cannot train on one)
    steps_per_epoch = n // bs + (1 if n % bs > 1 else 0)
    total, warmup = steps_per_epoch * epochs, steps_per_epoch * int(r["warmup_epochs"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, warmup, r["schedule"]))
    use_amp = bool(r["amp"]) and device.type == "cuda"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp)

    criterion = nn.CrossEntropyLoss(label_smoothing=float(r["label_smoothing"]))
    perm_gen = torch.Generator().manual_seed(int(seed))
    aug_gen = torch.Generator(device=device).manual_seed(int(seed) + 1)

    log.info(
        "training %s: %d train / %d val images of %s, %s classes; %d epochs x %d steps, batch %d, %s lr %.3g "
        "(%s, warm-up %d), augment %s, device %s%s",
        getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__),
        n,
        len(xv),
        "x".join(map(str, xt.shape[1:])),
        getattr(model, "num_classes", "?"),
        epochs,
        steps_per_epoch,
        bs,
        r["optimizer"],
        r["lr"],
        r["schedule"],
        int(r["warmup_epochs"]),
        r["augment"],
        device,
        " bf16" if use_amp else "",
    )
    rows, best_loss, best_state, best_epoch, stale = [], math.inf, None, 0, 0
    start = time.perf_counter()
    global_step = 0
    if on_step is not None:
        on_step(0, model)
    bar = tqdm(range(1, epochs + 1), desc="epochs", unit="ep", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        lr = opt.param_groups[0]["lr"]
        order = torch.randperm(n, generator=perm_gen).to(device)
        losses = torch.zeros(steps_per_epoch, device=device)
        for step in range(steps_per_epoch):
            idx = order[step * bs : (step + 1) * bs]
            xb = preprocess(augment_batch(xt[idx], r["augment"], aug_gen))
            if r["channels_last"]:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast():
                loss = criterion(model(xb).float(), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses[step] = loss.detach()
            global_step += 1
            if on_step is not None:
                on_step(global_step, model)
                model.train()
        bad = torch.nonzero(~torch.isfinite(losses)).flatten()  # checked once per epoch: no sync per step
        if len(bad):
            b = int(bad[0])
            raise TrainingError(
                f"training loss became {float(losses[b])} at epoch {epoch}, batch {b + 1}/{steps_per_epoch} "
                f"(lr {lr:.3g}); lower the learning rate (recipe lr), add warm-up epochs, or check the "
                "input images for NaN; nothing was written"
            )
        train_loss = float(losses.mean())
        val_loss, val_acc, val_auc = _validate(
            model, preprocess, xv, yv, 2 * bs, autocast, r["channels_last"]
        )
        if not math.isfinite(val_loss):
            raise TrainingError(
                f"validation loss is {val_loss} at epoch {epoch} (lr {lr:.3g}); lower the learning rate"
            )
        seconds = time.perf_counter() - t0
        rows.append([epoch, train_loss, val_loss, val_acc, val_auc, lr, seconds])
        improved = val_loss < best_loss
        if improved:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        elapsed = time.perf_counter() - start
        log.info(
            "epoch %d/%d  train_loss %.4f  val_loss %.4f%s  val_acc %.3f  val_auc %.3f  lr %.2e  %.1f s "
            "(%.0f img/s, elapsed %.1f s)",
            epoch,
            epochs,
            train_loss,
            val_loss,
            " *" if improved else "",
            val_acc,
            val_auc,
            lr,
            seconds,
            n / seconds,
            elapsed,
        )
        bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}", auc=f"{val_auc:.3f}")
        if r["patience"] and stale >= int(r["patience"]):
            log.info("early stop: no lower validation loss for %d epochs", stale)
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    log.info(
        "done in %.1f s; best epoch %d (val_loss %.4f, val_auc %.3f)",
        time.perf_counter() - start,
        best_epoch,
        best_loss,
        rows[best_epoch - 1][4],
    )
    return model, pd.DataFrame(rows, columns=HISTORY_COLUMNS)
