"""Supervised training for pre-training and fine-tuning (one loop for both).

Data sit as tensors on the device; each epoch draws a seeded permutation, and augmentation runs on the
batch tensor on the device, so no DataLoader worker ever starves the model. The model is in ``train()``
for the optimisation steps and in ``eval()`` for validation. Early stopping watches the validation loss
(plain cross-entropy) and the best weights are kept in memory and restored at the end. A NaN or inf
loss stops training with :class:`TrainingError`; this module never writes files.

The recipe (its keys, defaults from the config schema, and checks) is :mod:`shortcut_psd.train_recipe`;
:data:`DEFAULT_RECIPE` and :func:`resolve_recipe` are importable from here too.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from shortcut_psd.clustered import weighted_auc
from shortcut_psd.dynamics_schedule import steps_per_epoch
from shortcut_psd.errors import TrainingError
from shortcut_psd.train_recipe import CHOICES, DEFAULT_RECIPE, resolve_recipe

__all__ = [
    "CHOICES",
    "DEFAULT_RECIPE",
    "HISTORY_COLUMNS",
    "augment_batch",
    "multiclass_auc",
    "resolve_recipe",
    "set_seed",
    "train_classifier",
]

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_acc", "val_auc", "lr", "seconds"]


def set_seed(seed: int, deterministic: bool | None = None) -> None:
    """Seed python, numpy and torch; on CPU (default when no GPU) also ask for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global, for third-party code that uses it
    torch.manual_seed(seed)
    if deterministic is None:
        deterministic = not torch.cuda.is_available()
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)


# -- pieces ---------------------------------------------------------------------------------------------
def _as_tensor(images: Any, device: torch.device) -> Tensor:
    if isinstance(images, Tensor):
        return images.to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)


def _on_device(train: tuple[Any, Any], val: tuple[Any, Any], device: torch.device) -> tuple[Tensor, ...]:
    """``(x_train, y_train, x_val, y_val)`` as float images and long labels on ``device``, checked."""
    xt, yt = _as_tensor(train[0], device), torch.as_tensor(np.asarray(train[1]), dtype=torch.long).to(device)
    xv, yv = _as_tensor(val[0], device), torch.as_tensor(np.asarray(val[1]), dtype=torch.long).to(device)
    if len(xt) < 2 or len(xv) < 1:
        raise TrainingError(
            f"training needs at least 2 training and 1 validation image; got {len(xt)} and {len(xv)}"
        )
    if len(yt) != len(xt) or len(yv) != len(xv):
        raise TrainingError("images and labels differ in length")
    return xt, yt, xv, yv


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


@dataclass
class _Setup:
    """What every optimisation step and validation pass uses: the optimiser and its per-step learning-rate
    schedule (warm-up, then cosine or constant), the training loss, the augmentation and its generator,
    the permutation generator, the batch size, the memory format and bf16 autocast."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    criterion: nn.Module
    augment: str
    perm_gen: torch.Generator
    aug_gen: torch.Generator
    batch_size: int
    per_epoch: int
    channels_last: bool
    use_amp: bool

    @classmethod
    def build(cls, model: nn.Module, r: Mapping[str, Any], n: int, device: torch.device, seed: int) -> _Setup:
        opt = _optimizer(model, r)
        per_epoch = steps_per_epoch(n, int(r["batch_size"]))  # drops a last batch of one image (BatchNorm)
        total, warmup = per_epoch * int(r["epochs"]), per_epoch * int(r["warmup_epochs"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, warmup, r["schedule"]))
        use_amp = bool(r["amp"]) and device.type == "cuda"
        criterion = nn.CrossEntropyLoss(label_smoothing=float(r["label_smoothing"]))
        perm_gen = torch.Generator().manual_seed(int(seed))
        aug_gen = torch.Generator(device=device).manual_seed(int(seed) + 1)
        return cls(
            opt=opt,
            sched=sched,
            criterion=criterion,
            augment=r["augment"],
            perm_gen=perm_gen,
            aug_gen=aug_gen,
            batch_size=int(r["batch_size"]),
            per_epoch=per_epoch,
            channels_last=bool(r["channels_last"]),
            use_amp=use_amp,
        )

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp)

    def network_input(self, preprocess, x: Tensor) -> Tensor:
        xb = preprocess(x)
        return xb.contiguous(memory_format=torch.channels_last) if self.channels_last else xb


def _train_epoch(
    model: nn.Module, preprocess, xt: Tensor, yt: Tensor, s: _Setup, on_step, first_step: int
) -> Tensor:
    """One epoch of updates on a seeded permutation of ``(xt, yt)``; returns the per-step losses (on the
    device, unchecked). ``on_step(first_step + k, model)`` follows the k-th update (the model is put back in
    ``train()`` after it)."""
    model.train()
    order = torch.randperm(len(xt), generator=s.perm_gen).to(xt.device)
    losses = torch.zeros(s.per_epoch, device=xt.device)
    bs = s.batch_size
    for step in range(s.per_epoch):
        idx = order[step * bs : (step + 1) * bs]
        xb = s.network_input(preprocess, augment_batch(xt[idx], s.augment, s.aug_gen))
        with s.autocast():
            loss = s.criterion(model(xb).float(), yt[idx])
        s.opt.zero_grad(set_to_none=True)
        loss.backward()
        s.opt.step()
        s.sched.step()
        losses[step] = loss.detach()
        if on_step is not None:
            on_step(first_step + step + 1, model)
            model.train()
    return losses


def _check_losses(losses: Tensor, epoch: int, lr: float) -> None:
    """Raise :class:`TrainingError` at the first non-finite step loss (checked once per epoch: no sync per step)."""
    bad = torch.nonzero(~torch.isfinite(losses)).flatten()
    if len(bad):
        b = int(bad[0])
        raise TrainingError(
            f"training loss became {float(losses[b])} at epoch {epoch}, batch {b + 1}/{len(losses)} "
            f"(lr {lr:.3g}); lower the learning rate (recipe lr), add warm-up epochs, or check the "
            "input images for NaN; nothing was written"
        )


@torch.no_grad()
def _validate(model, preprocess, x: Tensor, y: Tensor, s: _Setup) -> tuple[float, float, float]:
    """``(loss, accuracy, AUC)`` on ``(x, y)`` in ``eval()`` mode (batches of twice the training batch)."""
    model.eval()
    logits = []
    for i in range(0, len(x), 2 * s.batch_size):
        xb = s.network_input(preprocess, x[i : i + 2 * s.batch_size])
        with s.autocast():
            logits.append(model(xb).float())
    out = torch.cat(logits)
    loss = float(F.cross_entropy(out, y))
    prob = out.softmax(1).cpu().numpy()
    yn = y.cpu().numpy()
    acc = float((prob.argmax(1) == yn).mean())
    return loss, acc, multiclass_auc(yn, prob)


class _BestWeights:
    """Early stopping: keeps the weights of the epoch with the lowest validation loss, and says when
    ``patience`` epochs have passed without a lower one (patience 0: never)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.loss, self.epoch, self.state, self.stale = math.inf, 0, None, 0

    def update(self, model: nn.Module, epoch: int, val_loss: float) -> bool:
        """Record an epoch's validation loss; True (weights kept) when it is the lowest so far."""
        if val_loss < self.loss:
            self.loss, self.epoch, self.stale = val_loss, epoch, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        self.stale += 1
        return False

    @property
    def stop(self) -> bool:
        return bool(self.patience) and self.stale >= int(self.patience)


def _log_start(
    log, model: nn.Module, r: Mapping[str, Any], xt: Tensor, n_val: int, s: _Setup, device
) -> None:
    log.info(
        "training %s: %d train / %d val images of %s, %s classes; %d epochs x %d steps, batch %d, %s lr %.3g "
        "(%s, warm-up %d), augment %s, device %s%s",
        getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__),
        len(xt),
        n_val,
        "x".join(map(str, xt.shape[1:])),
        getattr(model, "num_classes", "?"),
        int(r["epochs"]),
        s.per_epoch,
        s.batch_size,
        r["optimizer"],
        r["lr"],
        r["schedule"],
        int(r["warmup_epochs"]),
        r["augment"],
        device,
        " bf16" if s.use_amp else "",
    )


def _log_epoch(log, row: list, epochs: int, improved: bool, n: int, elapsed: float) -> None:
    epoch, train_loss, val_loss, val_acc, val_auc, lr, seconds = row
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
    on_step: Callable[[int, nn.Module], None] | None = None,
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
    xt, yt, xv, yv = _on_device(train, val, device)
    model.to(device)
    if r["channels_last"]:
        model.to(memory_format=torch.channels_last)
    s = _Setup.build(model, r, len(xt), device, seed)
    epochs, best = int(r["epochs"]), _BestWeights(r["patience"])
    _log_start(log, model, r, xt, len(xv), s, device)
    rows, start = [], time.perf_counter()
    if on_step is not None:
        on_step(0, model)
    bar = tqdm(range(1, epochs + 1), desc="epochs", unit="ep", disable=not progress, leave=False)
    for epoch in bar:
        t0, lr = time.perf_counter(), s.lr
        losses = _train_epoch(model, preprocess, xt, yt, s, on_step, (epoch - 1) * s.per_epoch)
        _check_losses(losses, epoch, lr)
        train_loss = float(losses.mean())
        val_loss, val_acc, val_auc = _validate(model, preprocess, xv, yv, s)
        if not math.isfinite(val_loss):
            raise TrainingError(
                f"validation loss is {val_loss} at epoch {epoch} (lr {lr:.3g}); lower the learning rate"
            )
        rows.append([epoch, train_loss, val_loss, val_acc, val_auc, lr, time.perf_counter() - t0])
        improved = best.update(model, epoch, val_loss)
        _log_epoch(log, rows[-1], epochs, improved, len(xt), time.perf_counter() - start)
        bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}", auc=f"{val_auc:.3f}")
        if best.stop:
            log.info("early stop: no lower validation loss for %d epochs", best.stale)
            break
    bar.close()
    model.load_state_dict(best.state)
    model.eval()
    log.info(
        "done in %.1f s; best epoch %d (val_loss %.4f, val_auc %.3f)",
        time.perf_counter() - start,
        best.epoch,
        best.loss,
        rows[best.epoch - 1][4],
    )
    return model, pd.DataFrame(rows, columns=HISTORY_COLUMNS)
